# -*- coding: utf-8 -*-
# Copyright: (c) 2026, StratData platform team
# Apache License 2.0
"""Cluster assessment: turn what the verify role gathered into findings, a report and a checklist.

Everything here is pure Python (standard library only) so it runs on the control machine, on the
hosts (Debian bookworm python 3.11) and in unit tests without a cluster.

Input ("state") is a dict of what the verify role gathered; every key is optional:

  api          {"available": bool, "reason": str}
  pods, events, pvcs, pvs, statefulsets, deployments, backups, ingresses
               Kubernetes objects as ``kubectl get -o json`` prints them; a kubectl List (``items``),
               a kubernetes.core.k8s_info result (``resources``), a looped register (``results``)
               or a plain list are all accepted.
  task_pods    pods labelled ``dag_id=<config dag>`` (KubernetesPodOperator pods), same shapes
  dag_status   the registered result of stratdata.pi_cluster.airflow_dag_status
  dag_config   the registered result of the dag_configuration query (``query_result`` rows)
  dag_runs     {dag_id: <GET /api/v2/dags/{dag_id}/dagRuns result or list of runs>}
  trigger      {"requested": bool, "dag_run_id", "final_state", "unpause_status", "trigger_status", "error"}
  ui           the registered result of ansible.builtin.uri against the ingress host

Each finding is a dict: id, title, status (ok / warn / critical / skipped), evidence (list of
sentences), root_cause, impact, resolution. ``skipped`` means "not checked" (with the reason in the
evidence) and never turns the overall status green on its own: the checklist shows it unticked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

SCHEMA_VERSION = 1

OK = "ok"
WARN = "warn"
CRITICAL = "critical"
SKIPPED = "skipped"
NOT_RUN = "not_run"

STATUS_RANK = {OK: 0, SKIPPED: 0, WARN: 1, CRITICAL: 2}
ICONS = {OK: "\u2705", WARN: "\u26a0\ufe0f", CRITICAL: "\u274c", SKIPPED: "\u23ed\ufe0f", NOT_RUN: "\u23ed\ufe0f"}
OVERALL_TEXT = {OK: "OK", WARN: "WARNING", CRITICAL: "CRITICAL", NOT_RUN: "NOT RUN"}

RWO_MODES = ("ReadWriteOnce", "ReadWriteOncePod")
RWX_MODES = ("ReadWriteMany",)

# Velero backup phases after which nothing changes any more.
VELERO_TERMINAL = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")

MULTI_ATTACH_RE = re.compile(r'Multi-Attach error for volume "(?P<volume>[^"]+)"')
MULTI_ATTACH_PODS_RE = re.compile(r"used by pod\(s\) (?P<pods>[^\n]+?)\s*$")

# Names the caller passes from the cluster contract (inventory/group_vars/all/cluster.yml); no default here.
CONTRACT_OPTIONS = ("airflow_namespace", "databases_namespace", "velero_namespace", "backup_namespaces", "ingress_host")

DEFAULT_OPTIONS = {
    "expected_dag_ids": ["historical_load_equities", "calculate_indicators"],
    "config_dag_id": "historical_load_equities",
    "indicators_dag_id": "calculate_indicators",
    "backup_max_age_hours": 26,
    "stuck_after_seconds": 300,
    "api_required": False,
    "components": None,
    "now": None,
}

# The components of the original assessment's table. A component is healthy when every selector
# marked required matches at least one pod and every matched pod is Running with all containers ready.
# Selectors match on namespace plus labels (subset) and/or a name regex.
DEFAULT_COMPONENTS = [
    {
        "name": "scheduler",
        "severity": CRITICAL,
        "selectors": [{"namespace": "{airflow}", "labels": {"component": "scheduler"}, "required": True}],
    },
    {
        "name": "dag-processor",
        "severity": CRITICAL,
        "selectors": [{"namespace": "{airflow}", "labels": {"component": "dag-processor"}, "required": True}],
    },
    {
        "name": "triggerer",
        "severity": CRITICAL,
        "selectors": [{"namespace": "{airflow}", "labels": {"component": "triggerer"}, "required": True}],
    },
    {
        "name": "api-server",
        "severity": CRITICAL,
        "selectors": [{"namespace": "{airflow}", "labels": {"component": "api-server"}, "required": True}],
    },
    {
        "name": "PostgreSQL",
        "severity": CRITICAL,
        "selectors": [
            # The application database: bitnami chart, architecture replication -> its primary pod (the chart's
            # labels, whatever the release is called in the cluster contract).
            {"namespace": "{databases_namespace}", "labels": {"app.kubernetes.io/name": "postgresql",
                                                    "app.kubernetes.io/component": "primary"}, "required": True,
             "label": "application database"},
            # Airflow's metadata database, when the chart's bundled PostgreSQL is used (optional: it may be external).
            {"namespace": "{airflow}", "labels": {"app.kubernetes.io/name": "postgresql"}, "required": False,
             "label": "Airflow metadata"},
        ],
    },
    {
        "name": "statsd",
        "severity": WARN,
        "selectors": [{"namespace": "{airflow}", "labels": {"component": "statsd"}, "required": True}],
    },
]

CHECKLIST = [
    ("scheduler", "Scheduler running with all containers ready", "component:scheduler"),
    ("dags", "DAGs in serialized_dag and in the API", "dags.serialized"),
    ("trigger", "historical_load_equities can be unpaused and triggered", "dags.trigger"),
    ("config", "Its configuration comes from financial_screener.dag_configuration and pods carry the resources "
               "from those rows", "dags.config_resources"),
    ("indicators", "calculate_indicators ran after the historical load", "dags.indicators_after_load"),
    ("backup", "Newest Velero backup Completed with the airflow and databases namespaces and PVCs", "velero.backup"),
    ("ui", "UI answers on the ingress host with valid TLS", "ui.ingress"),
]

# Order of findings in the report (critical issues keep this order too).
FINDING_ORDER = [
    "cluster.api",
    "dags.volume",
    "storage.multi_attach",
    "storage.rwo_shared_nodes",
    "storage.pvc_unbound",
    "pods.stuck_init",
    "pods.not_ready",
    "components.missing",
    "dags.serialized",
    "dags.trigger",
    "dags.config_resources",
    "dags.indicators_after_load",
    "velero.backup",
    "ui.ingress",
]


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------

def parse_time(value):
    """Parse a Kubernetes / Airflow timestamp into an aware datetime (None when absent or unparsable)."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # fromisoformat in 3.11 accepts fractions of any length only up to 6 digits.
    match = re.match(r"^(.*\.\d{6})\d+(.*)$", text)
    if match:
        text = match.group(1) + match.group(2)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_time(value):
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else "unknown time"


def human_age(seconds):
    seconds = int(max(seconds, 0))
    if seconds < 120:
        return "%ds" % seconds
    if seconds < 7200:
        return "%dm" % (seconds // 60)
    if seconds < 172800:
        return "%dh" % (seconds // 3600)
    return "%dd" % (seconds // 86400)


def objects(value):
    """Flatten kubectl Lists, k8s_info results, looped registers and plain lists into a list of objects."""
    found = []
    if value is None:
        return found
    if isinstance(value, list):
        for item in value:
            found.extend(objects(item))
        return found
    if not isinstance(value, dict):
        return found
    if "kind" in value and "metadata" in value and not value.get("kind", "").endswith("List"):
        found.append(value)
        return found
    for key in ("items", "resources", "results"):
        if key in value:
            found.extend(objects(value[key]))
    return found


def meta(obj, key, default=None):
    return (obj.get("metadata") or {}).get(key, default)


def labels_of(obj):
    return meta(obj, "labels") or {}


def ref(obj):
    return "%s/%s" % (meta(obj, "namespace", "-"), meta(obj, "name", "?"))


def worst(statuses, default=OK):
    result = default
    for status in statuses:
        if STATUS_RANK.get(status, 0) > STATUS_RANK.get(result, 0):
            result = status
    return result


def _unique(seq):
    seen = []
    for item in seq:
        if item not in seen:
            seen.append(item)
    return seen


# Kubernetes resource quantities --------------------------------------------------------------------

_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10) ** 3,
            "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
            "E": Decimal(10) ** 18}
_QUANTITY_RE = re.compile(
    r"^\s*(?P<num>[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)\s*(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)\s*$")


def parse_quantity(value):
    """Parse a Kubernetes quantity ("500m", "1Gi", "0.5", 2) into a Decimal; None when unparsable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    match = _QUANTITY_RE.match(str(value))
    if not match:
        return None
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation:
        return None
    suffix = match.group("suffix")
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix]


def quantities_equal(left, right):
    a, b = parse_quantity(left), parse_quantity(right)
    if a is None or b is None:
        return str(left).strip() == str(right).strip()
    return a == b


# --------------------------------------------------------------------------------------------------
# pods
# --------------------------------------------------------------------------------------------------

def pod_display_status(pod):
    """The STATUS column of ``kubectl get pods`` (Init:0/1, CrashLoopBackOff, Running, Pending, ...)."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    init_specs = spec.get("initContainers") or []
    restartable = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    initializing = False
    for index, cstat in enumerate(status.get("initContainerStatuses") or []):
        state = cstat.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if cstat.get("name") in restartable and cstat.get("started"):
            continue
        if terminated:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = "Init:Signal:%s" % terminated["signal"]
            else:
                reason = "Init:ExitCode:%s" % terminated.get("exitCode")
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = "Init:%d/%d" % (index, len(init_specs) or len(status.get("initContainerStatuses") or []))
        initializing = True
        break
    if not initializing:
        has_running = False
        for cstat in reversed(status.get("containerStatuses") or []):
            state = cstat.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif state.get("terminated"):
                reason = "ExitCode:%s" % state["terminated"].get("exitCode")
            elif cstat.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if meta(pod, "deletionTimestamp"):
        reason = "Terminating"
    return reason


def _condition(pod, ctype):
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def summarize_pod(pod, now, stuck_after):
    """Facts about one pod the findings need."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    cstats = status.get("containerStatuses") or []
    ready_count = sum(1 for c in cstats if c.get("ready"))
    phase = status.get("phase") or "Unknown"
    display = pod_display_status(pod)
    ready = phase == "Running" and bool(containers) and ready_count == len(containers) and not meta(
        pod, "deletionTimestamp")
    completed = phase == "Succeeded"
    ready_cond = _condition(pod, "Ready") or {}
    since = parse_time(ready_cond.get("lastTransitionTime")) if ready_cond.get("status") == "False" else None
    since = since or parse_time(status.get("startTime")) or parse_time(meta(pod, "creationTimestamp"))
    stuck_for = (now - since).total_seconds() if since else None
    long_enough = stuck_for is None or stuck_for >= stuck_after
    claims = {}
    for volume in spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            claims[claim] = volume.get("name")
    waiting_init = []
    for cstat in status.get("initContainerStatuses") or []:
        waiting = (cstat.get("state") or {}).get("waiting")
        if waiting:
            waiting_init.append("%s: %s" % (cstat.get("name"), waiting.get("reason") or "waiting"))
    owner = (meta(pod, "ownerReferences") or [{}])[0]
    unschedulable = _condition(pod, "PodScheduled") or {}
    return {
        "name": meta(pod, "name"),
        "namespace": meta(pod, "namespace"),
        "ref": ref(pod),
        "node": spec.get("nodeName"),
        "phase": phase,
        "display": display,
        "ready": ready,
        "completed": completed,
        "ready_count": ready_count,
        "container_count": len(containers),
        "container_names": [c.get("name") for c in containers],
        "init_names": [c.get("name") for c in spec.get("initContainers") or []],
        "labels": labels_of(pod),
        "claims": claims,
        "init_waiting": waiting_init,
        "stuck_init": display.startswith("Init:") and long_enough and not ready,
        "not_ready_long": (not ready) and (not completed) and long_enough and not meta(pod, "deletionTimestamp"),
        "stuck_for": stuck_for,
        "terminating": bool(meta(pod, "deletionTimestamp")),
        "owner_kind": owner.get("kind"),
        "owner_name": owner.get("name"),
        "unschedulable": unschedulable.get("status") == "False" and unschedulable.get("reason") == "Unschedulable",
        "unschedulable_message": unschedulable.get("message"),
        "task_pod": labels_of(pod).get("kubernetes_pod_operator") in ("True", "true") or "dag_id" in labels_of(pod),
    }


def describe_pod(summary, with_node=True):
    text = summary["name"]
    if with_node:
        text += " on %s" % (summary["node"] or "no node (unscheduled)")
    text += ": %s" % summary["display"]
    if summary["ready"]:
        text += " %d/%d ready" % (summary["ready_count"], summary["container_count"])
    elif summary["init_waiting"] and summary["display"].startswith("Init:"):
        text += " (%s)" % ", ".join(summary["init_waiting"])
    elif summary["container_count"]:
        text += " (%d/%d containers ready)" % (summary["ready_count"], summary["container_count"])
    if not summary["ready"] and summary["stuck_for"] is not None and summary["stuck_for"] > 0:
        text += " for %s" % human_age(summary["stuck_for"])
    return text


# --------------------------------------------------------------------------------------------------
# events and volumes
# --------------------------------------------------------------------------------------------------

def multi_attach_events(events):
    """FailedAttachVolume events with a Multi-Attach error, parsed."""
    found = []
    for event in events:
        message = event.get("message") or ""
        if event.get("reason") != "FailedAttachVolume" or "Multi-Attach error" not in message:
            continue
        involved = event.get("involvedObject") or {}
        volume = MULTI_ATTACH_RE.search(message)
        holders = MULTI_ATTACH_PODS_RE.search(message)
        found.append({
            "pod": involved.get("name"),
            "namespace": involved.get("namespace") or meta(event, "namespace"),
            "volume": volume.group("volume") if volume else None,
            "holders": [p.strip() for p in holders.group("pods").split(",")] if holders else [],
            "count": event.get("count") or (event.get("series") or {}).get("count") or 1,
            "last": event.get("lastTimestamp") or event.get("eventTime") or meta(event, "creationTimestamp"),
            "message": message,
        })
    return found


def _pvc_index(pvcs, pvs):
    """Map (namespace, claim) -> PVC facts, and PV name -> (namespace, claim)."""
    by_claim = {}
    by_volume = {}
    for pvc in pvcs:
        key = (meta(pvc, "namespace"), meta(pvc, "name"))
        spec = pvc.get("spec") or {}
        status = pvc.get("status") or {}
        by_claim[key] = {
            "namespace": key[0],
            "name": key[1],
            "ref": ref(pvc),
            "access_modes": spec.get("accessModes") or status.get("accessModes") or [],
            "storage_class": spec.get("storageClassName"),
            "volume": spec.get("volumeName"),
            "phase": status.get("phase") or "Unknown",
            "labels": labels_of(pvc),
            "size": ((spec.get("resources") or {}).get("requests") or {}).get("storage"),
        }
        if spec.get("volumeName"):
            by_volume[spec["volumeName"]] = key
    for pv in pvs:
        claim = (pv.get("spec") or {}).get("claimRef") or {}
        if claim.get("name"):
            by_volume.setdefault(meta(pv, "name"), (claim.get("namespace"), claim.get("name")))
    return by_claim, by_volume


def _is_rwo(pvc):
    modes = pvc["access_modes"]
    return bool(modes) and all(mode in RWO_MODES for mode in modes)


def _is_dag_claim(pvc, users, release_dags_names):
    if pvc["labels"].get("component") == "dags-pvc":
        return True
    if pvc["name"] in release_dags_names or pvc["name"].endswith("-dags"):
        return True
    return any(volume_name == "dags" for _pod, volume_name in users)


def volume_usage(pod_summaries, pvcs, pvs):
    """Per PVC: the pods that mount it, their nodes, and whether it is a DAG volume."""
    by_claim, by_volume = _pvc_index(pvcs, pvs)
    usage = {}
    for summary in pod_summaries:
        for claim, volume_name in summary["claims"].items():
            key = (summary["namespace"], claim)
            entry = usage.setdefault(key, {"pvc": by_claim.get(key), "users": []})
            entry["users"].append((summary, volume_name))
    for key, pvc in by_claim.items():
        usage.setdefault(key, {"pvc": pvc, "users": []})
    for key, entry in usage.items():
        pvc = entry["pvc"] or {"namespace": key[0], "name": key[1], "ref": "%s/%s" % key, "access_modes": [],
                               "storage_class": None, "volume": None, "phase": "Missing", "labels": {},
                               "size": None}
        entry["pvc"] = pvc
        entry["nodes"] = sorted({u[0]["node"] for u in entry["users"] if u[0]["node"]})
        entry["is_dag"] = _is_dag_claim(pvc, [(u[0], u[1]) for u in entry["users"]], ("airflow-dags",))
    return usage, by_volume


# --------------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------------

def finding(fid, title, status, evidence, root_cause="", impact="", resolution="", **extra):
    result = {
        "id": fid,
        "title": title,
        "status": status,
        "evidence": [e for e in evidence if e],
        "root_cause": root_cause,
        "impact": impact,
        "resolution": resolution,
    }
    result.update(extra)
    return result


class _Context(object):
    """What every check needs: options, parsed pods, volume usage, and pods already explained."""

    def __init__(self, state, options):
        self.state = state
        self.options = options
        now = parse_time(options.get("now")) or datetime.now(timezone.utc)
        self.now = now
        stuck_after = int(options.get("stuck_after_seconds") or 0)
        self.pods = [summarize_pod(p, now, stuck_after) for p in objects(state.get("pods"))]
        self.task_pods = [summarize_pod(p, now, stuck_after) for p in objects(state.get("task_pods"))]
        self.events = objects(state.get("events"))
        self.pvcs = objects(state.get("pvcs"))
        self.pvs = objects(state.get("pvs"))
        self.statefulsets = objects(state.get("statefulsets"))
        self.deployments = objects(state.get("deployments"))
        self.backups = objects(state.get("backups"))
        self.ingresses = objects(state.get("ingresses"))
        self.usage, self.by_volume = volume_usage(self.pods, self.pvcs, self.pvs)
        self.multi_attach = multi_attach_events(self.events)
        self.explained = {}  # pod ref -> finding id
        self.pod_by_ref = dict((p["ref"], p) for p in self.pods)
        self.components = resolve_components(options)
        self.component_of = {}
        for component in self.components:
            for selector in component["selectors"]:
                for pod in self.pods:
                    if selector_matches(selector, pod):
                        self.component_of.setdefault(pod["ref"], component)

    def pod(self, namespace, name):
        return self.pod_by_ref.get("%s/%s" % (namespace, name))

    def explain(self, pod_refs, fid):
        for pod_ref in pod_refs:
            self.explained.setdefault(pod_ref, fid)


def resolve_components(options):
    components = copy.deepcopy(options.get("components") or DEFAULT_COMPONENTS)
    names = {"airflow": options["airflow_namespace"], "databases_namespace": options["databases_namespace"]}
    for component in components:
        component.setdefault("severity", CRITICAL)
        for selector in component.get("selectors") or []:
            selector["namespace"] = str(selector.get("namespace", "")).format(**names)
            selector.setdefault("required", True)
    return components


def selector_matches(selector, pod):
    if selector.get("namespace") and selector["namespace"] != pod["namespace"]:
        return False
    wanted = selector.get("labels") or {}
    if any(pod["labels"].get(k) != v for k, v in wanted.items()):
        return False
    if selector.get("name_regex") and not re.search(selector["name_regex"], pod["name"] or ""):
        return False
    return bool(wanted or selector.get("name_regex"))


def _claim_pods_blocked(ctx, entry):
    """Pods that mount the claim and are not ready."""
    return [u[0] for u in entry["users"] if not u[0]["ready"] and not u[0]["completed"]]


def _volume_events(ctx, key, entry):
    pv_name = entry["pvc"].get("volume")
    users = {u[0]["name"] for u in entry["users"]}
    matched = []
    for event in ctx.multi_attach:
        if event["volume"] and pv_name and event["volume"] == pv_name:
            matched.append(event)
        elif event["volume"] and ctx.by_volume.get(event["volume"]) == key:
            matched.append(event)
        elif not event["volume"] and event["namespace"] == key[0] and event["pod"] in users:
            matched.append(event)
    return matched


def _collision(ctx, key, entry):
    """Evidence that an RWO claim is wanted on several nodes at once: events, nodes, blocked pods."""
    events = _volume_events(ctx, key, entry)
    active_events = []
    stale_events = []
    for event in events:
        pod = ctx.pod(event["namespace"], event["pod"])
        (active_events if pod and not pod["ready"] else stale_events).append(event)
    blocked = _claim_pods_blocked(ctx, entry)
    multi_node = _is_rwo(entry["pvc"]) and len(entry["nodes"]) > 1
    return {
        "events": events,
        "active_events": active_events,
        "stale_events": stale_events,
        "blocked": blocked,
        "multi_node": multi_node,
        "critical": bool(active_events) or (multi_node and bool(blocked)),
    }


def _event_line(event):
    holders = ", ".join(event["holders"]) or "another node"
    return ('event FailedAttachVolume on pod %s/%s (x%s, last %s): Multi-Attach error for volume "%s", '
            'already used by %s' % (event["namespace"], event["pod"], event["count"], format_time(event["last"]),
                                    event["volume"] or "?", holders))


def _users_line(entry):
    parts = ["%s (%s)" % (u[0]["name"], u[0]["node"] or "unscheduled") for u in entry["users"]]
    return ", ".join(parts) or "no pod"


def check_dag_volume(ctx):
    fid = "dags.volume"
    ns = ctx.options["airflow_namespace"]
    dag_entries = [(k, e) for k, e in sorted(ctx.usage.items()) if k[0] == ns and e["is_dag"]]
    git_sync_pods = [p["name"] for p in ctx.pods if p["namespace"] == ns and "git-sync" in p["container_names"]]
    if not dag_entries:
        evidence = ["no DAG PersistentVolumeClaim in namespace %s" % ns]
        if git_sync_pods:
            evidence.append("DAGs delivered by git-sync sidecars in %s" % ", ".join(sorted(git_sync_pods)))
        return finding(fid, "DAG delivery does not depend on a ReadWriteOnce volume", OK, evidence)
    statuses = []
    evidence = []
    blocked_refs = []
    rwo_claims = []
    for key, entry in dag_entries:
        pvc = entry["pvc"]
        modes = ", ".join(pvc["access_modes"]) or "unknown access mode"
        evidence.append("PVC %s: %s, storageClass %s, phase %s, volume %s, mounted by %s" % (
            pvc["ref"], modes, pvc["storage_class"] or "default", pvc["phase"], pvc["volume"] or "-",
            _users_line(entry)))
        if not _is_rwo(pvc):
            statuses.append(OK)
            continue
        rwo_claims.append(pvc["ref"])
        collision = _collision(ctx, key, entry)
        for event in collision["active_events"]:
            evidence.append(_event_line(event))
        for event in collision["stale_events"]:
            evidence.append(_event_line(event) + " (pod now ready or gone)")
        if collision["multi_node"]:
            evidence.append("ReadWriteOnce claim %s is used by pods on %d nodes: %s" % (
                pvc["ref"], len(entry["nodes"]), ", ".join(entry["nodes"])))
        if collision["critical"]:
            blocked = collision["blocked"]
            for pod in blocked:
                evidence.append("blocked pod %s" % describe_pod(pod))
            blocked_refs.extend(p["ref"] for p in blocked)
            for event in collision["active_events"]:
                blocked_refs.append("%s/%s" % (event["namespace"], event["pod"]))
            statuses.append(CRITICAL)
        else:
            statuses.append(WARN)
    status = worst(statuses)
    if status == CRITICAL:
        ctx.explain(_unique(blocked_refs), fid)
    resolution = ("Deliver DAGs with git-sync (pi_cluster_dags_mode=git_sync, the default) or a ReadWriteMany volume "
                  "on nfs-client (pi_cluster_dags_mode=rwx_pvc), never a ReadWriteOnce volume: "
                  "`ansible-playbook playbooks/repair-dags.yml` shows the plan, `-e repair_apply=true` applies it "
                  "(upgrades the release, deletes the stuck pods; `-e repair_delete_dag_pvc=true` also deletes the "
                  "orphaned RWO claim).")
    if status == CRITICAL:
        blocked_names = _unique(r.split("/", 1)[1] for r in blocked_refs)
        return finding(
            fid,
            "DAG volume %s is ReadWriteOnce: Multi-Attach blocks %s" % (", ".join(rwo_claims),
                                                                       ", ".join(blocked_names)),
            CRITICAL, evidence,
            root_cause=("The DAG folder is a ReadWriteOnce Longhorn volume mounted by the scheduler, dag-processor and "
                        "triggerer. A ReadWriteOnce volume attaches to one node only; with those pods on different "
                        "nodes the attach/detach controller refuses the second attachment (Multi-Attach error) and "
                        "the pod waits in Init forever."),
            impact=("The blocked pods never start (the scheduler schedules nothing, no task runs); a helm upgrade "
                    "that waits for them times out; DAG files copied into the volume by hand are lost when it is "
                    "re-created."),
            resolution=resolution,
            blocked_pods=_unique(blocked_refs),
        )
    if status == WARN:
        return finding(
            fid, "DAG volume %s is ReadWriteOnce (no collision right now)" % ", ".join(rwo_claims), WARN, evidence,
            root_cause="The DAG folder is a ReadWriteOnce volume; it only works while every pod that mounts it "
                       "runs on the same node.",
            impact="The next reschedule onto another node (drain, reboot, upgrade) leaves that pod stuck in Init "
                   "with a Multi-Attach error.",
            resolution=resolution,
        )
    return finding(fid, "DAG volume is ReadWriteMany", OK, evidence)


def check_storage_multi_attach(ctx):
    fid = "storage.multi_attach"
    handled = set()
    for key, entry in ctx.usage.items():
        if entry["is_dag"] and key[0] == ctx.options["airflow_namespace"]:
            for event in _volume_events(ctx, key, entry):
                handled.add(id(event))
    events = [e for e in ctx.multi_attach if id(e) not in handled]
    if not events:
        return finding(fid, "No Multi-Attach errors on other volumes", OK,
                       ["%d Multi-Attach event(s) in total, all on the DAG volume" % len(ctx.multi_attach)]
                       if ctx.multi_attach else ["no FailedAttachVolume Multi-Attach events"])
    evidence = []
    statuses = []
    blocked = []
    for event in events:
        pod = ctx.pod(event["namespace"], event["pod"])
        claim = ctx.by_volume.get(event["volume"])
        line = _event_line(event)
        if claim:
            line += " (claim %s/%s)" % claim
        if pod and not pod["ready"]:
            statuses.append(CRITICAL)
            blocked.append(pod["ref"])
            evidence.append(line)
            evidence.append("blocked pod %s" % describe_pod(pod))
        else:
            statuses.append(WARN)
            evidence.append(line + " (pod now ready or gone)")
    status = worst(statuses)
    if status == CRITICAL:
        ctx.explain(blocked, fid)
    return finding(
        fid, "Multi-Attach errors block %s" % (", ".join(r.split("/", 1)[1] for r in _unique(blocked)) or "a volume"),
        status, evidence,
        root_cause="A ReadWriteOnce volume is still attached to another node (another pod uses it, or a node went "
                   "away without detaching it), so the attach/detach controller refuses a second attachment.",
        impact="The pod that needs the volume cannot start.",
        resolution="Keep pods that share a ReadWriteOnce claim on one node (or use a ReadWriteMany class such as "
                   "nfs-client); if the holder is gone, check the VolumeAttachment and the Longhorn volume, then "
                   "delete the stuck pod.",
    )


def check_storage_rwo_shared(ctx):
    fid = "storage.rwo_shared_nodes"
    evidence = []
    statuses = []
    blocked = []
    for key, entry in sorted(ctx.usage.items()):
        if entry["is_dag"] and key[0] == ctx.options["airflow_namespace"]:
            continue
        if not _is_rwo(entry["pvc"]) or len(entry["nodes"]) < 2:
            continue
        not_ready = _claim_pods_blocked(ctx, entry)
        evidence.append("ReadWriteOnce claim %s is mounted by pods on %d nodes: %s" % (
            entry["pvc"]["ref"], len(entry["nodes"]), _users_line(entry)))
        unexplained = [p for p in not_ready if p["ref"] not in ctx.explained]
        if not_ready:
            statuses.append(CRITICAL if unexplained else WARN)
            blocked.extend(p["ref"] for p in not_ready)
            for pod in not_ready:
                evidence.append("pod %s" % describe_pod(pod))
        else:
            statuses.append(WARN)
    if not evidence:
        return finding(fid, "No ReadWriteOnce claim is shared across nodes", OK,
                       ["%d claim(s) checked" % len(ctx.usage)])
    status = worst(statuses)
    if status == CRITICAL:
        ctx.explain(blocked, fid)
    return finding(
        fid, "ReadWriteOnce claims used by pods on different nodes", status, evidence,
        root_cause="Several pods on different nodes mount one ReadWriteOnce claim; only the node it is attached "
                   "to can run them.",
        impact="All but one node's pods wait in ContainerCreating/Init; the next reschedule moves the outage around.",
        resolution="Use a ReadWriteMany storage class (nfs-client) for shared data, or pin the pods to one node "
                   "(podAffinity), or give each pod its own claim (StatefulSet volumeClaimTemplates).",
    )


def check_pvc_unbound(ctx):
    fid = "storage.pvc_unbound"
    namespaces = (ctx.options["airflow_namespace"], ctx.options["databases_namespace"])
    evidence = []
    statuses = []
    blocked = []
    for key, entry in sorted(ctx.usage.items()):
        pvc = entry["pvc"]
        if key[0] not in namespaces or pvc["phase"] == "Bound":
            continue
        users = [u[0] for u in entry["users"]]
        line = "PVC %s is %s (storageClass %s, %s)" % (
            pvc["ref"], pvc["phase"], pvc["storage_class"] or "default", ", ".join(pvc["access_modes"]) or "-")
        for event in ctx.events:
            involved = event.get("involvedObject") or {}
            if involved.get("kind") == "PersistentVolumeClaim" and (involved.get("namespace"), involved.get(
                    "name")) == key and event.get("type") == "Warning":
                line += "; %s: %s" % (event.get("reason"), event.get("message"))
                break
        if users:
            line += "; needed by %s" % ", ".join(u["name"] for u in users)
        evidence.append(line)
        waiting_users = [u for u in users if not u["ready"]]
        statuses.append(CRITICAL if waiting_users or pvc["phase"] in ("Lost", "Missing") else WARN)
        blocked.extend(u["ref"] for u in waiting_users)
    if not evidence:
        return finding(fid, "Every PVC is Bound", OK, ["%d PVC(s) in %s, all Bound" % (
            len([k for k in ctx.usage if k[0] in namespaces]), ", ".join(namespaces))])
    status = worst(statuses)
    if status == CRITICAL:
        ctx.explain(blocked, fid)
    return finding(
        fid, "PersistentVolumeClaims not Bound", status, evidence,
        root_cause="The storage class cannot provision the volume (Longhorn not ready, not enough replicas/nodes, "
                   "nfs-client provisioner down, unknown storage class) or the claim's volume was lost.",
        impact="Pods that mount the claim stay Pending.",
        resolution="`kubectl describe pvc` for the provisioner's message; check Longhorn (longhorn-system) or the "
                   "nfs-subdir-external-provisioner pod; re-run `ansible-playbook site.yml --tags storage`.",
    )


def _component_tag(ctx, pod):
    component = ctx.component_of.get(pod["ref"])
    return component["name"] if component else None


def _pods_in_scope(ctx):
    namespaces = (ctx.options["airflow_namespace"], ctx.options["databases_namespace"])
    return [p for p in ctx.pods if p["namespace"] in namespaces and not p["task_pod"]]


def check_pods_stuck_init(ctx):
    fid = "pods.stuck_init"
    stuck = [p for p in _pods_in_scope(ctx) if p["stuck_init"] and not p["terminating"]]
    unexplained = [p for p in stuck if p["ref"] not in ctx.explained]
    explained = [p for p in stuck if p["ref"] in ctx.explained]
    if not unexplained:
        evidence = ["%s (explained by %s)" % (describe_pod(p), ctx.explained[p["ref"]]) for p in explained]
        return finding(fid, "No pod stuck in Init without a known cause", OK,
                       evidence or ["no pod in Init for more than %ss" % ctx.options["stuck_after_seconds"]])
    statuses = []
    evidence = []
    for pod in unexplained:
        component = ctx.component_of.get(pod["ref"])
        statuses.append(component["severity"] if component else WARN)
        evidence.append("pod %s%s" % (describe_pod(pod), " [%s]" % component["name"] if component else ""))
        for event in ctx.events:
            involved = event.get("involvedObject") or {}
            if involved.get("name") == pod["name"] and event.get("type") == "Warning":
                evidence.append("event %s on %s: %s" % (event.get("reason"), pod["name"], event.get("message")))
    ctx.explain([p["ref"] for p in unexplained], fid)
    return finding(
        fid, "Pods stuck in Init: %s" % ", ".join(p["name"] for p in unexplained), worst(statuses), evidence,
        root_cause=("An init container does not finish: wait-for-airflow-migrations waits for the migration job "
                    "(metadata database unreachable or migrations failed), git-sync-init cannot clone, or a volume "
                    "cannot be mounted (see the events)."),
        impact="The pod never starts its main containers.",
        resolution=("`kubectl -n <ns> logs <pod> -c <init container>` and `kubectl describe pod`; for "
                    "wait-for-airflow-migrations check the run-airflow-migrations job and the metadata database."),
    )


def check_pods_not_ready(ctx):
    fid = "pods.not_ready"
    bad = [p for p in _pods_in_scope(ctx)
           if p["not_ready_long"] and not p["stuck_init"] and p["ref"] not in ctx.explained]
    if not bad:
        scope = _pods_in_scope(ctx)
        return finding(fid, "Every other pod is ready", OK, ["%d of %d pod(s) ready" % (
            len([p for p in scope if p["ready"]]), len([p for p in scope if not p["completed"]]))])
    statuses = []
    evidence = []
    for pod in bad:
        component = ctx.component_of.get(pod["ref"])
        if pod["owner_kind"] == "Job" and not component:
            statuses.append(WARN)
        else:
            statuses.append(component["severity"] if component else WARN)
        line = "pod %s%s" % (describe_pod(pod), " [%s]" % component["name"] if component else "")
        if pod["unschedulable"]:
            line += "; unschedulable: %s" % pod["unschedulable_message"]
        evidence.append(line)
    ctx.explain([p["ref"] for p in bad], fid)
    return finding(
        fid, "Pods not ready: %s" % ", ".join(p["name"] for p in bad), worst(statuses), evidence,
        root_cause="Containers crash or cannot start (CrashLoopBackOff, ImagePullBackOff, failing probes, no node "
                   "with enough resources).",
        impact="The component's work stops or runs degraded.",
        resolution="`kubectl -n <ns> describe pod <pod>` and `kubectl -n <ns> logs <pod> --previous`; fix the "
                   "configuration and re-run the layer that owns it.",
    )


def _workload_for(ctx, component):
    found = []
    for workload in ctx.statefulsets + ctx.deployments:
        for selector in component["selectors"]:
            if selector["namespace"] != meta(workload, "namespace"):
                continue
            wanted = selector.get("labels") or {}
            template_labels = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                "labels") or {}
            if wanted and all(template_labels.get(k) == v for k, v in wanted.items()):
                found.append(workload)
            elif selector.get("name_regex") and re.search(selector["name_regex"], meta(workload, "name") + "-0"):
                found.append(workload)
    return found


def _workload_line(workload):
    spec = workload.get("spec") or {}
    status = workload.get("status") or {}
    line = "%s %s: %s/%s ready" % (workload.get("kind"), ref(workload), status.get("readyReplicas", 0),
                                   spec.get("replicas", 1))
    return line + (" (scaled to 0)" if spec.get("replicas", 1) == 0 else "")


def evaluate_components(ctx):
    rows = []
    missing = []
    for component in ctx.components:
        statuses = []
        evidence = []
        related = []
        for selector in component["selectors"]:
            pods = [p for p in ctx.pods if selector_matches(selector, p) and not p["completed"]]
            label = selector.get("label")
            if not pods:
                if selector["required"]:
                    statuses.append(component["severity"])
                    missing.append((component, selector))
                    evidence.append("no %spod in namespace %s" % (label + " " if label else "", selector["namespace"]))
                    related.append("components.missing")
                continue
            for pod in pods:
                text = describe_pod(pod)
                if label:
                    text = "%s: %s" % (label, text)
                if pod["ready"]:
                    statuses.append(OK)
                elif pod["terminating"] and any(p["ready"] for p in pods if p is not pod):
                    statuses.append(OK)
                    text += " (being replaced)"
                else:
                    statuses.append(component["severity"] if pod["stuck_for"] is None or pod["not_ready_long"] or
                                    pod["stuck_init"] else WARN)
                    if pod["ref"] in ctx.explained:
                        text += " \u2014 see %s" % ctx.explained[pod["ref"]]
                        related.append(ctx.explained[pod["ref"]])
                evidence.append(text)
        for workload in _workload_for(ctx, component):
            evidence.append(_workload_line(workload))
        rows.append({
            "name": component["name"],
            "status": worst(statuses) if statuses else SKIPPED,
            "evidence": evidence,
            "findings": _unique(related),
        })
    return rows, missing


def check_components_missing(ctx, missing):
    fid = "components.missing"
    if not missing:
        return finding(fid, "Every expected component has pods", OK,
                       ["components: %s" % ", ".join(c["name"] for c in ctx.components)])
    evidence = []
    statuses = []
    for component, selector in missing:
        statuses.append(component["severity"])
        line = "%s: no pod matches %s in namespace %s" % (
            component["name"],
            ", ".join("%s=%s" % kv for kv in sorted((selector.get("labels") or {}).items())) or selector.get(
                "name_regex"),
            selector["namespace"])
        workloads = _workload_for(ctx, {"selectors": [selector]})
        if workloads:
            line += " (%s)" % "; ".join(_workload_line(w) for w in workloads)
        else:
            line += " (no StatefulSet/Deployment either)"
        evidence.append(line)
    return finding(
        fid, "Components without pods: %s" % ", ".join(_unique(c["name"] for c, _s in missing)), worst(statuses),
        evidence,
        root_cause="The workload is missing, scaled to zero, or its pods cannot be created (quota, admission, "
                   "missing service account); for the Airflow components the release may be missing or disabled "
                   "in the values.",
        impact="The component's function is absent.",
        resolution="`helm -n airflow status airflow` / `kubectl get sts,deploy -A`; re-run the owning layer "
                   "(`ansible-playbook site.yml --tags airflow` or `--tags data`).",
    )


# DAG status ----------------------------------------------------------------------------------------

def _as_list(value):
    if value is None or isinstance(value, dict):
        return []
    if isinstance(value, (list, tuple, set)):
        return [v for v in value if isinstance(v, str)]
    return [value]


def normalize_dag_status(result, expected):
    """Read the registered result of stratdata.pi_cluster.airflow_dag_status.

    That module returns ``dags`` (per expected dag_id: found, serialized, is_stale, is_paused, api_visible,
    problems, ok), the lists ``missing`` (not in table dag), ``not_serialized``, ``stale``, ``paused``,
    ``api_invisible``, ``import_errors`` ([{filename, bundle_name, timestamp, stacktrace}]), ``api_checked``
    and, when it fails, ``msg``. Registered with ``failed_when: false`` a failure keeps everything but
    ``failed``. A connection error leaves only ``msg``: then nothing is known.

    Returns dict: checked (bool), error (str|None), missing_serialized, missing_api (sorted lists of expected
    ids), in_api (set, or None when the API was not asked), problems (["dag: problem"]), import_errors
    (["file: last line"]), serialized_count (int|None, only if the module reports one), paused (list).
    """
    if not result:
        return {"checked": False, "error": "the DAG status check did not run"}
    if result.get("skipped"):
        return {"checked": False, "error": "the DAG status check was skipped: %s" % result.get(
            "skip_reason", result.get("msg", "no reason given"))}
    details = {}
    raw = result.get("dags")
    if isinstance(raw, dict):
        for dag_id, item in raw.items():
            details[dag_id] = dict(item or {}, dag_id=dag_id)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and item.get("dag_id"):
                details[item["dag_id"]] = item
            elif isinstance(item, str):
                details[item] = {"dag_id": item, "serialized": True}
    not_serialized = set()
    not_in_api = set()
    api_known = bool(result.get("api_checked"))
    for dag_id, item in details.items():
        if item.get("found") is False or item.get("serialized") is False or item.get("is_stale"):
            not_serialized.add(dag_id)
        api_flag = item.get("api_visible", item.get("in_api"))
        if api_flag is not None:
            api_known = True
            if not api_flag:
                not_in_api.add(dag_id)
    for key in ("missing", "not_serialized", "stale", "missing_serialized"):
        not_serialized.update(_as_list(result.get(key)))
    for key in ("api_invisible", "missing_in_api"):
        if key in result:
            api_known = api_known or bool(result.get("api_checked", True))
        not_in_api.update(_as_list(result.get(key)))
    errors = []
    raw_errors = result.get("import_errors") or []
    if isinstance(raw_errors, dict):
        raw_errors = [{"filename": k, "stacktrace": v} for k, v in raw_errors.items()]
    for item in raw_errors:
        if isinstance(item, dict):
            trace = str(item.get("stacktrace") or item.get("stack_trace") or item.get("error") or "").strip()
            last = trace.splitlines()[-1] if trace else ""
            errors.append("%s: %s" % (item.get("filename") or "?", last))
        else:
            errors.append(str(item))
    problems = []
    for dag_id in expected:
        for problem in (details.get(dag_id) or {}).get("problems") or []:
            problems.append("%s: %s" % (dag_id, problem))
    count = result.get("serialized_dag_count")
    known = bool(details) or bool(not_serialized) or bool(not_in_api) or count is not None
    if not known:
        # a connection or query error: registered with failed_when: false, only msg is left
        return {"checked": False, "error": str(result.get("msg") or "the DAG status check returned no DAG "
                                                                     "information")}
    missing_serialized = sorted(d for d in expected if d in not_serialized or (details and d not in details))
    missing_api = sorted(d for d in expected if api_known and d in not_in_api)
    return {
        "checked": True,
        "error": None,
        "missing_serialized": missing_serialized,
        "missing_api": missing_api,
        "in_api": ({d for d in expected if d not in not_in_api} if api_known else None),
        "problems": problems,
        "import_errors": errors,
        "serialized_count": count,
        "paused": sorted(d for d in expected if d in _as_list(result.get("paused"))),
        "msg": result.get("msg"),
    }


def check_dags_serialized(ctx, dag_state):
    fid = "dags.serialized"
    expected = list(ctx.options["expected_dag_ids"])
    if not dag_state["checked"]:
        return finding(
            fid, "DAG status could not be read", CRITICAL, [dag_state["error"]],
            root_cause="The metadata database or the Airflow API did not answer the DAG status check.",
            impact="Nothing is known about the DAGs; the UI most likely shows none either.",
            resolution="Check the api-server and the metadata PostgreSQL pods, then re-run "
                       "`ansible-playbook playbooks/verify.yml`.",
        )
    evidence = []
    if dag_state["serialized_count"] is not None:
        evidence.append("serialized_dag rows: %s" % dag_state["serialized_count"])
    evidence.append("expected DAGs: %s" % ", ".join(expected))
    if dag_state["missing_serialized"]:
        evidence.append("missing from serialized_dag: %s" % ", ".join(dag_state["missing_serialized"]))
    if dag_state["missing_api"]:
        evidence.append("missing from the API (/api/v2/dags): %s" % ", ".join(dag_state["missing_api"]))
    if dag_state["in_api"] is None:
        evidence.append("API not checked by the DAG status module")
    evidence.extend(dag_state["problems"])
    for error in dag_state["import_errors"]:
        evidence.append("import error %s" % error)
    if dag_state["paused"]:
        evidence.append("paused: %s" % ", ".join(dag_state["paused"]))
    if not dag_state["missing_serialized"] and not dag_state["missing_api"]:
        ok_line = "all expected DAGs serialized%s" % (" and listed by the API" if dag_state["in_api"] is not None
                                                      else "")
        evidence.insert(0, ok_line)
        if dag_state["import_errors"]:
            return finding(
                fid, "Expected DAGs present, but %d file(s) fail to import" % len(dag_state["import_errors"]), WARN,
                evidence,
                root_cause="Some DAG files raise on import (see the import errors).",
                impact="DAGs defined in those files are missing or stale.",
                resolution="Fix the DAG files in git; the dag-processor picks them up on the next sync.",
            )
        return finding(fid, "Expected DAGs are serialized and listed by the API", OK, evidence)
    volume = ctx.findings.get("dags.volume")
    nothing = dag_state["serialized_count"] == 0 or set(dag_state["missing_serialized"]) == set(expected)
    processors = [p for p in ctx.pods if (ctx.component_of.get(p["ref"]) or {}).get("name") == "dag-processor"]
    processor_down = not any(p["ready"] for p in processors)
    volume_bad = bool(volume) and volume["status"] in (CRITICAL, WARN)
    if dag_state["import_errors"]:
        cause = ("The dag-processor found the files but they fail to import (see the import errors), so they are "
                 "not serialized.")
    elif processor_down:
        cause = "The dag-processor is not running (%s), so nothing is parsed or serialized." % (
            "; ".join(describe_pod(p) for p in processors) or "no dag-processor pod")
        if volume_bad:
            cause += (" It waits for the ReadWriteOnce DAG volume (see dags.volume); and the DAG files that had been "
                      "copied into that volume by hand are gone, so even a running dag-processor would find an "
                      "empty folder: DAGs must come from git (git-sync) or be copied by the airflow role.")
    elif volume_bad and nothing:
        cause = ("The dag-processor serializes nothing because the DAG folder it reads is empty: the DAG files were "
                 "copied by hand into the ReadWriteOnce DAG volume (not delivered from git) and vanished when the "
                 "volume/pods were re-created.")
    elif nothing:
        cause = ("The dag-processor serializes nothing: the DAG folder is empty (git-sync not configured or failing, "
                 "or the DAG volume empty).")
    else:
        cause = "Some expected DAG files are missing from the DAG folder, or the dag-processor has not parsed them."
    if dag_state["serialized_count"] == 0:
        title = "No DAGs serialized: serialized_dag has 0 rows"
    elif set(dag_state["missing_serialized"]) == set(expected):
        title = "No DAGs serialized: none of the %d expected DAGs is in serialized_dag or the API" % len(expected)
    else:
        title = "Expected DAGs missing: %s" % ", ".join(_unique(dag_state["missing_serialized"] +
                                                                 dag_state["missing_api"]))
    return finding(
        fid, title, CRITICAL, evidence,
        root_cause=cause,
        impact="The UI and the API show no DAGs (the api-server reads serialized_dag only); nothing can be unpaused, "
               "triggered or scheduled.",
        resolution=("Deliver DAGs from git (git-sync) or an RWX volume filled by the airflow role, never by hand: "
                    "`ansible-playbook playbooks/repair-dags.yml -e repair_apply=true`; then check "
                    "`kubectl -n airflow logs deploy/airflow-dag-processor` and the import errors."),
    )


def _dag_missing(ctx, dag_state, dag_id):
    return dag_state["checked"] and dag_id in dag_state["missing_serialized"]


def check_trigger(ctx, dag_state):
    fid = "dags.trigger"
    dag_id = ctx.options["config_dag_id"]
    trigger = ctx.state.get("trigger") or {}
    if _dag_missing(ctx, dag_state, dag_id):
        return finding(fid, "Trigger of %s not possible" % dag_id, SKIPPED,
                       ["blocked: %s is not serialized (see dags.serialized)" % dag_id])
    if not trigger.get("requested"):
        return finding(fid, "Trigger of %s not requested" % dag_id, SKIPPED,
                       ["not run: pass -e verify_trigger=true to unpause and trigger %s and wait for it" % dag_id])
    evidence = []
    for key, label in (("unpause_status", "PATCH is_paused=false"), ("trigger_status", "POST dagRuns")):
        if trigger.get(key) is not None:
            evidence.append("%s: HTTP %s" % (label, trigger[key]))
    if trigger.get("dag_run_id"):
        evidence.append("run %s final state: %s" % (trigger["dag_run_id"], trigger.get("final_state") or "unknown"))
    if trigger.get("error"):
        evidence.append("error: %s" % trigger["error"])
    state = trigger.get("final_state")
    failed_http = any(trigger.get(k) is not None and not 200 <= int(trigger[k]) < 300
                      for k in ("unpause_status", "trigger_status"))
    if failed_http or (trigger.get("error") and not trigger.get("dag_run_id")):
        return finding(
            fid, "%s could not be unpaused/triggered" % dag_id, CRITICAL, evidence,
            root_cause="The REST API refused the request (authentication, permissions or the DAG is unknown to it).",
            impact="The DAG cannot be started from the API or the UI.",
            resolution="Check the admin credentials (vault_airflow_admin_password) and the api-server logs.",
        )
    if state == "success":
        return finding(fid, "%s unpaused, triggered and succeeded" % dag_id, OK, evidence)
    if state == "failed":
        return finding(
            fid, "Triggered run of %s failed" % dag_id, CRITICAL, evidence,
            root_cause="A task of the run failed (see the task logs in the UI).",
            impact="The historical load does not complete; calculate_indicators has no fresh data.",
            resolution="Open the run in the UI, read the failed task's log, fix and re-trigger.",
        )
    return finding(
        fid, "Triggered run of %s did not finish in time (state %s)" % (dag_id, state or "unknown"), WARN, evidence,
        root_cause="The run is still queued or running when the wait ended (long load, no free slot, or pods "
                   "pending).",
        impact="Success is not proven yet.",
        resolution="Raise verify_trigger_wait_seconds or watch the run in the UI.",
    )


# dag_configuration ---------------------------------------------------------------------------------
# financial_screener.dag_configuration (roles/appdb_config, migration 0001): one row per (dag_id, job_name)
# with cpu_request, memory_request (NOT NULL), cpu_limit, memory_limit (NULL = no limit set), enabled.
# historical_load_equities maps one KubernetesPodOperator pod per enabled row at run time.

ROW_RESOURCE_COLUMNS = (
    ("requests", "cpu", "cpu_request"),
    ("requests", "memory", "memory_request"),
    ("limits", "cpu", "cpu_limit"),
    ("limits", "memory", "memory_limit"),
)
# Pod labels that may name the row (job_name) a mapped pod was built from.
JOB_LABELS = ("job_name", "job-name", "stratdata.org/job-name", "financial_screener/job_name")


def row_resources(row):
    """{requests: {...}, limits: {...}} from one dag_configuration row (only the columns that are set)."""
    result = {"requests": {}, "limits": {}}
    for section, resource, column in ROW_RESOURCE_COLUMNS:
        if row.get(column) not in (None, ""):
            result[section][resource] = row[column]
    return result


def expected_resources(rows, dag_id, job_name=None):
    """Expected resources per enabled row of a DAG: list of (job_name, resources)."""
    found = []
    for row in rows or []:
        if not isinstance(row, dict) or row.get("dag_id") != dag_id or row.get("enabled") is False:
            continue
        if job_name is not None and row.get("job_name") != job_name:
            continue
        found.append((row.get("job_name"), row_resources(row)))
    return found


def pod_job_name(pod):
    for source in (labels_of(pod), meta(pod, "annotations") or {}):
        for key in JOB_LABELS:
            if source.get(key):
                return source[key]
    return None


def pod_resources(pod, container_name="base"):
    containers = (pod.get("spec") or {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == container_name), containers[0] if containers else {})
    resources = chosen.get("resources") or {}
    return chosen.get("name"), {"requests": dict(resources.get("requests") or {}),
                                "limits": dict(resources.get("limits") or {})}


def compare_resources(expected, actual):
    """Compare the four fields of a dag_configuration row with a container's resources.

    A NULL column (absent from ``expected``) means "not set": the container must not have it either.
    """
    problems = []
    for section, resource, _column in ROW_RESOURCE_COLUMNS:
        want = (expected.get(section) or {}).get(resource)
        have = (actual.get(section) or {}).get(resource)
        if want is None and have is None:
            continue
        if want is None:
            problems.append("%s.%s is %s, expected none (NULL in dag_configuration)" % (section, resource, have))
        elif have is None:
            problems.append("%s.%s missing (expected %s)" % (section, resource, want))
        elif not quantities_equal(want, have):
            problems.append("%s.%s is %s, expected %s" % (section, resource, have, want))
    return problems


def _fmt_resources(res):
    parts = []
    for section in ("requests", "limits"):
        for key, value in sorted((res.get(section) or {}).items()):
            parts.append("%s.%s=%s" % (section, key, value))
    return ", ".join(parts) or "none"


def match_pod_to_rows(pod, rows, dag_id):
    """Compare a task pod's container resources with the dag_configuration row(s) it may come from.

    Returns (matched_job_name or None, problems list, description). A pod that names its job (label or
    annotation job_name) is compared with that row only; otherwise it must match one enabled row.
    """
    container, have = pod_resources(pod)
    job = pod_job_name(pod)
    candidates = expected_resources(rows, dag_id, job)
    described = "pod %s (task %s%s, container %s): %s" % (
        ref(pod), labels_of(pod).get("task_id", "?"),
        ", map_index %s" % labels_of(pod)["map_index"] if "map_index" in labels_of(pod) else "",
        container, _fmt_resources(have))
    if not candidates:
        return None, ["no enabled dag_configuration row%s" % (" for job %s" % job if job else "")], described
    best = None
    for job_name, want in candidates:
        problems = compare_resources(want, have)
        if not problems:
            return job_name, [], described + " \u2014 matches row %s" % job_name
        if best is None or len(problems) < len(best[1]):
            best = (job_name, problems)
    return None, ["closest row %s: %s" % (best[0], "; ".join(best[1]))], described


def check_config_resources(ctx, dag_state):
    fid = "dags.config_resources"
    dag_id = ctx.options["config_dag_id"]
    config = ctx.state.get("dag_config")
    if _dag_missing(ctx, dag_state, dag_id):
        blocked = ["blocked: %s is not serialized (see dags.serialized), so no pod of it can run" % dag_id]
        if config and not config.get("failed") and not config.get("skipped"):
            blocked.append("%d dag_configuration row(s) read" % len(_config_rows(config)))
        return finding(fid, "Configuration of %s not verifiable" % dag_id, SKIPPED, blocked)
    if not config or config.get("skipped"):
        return finding(fid, "dag_configuration not queried", SKIPPED,
                       ["not run: %s" % ((config or {}).get("skip_reason") or "the appdb query did not run")])
    if config.get("failed"):
        msg = str(config.get("msg") or "query failed")
        return finding(
            fid, "financial_screener.dag_configuration could not be read", CRITICAL, ["query error: %s" % msg],
            root_cause=("The table does not exist (appdb_config not applied)" if "does not exist" in msg else
                        "The application database did not answer the query."),
            impact="DAGs cannot read their configuration; tasks fall back to defaults or fail.",
            resolution="`ansible-playbook site.yml --tags appdb_config`; check the application database's primary pod "
                       "in namespace %s." % ctx.options["databases_namespace"],
        )
    rows = [r for r in _config_rows(config) if r.get("dag_id") == dag_id]
    enabled = expected_resources(rows, dag_id)
    evidence = ["%d dag_configuration row(s) for %s, %d enabled: %s" % (
        len(rows), dag_id, len(enabled), "; ".join("%s %s" % (job, _fmt_resources(res)) for job, res in enabled)
        or "-")]
    if not enabled:
        return finding(
            fid, "No enabled dag_configuration row for %s" % dag_id, CRITICAL, evidence,
            root_cause="financial_screener.dag_configuration has no enabled row for the DAG (rows not applied, or "
                       "all disabled).",
            impact="The DAG maps no job: the historical load does nothing, or runs with hard-coded defaults.",
            resolution="`ansible-playbook site.yml --tags appdb_config` to apply the configuration rows.",
        )
    pods = []
    seen = set()
    for pod in objects(ctx.state.get("task_pods")) + objects(ctx.state.get("pods")):
        if labels_of(pod).get("dag_id") == dag_id and ref(pod) not in seen:
            seen.add(ref(pod))
            pods.append(pod)
    if not pods:
        evidence.append("no pod labelled dag_id=%s observed (KubernetesPodOperator pods are deleted when they "
                        "finish; run with -e verify_trigger=true to catch them while the run is going)" % dag_id)
        return finding(fid, "No pod of %s to compare with dag_configuration" % dag_id, SKIPPED, evidence)
    mismatched = []
    for pod in pods:
        _job, problems, described = match_pod_to_rows(pod, rows, dag_id)
        if problems:
            described += " \u2014 " + "; ".join(problems)
            mismatched.append(meta(pod, "name"))
        evidence.append(described)
    if mismatched:
        return finding(
            fid, "Pods of %s do not carry the resources from dag_configuration" % dag_id, CRITICAL, evidence,
            root_cause="The DAG builds its pod resources from hard-coded values or stale configuration instead of "
                       "the dag_configuration rows.",
            impact="Tasks run with the wrong requests/limits (OOM kills or starved nodes on the Pis).",
            resolution="Make the DAG read financial_screener.dag_configuration at run time (container_resources "
                       "from the rows) and re-deploy the DAGs; change sizing with `--tags appdb_config`.",
        )
    return finding(fid, "Pods of %s carry the resources from dag_configuration" % dag_id, OK, evidence)


def _config_rows(config):
    rows = config.get("query_result")
    if rows is None:
        rows = config.get("rows")
    if isinstance(rows, list) and rows and isinstance(rows[0], list):
        # community.postgresql returns query_all_results (a list per statement) when several statements ran.
        rows = [r for group in rows for r in group]
    return [r for r in rows or [] if isinstance(r, dict)]


# DAG runs ------------------------------------------------------------------------------------------

def _runs(value):
    if value is None:
        return None
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if value.get("failed") and "json" not in value:
            return None
        body = value.get("json", value)
        if isinstance(body, dict) and isinstance(body.get("dag_runs"), list):
            return body["dag_runs"]
    return None


def check_indicators_after_load(ctx, dag_state):
    fid = "dags.indicators_after_load"
    load_id = ctx.options["config_dag_id"]
    ind_id = ctx.options["indicators_dag_id"]
    for dag_id in (load_id, ind_id):
        if _dag_missing(ctx, dag_state, dag_id):
            return finding(fid, "%s after %s not verifiable" % (ind_id, load_id), SKIPPED,
                           ["blocked: %s is not serialized (see dags.serialized)" % dag_id])
    runs_state = ctx.state.get("dag_runs") or {}
    load_runs = _runs(runs_state.get(load_id))
    ind_runs = _runs(runs_state.get(ind_id))
    if load_runs is None or ind_runs is None:
        return finding(fid, "DAG runs could not be read", SKIPPED,
                       ["not run: the DAG runs of %s/%s were not read from the API" % (load_id, ind_id)])
    done = [r for r in load_runs if r.get("state") == "success" and parse_time(r.get("end_date"))]
    if not done:
        states = ", ".join("%s=%s" % (r.get("dag_run_id"), r.get("state")) for r in load_runs[:3]) or "no runs"
        return finding(
            fid, "%s has not completed yet" % load_id, WARN, ["%s runs: %s" % (load_id, states)],
            root_cause="The historical load has never finished successfully.",
            impact="calculate_indicators has no complete price history to work on.",
            resolution="Trigger %s (verify with -e verify_trigger=true) and watch it in the UI." % load_id)
    last_load = max(done, key=lambda r: parse_time(r["end_date"]))
    load_end = parse_time(last_load["end_date"])
    evidence = ["last successful %s run %s ended %s" % (load_id, last_load.get("dag_run_id"), format_time(load_end))]
    # The asset event is emitted inside the load run (run_after of the asset-triggered run = its time), and the
    # scheduler may create and start that run in the loop that marks the load finished: "after the load" is
    # compared with the load's start, not its end (seen on a live Airflow 3.0.2, tests/test_datapath.py).
    load_start = parse_time(last_load.get("start_date")) or load_end
    after = [r for r in ind_runs if (parse_time(r.get("run_after")) or parse_time(r.get("start_date")) or
                                     parse_time(r.get("logical_date")) or load_end) >= load_start]
    if not after:
        evidence.append("no %s run started after it (%d run(s) in total)" % (ind_id, len(ind_runs)))
        return finding(
            fid, "%s has not run after the historical load" % ind_id, WARN, evidence,
            root_cause="calculate_indicators is not triggered by the load (dataset/asset or TriggerDagRunOperator) "
                       "or is paused.",
            impact="Indicators are computed from incomplete data.",
            resolution="Unpause %s and check its schedule/asset trigger." % ind_id,
        )
    newest = max(after, key=lambda r: parse_time(r.get("start_date")) or load_end)
    evidence.append("%s run %s started %s: %s" % (ind_id, newest.get("dag_run_id"), format_time(
        newest.get("start_date")), newest.get("state")))
    if any(r.get("state") == "success" for r in after):
        return finding(fid, "%s ran after the historical load" % ind_id, OK, evidence)
    if newest.get("state") == "failed":
        return finding(
            fid, "%s failed after the historical load" % ind_id, CRITICAL, evidence,
            root_cause="A task of calculate_indicators failed (see its log in the UI).",
            impact="No indicators for the loaded history.",
            resolution="Read the failed task's log, fix, clear the run.",
        )
    return finding(fid, "%s is still running after the historical load" % ind_id, WARN, evidence,
                   root_cause="The run has not finished yet.", impact="Success not proven yet.",
                   resolution="Re-run verify when the run is done.")


# Velero ----------------------------------------------------------------------------------------------

def backup_covers(backup, namespace):
    spec = backup.get("spec") or {}
    included = spec.get("includedNamespaces") or []
    excluded = spec.get("excludedNamespaces") or []
    if namespace in excluded:
        return False
    return not included or "*" in included or namespace in included


def backup_time(backup):
    status = backup.get("status") or {}
    return (parse_time(status.get("startTimestamp")) or parse_time(meta(backup, "creationTimestamp")) or
            datetime.min.replace(tzinfo=timezone.utc))


def backup_includes_pvcs(backup):
    spec = backup.get("spec") or {}
    included = [r.lower() for r in spec.get("includedResources") or []]
    excluded = [r.lower() for r in spec.get("excludedResources") or []]
    pvc_names = ("persistentvolumeclaims", "persistentvolumeclaim", "pvc", "pvcs")
    if any(r in excluded for r in pvc_names):
        return False
    if included and "*" not in included and not any(r in included for r in pvc_names):
        return False
    if spec.get("includeClusterResources") is False:
        # PVs are cluster-scoped: without them a snapshot-based restore has nothing to bind.
        return bool(spec.get("defaultVolumesToFsBackup"))
    return True


def backup_volume_data(backup):
    spec = backup.get("spec") or {}
    status = backup.get("status") or {}
    if spec.get("defaultVolumesToFsBackup"):
        return True, "file-system backup of every volume (defaultVolumesToFsBackup)"
    snaps = (status.get("volumeSnapshotsCompleted") or 0) + (status.get("csiVolumeSnapshotsCompleted") or 0)
    ops = status.get("backupItemOperationsCompleted") or 0
    if snaps or ops:
        return True, "%d volume snapshot(s), %d item operation(s) completed" % (snaps, ops)
    if spec.get("snapshotVolumes") is False:
        return False, "snapshotVolumes=false and no file-system backup"
    return False, "no volume snapshot or file-system backup recorded"


def newest_backup(backups, namespace=None, phases=None):
    """Newest backup (by start time) covering namespace, optionally limited to phases."""
    candidates = [b for b in objects(backups) if (namespace is None or backup_covers(b, namespace))
                  and (phases is None or (b.get("status") or {}).get("phase") in phases)]
    if not candidates:
        return None
    return max(candidates, key=backup_time)


def _backup_line(backup, now):
    status = backup.get("status") or {}
    spec = backup.get("spec") or {}
    when = parse_time(status.get("completionTimestamp")) or backup_time(backup)
    age = human_age((now - when).total_seconds()) if when else "?"
    line = "%s: %s %s (%s ago), namespaces %s" % (
        ref(backup), status.get("phase") or "New", format_time(when), age,
        ", ".join(spec.get("includedNamespaces") or ["*"]))
    extra = []
    if status.get("errors"):
        extra.append("%s error(s)" % status["errors"])
    if status.get("warnings"):
        extra.append("%s warning(s)" % status["warnings"])
    hooks = status.get("hookStatus") or {}
    if hooks.get("hooksFailed"):
        extra.append("%s of %s hook(s) failed" % (hooks.get("hooksFailed"), hooks.get("hooksAttempted", "?")))
    if status.get("failureReason"):
        extra.append("failure: %s" % status["failureReason"])
    if extra:
        line += "; " + ", ".join(extra)
    return line


def check_velero(ctx):
    fid = "velero.backup"
    backups = ctx.backups
    wanted = list(ctx.options["backup_namespaces"])
    max_age = float(ctx.options["backup_max_age_hours"]) * 3600
    resolution_base = ("`velero backup describe <name> --details` and `velero backup logs <name>`; re-run "
                       "`ansible-playbook site.yml --tags backup`; prove restores with "
                       "`ansible-playbook playbooks/restore-drill.yml`.")
    if not backups:
        return finding(
            fid, "No Velero backup exists", CRITICAL, ["no backups.velero.io object in namespace %s" %
                                                       ctx.options["velero_namespace"]],
            root_cause="Velero is not installed, has no schedule, or the schedule never ran.",
            impact="Nothing to restore after a failure: DAG history, configuration and appdb would be lost.",
            resolution=resolution_base,
        )
    evidence = []
    statuses = []
    causes = []
    groups = []  # [(backup or None, newest_any, [namespaces])] keeps the order of wanted
    for namespace in wanted:
        newest_any = newest_backup(backups, namespace)
        newest_done = newest_backup(backups, namespace, VELERO_TERMINAL)
        for group in groups:
            if group[0] is newest_done and group[1] is newest_any:
                group[2].append(namespace)
                break
        else:
            groups.append((newest_done, newest_any, [namespace]))
    for newest_done, newest_any, namespaces in groups:
        label = ", ".join(namespaces)
        if newest_any is None:
            statuses.append(CRITICAL)
            evidence.append("no backup includes namespace %s" % label)
            causes.append("no schedule covers namespace %s" % label)
            continue
        if newest_done is None:
            statuses.append(WARN)
            evidence.append("%s: only unfinished backups, newest %s" % (label, _backup_line(newest_any, ctx.now)))
            continue
        if newest_any is not newest_done:
            evidence.append("%s: newest backup still running: %s" % (label, _backup_line(newest_any, ctx.now)))
        phase = (newest_done.get("status") or {}).get("phase")
        name = ref(newest_done)
        line = "%s: newest finished %s" % (label, _backup_line(newest_done, ctx.now))
        if phase == "Completed":
            has_pvcs = backup_includes_pvcs(newest_done)
            has_data, data_text = backup_volume_data(newest_done)
            line += "; PVCs %s; %s" % ("included" if has_pvcs else "EXCLUDED", data_text)
            completed_at = parse_time((newest_done.get("status") or {}).get("completionTimestamp")) or backup_time(
                newest_done)
            if not has_pvcs or not has_data:
                statuses.append(CRITICAL if not has_pvcs else WARN)
                causes.append("%s does not carry the volume data of %s" % (name, label))
            elif (ctx.now - completed_at).total_seconds() > max_age:
                statuses.append(WARN)
                causes.append("the newest backup of %s (%s) is older than %sh: the schedule stopped" % (
                    label, name, ctx.options["backup_max_age_hours"]))
            else:
                statuses.append(OK)
        elif phase == "PartiallyFailed":
            statuses.append(WARN)
            hooks = (newest_done.get("status") or {}).get("hookStatus") or {}
            if hooks.get("hooksFailed"):
                causes.append("a backup hook of %s failed: PostgreSQL 15 removed pg_start_backup()/pg_stop_backup(), "
                              "so hooks calling them fail; dump with pg_dump (or use pg_backup_start()/"
                              "pg_backup_stop()) instead" % name)
            else:
                causes.append("some items of %s failed" % name)
        else:
            statuses.append(CRITICAL)
            causes.append("%s ended %s" % (name, phase))
        evidence.append(line)
    status = worst(statuses)
    if status == OK:
        return finding(fid, "Newest Velero backups Completed with %s and their PVCs" % ", ".join(wanted), OK,
                       evidence)
    return finding(
        fid, "Velero backup of %s not usable as is" % ", ".join(wanted), status, evidence,
        root_cause="; ".join(_unique(causes)) or "see the evidence",
        impact="A restore may miss data or be inconsistent (database copied without a consistent backup point).",
        resolution=resolution_base,
    )


# UI ---------------------------------------------------------------------------------------------------

def _ingress_for(ingresses, host):
    for ingress in ingresses:
        spec = ingress.get("spec") or {}
        hosts = [r.get("host") for r in spec.get("rules") or []]
        if host in hosts:
            tls_hosts = [h for t in spec.get("tls") or [] for h in t.get("hosts") or []]
            secret = next((t.get("secretName") for t in spec.get("tls") or [] if host in (t.get("hosts") or [])), None)
            return ingress, host in tls_hosts, secret
    return None, False, None


def check_ui(ctx):
    fid = "ui.ingress"
    host = ctx.options["ingress_host"]
    ingress, has_tls, secret = _ingress_for(ctx.ingresses, host)
    ui = ctx.state.get("ui")
    evidence = []
    if ingress is not None:
        lb = [i.get("ip") or i.get("hostname") for i in ((ingress.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress") or []]
        evidence.append("Ingress %s: host %s, TLS %s, address %s" % (
            ref(ingress), host, "secret %s" % secret if has_tls else "NOT configured", ", ".join(lb) or "none"))
    else:
        evidence.append("no Ingress with host %s" % host)
    if not ui or ui.get("skipped"):
        evidence.append("the HTTPS request was not made")
        return finding(fid, "UI on https://%s not checked" % host, SKIPPED, evidence)
    code = ui.get("status")
    message = str(ui.get("msg") or "")
    url = ui.get("url") or "https://%s/" % host
    evidence.append("GET %s (certificate validated): HTTP %s%s" % (
        url, code, "" if not ui.get("failed") and 200 <= int(code or 0) < 400 else " \u2014 %s" % message))
    tls_error = any(word in message.lower() for word in ("certificate", "ssl", "tls", "hostname"))
    if tls_error:
        return finding(
            fid, "UI certificate on %s is not valid" % host, CRITICAL, evidence,
            root_cause="The ingress serves a certificate the client does not trust for this name (self-signed k3s "
                       "default, expired, or cert-manager has not issued it).",
            impact="Browsers and API clients refuse the connection.",
            resolution="Check the TLS secret%s and the cert-manager Certificate/Order for %s." % (
                " %s" % secret if secret else "", host),
        )
    if ui.get("failed") or not code or not 200 <= int(code) < 400:
        return finding(
            fid, "UI on %s does not answer" % host, CRITICAL, evidence,
            root_cause=("No Ingress routes the host" if ingress is None else
                        "The ingress controller, the api-server Service or DNS for the host is broken."),
            impact="Nobody can use the Airflow UI.",
            resolution="`kubectl -n airflow get ingress,svc,endpoints`; check the api-server pods and DNS for "
                       "%s." % host,
        )
    if ingress is None or not has_tls:
        return finding(fid, "UI answers, but the Ingress for %s is not as expected" % host, WARN, evidence,
                       root_cause="The host answers through another route, or the Ingress has no TLS section.",
                       impact="TLS may not be managed by the cluster.",
                       resolution="Manage the Ingress and its TLS secret with the airflow role.")
    return finding(fid, "UI answers on https://%s with a valid certificate" % host, OK, evidence)


# --------------------------------------------------------------------------------------------------
# assessment
# --------------------------------------------------------------------------------------------------

def merge_options(options):
    missing = [key for key in CONTRACT_OPTIONS if not (options or {}).get(key)]
    if missing:
        raise ValueError("assess needs %s (from the cluster contract)" % ", ".join(missing))
    merged = dict(DEFAULT_OPTIONS)
    for key, value in (options or {}).items():
        if value is not None:
            merged[key] = value
    return merged


def assess(state, options=None):
    """Return the assessment report (a JSON-serialisable dict) for a gathered cluster state."""
    options = merge_options(options)
    state = state or {}
    now = parse_time(options.get("now")) or datetime.now(timezone.utc)
    options["now"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    api = state.get("api") or {"available": True}
    if not api.get("available", True):
        return _not_run_report(api, options)
    ctx = _Context(state, options)
    ctx.findings = {}
    dag_state = normalize_dag_status(state.get("dag_status"), options["expected_dag_ids"])
    ordered_checks = [
        check_dag_volume,
        check_storage_multi_attach,
        check_storage_rwo_shared,
        check_pvc_unbound,
        check_pods_stuck_init,
        check_pods_not_ready,
    ]
    for check in ordered_checks:
        result = check(ctx)
        ctx.findings[result["id"]] = result
    components, missing = evaluate_components(ctx)
    for result in (check_components_missing(ctx, missing),
                   finding("cluster.api", "Kubernetes API answered", OK, [api.get("reason") or "k8s_info succeeded"])):
        ctx.findings[result["id"]] = result
    for check in (check_dags_serialized, check_trigger, check_config_resources, check_indicators_after_load):
        result = check(ctx, dag_state)
        ctx.findings[result["id"]] = result
    for check in (check_velero, check_ui):
        result = check(ctx)
        ctx.findings[result["id"]] = result
    findings = [ctx.findings[fid] for fid in FINDING_ORDER if fid in ctx.findings]
    return _report(findings, components, options, api_available=True)


def _not_run_report(api, options):
    reason = api.get("reason") or "no Kubernetes API"
    if options.get("api_required"):
        findings = [finding(
            "cluster.api", "Kubernetes API does not answer", CRITICAL, [reason],
            root_cause="k3s is down on the server, the kubeconfig is missing, or the kubernetes Python client is "
                       "not installed on the server.",
            impact="Nothing in the cluster can be checked or managed.",
            resolution="`systemctl status k3s` on the server; re-run `ansible-playbook site.yml --tags k3s`.",
        )]
    else:
        findings = [finding("cluster.api", "Cluster checks not run: no Kubernetes API", SKIPPED, [reason])]
    components = [{"name": c["name"], "status": SKIPPED, "evidence": ["not checked: no Kubernetes API"],
                   "findings": []} for c in resolve_components(options)]
    return _report(findings, components, options, api_available=False, not_run_reason=reason)


def _report(findings, components, options, api_available, not_run_reason=None):
    by_id = dict((f["id"], f) for f in findings)
    checklist = []
    for key, text, source in CHECKLIST:
        if key == "trigger":
            text = "%s can be unpaused and triggered" % options["config_dag_id"]
        if key == "indicators":
            text = "%s ran after the historical load" % options["indicators_dag_id"]
        if key == "ui":
            text = "UI answers on the ingress host %s with valid TLS" % options["ingress_host"]
        if key == "backup":
            text = "Newest Velero backup Completed with the %s namespaces and PVCs" % " and ".join(
                options["backup_namespaces"])
        if source.startswith("component:"):
            row = next((c for c in components if c["name"] == source.split(":", 1)[1]), None)
            status = row["status"] if row else SKIPPED
            evidence = "; ".join(row["evidence"]) if row else "component not defined"
            related = row["findings"] if row else []
        else:
            item = by_id.get(source)
            status = item["status"] if item else SKIPPED
            evidence = item["title"] if item else ("not run: %s" % not_run_reason if not_run_reason else "not checked")
            related = [source] if item else []
        checklist.append({"id": key, "text": text, "status": status, "passed": status == OK,
                          "evidence": evidence, "findings": related})
    counts = {OK: 0, WARN: 0, CRITICAL: 0, SKIPPED: 0}
    for item in findings:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    for row in components:
        if row["status"] == CRITICAL and not row["findings"]:
            row["findings"] = ["components.missing"]
    if not api_available and not any(f["status"] == CRITICAL for f in findings):
        overall = NOT_RUN
    else:
        overall = worst([f["status"] for f in findings] + [c["status"] for c in components])
    critical = [f for f in findings if f["status"] == CRITICAL]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": options["now"],
        "overall_status": overall,
        "not_run_reason": not_run_reason if overall == NOT_RUN else None,
        "summary": _summary(overall, critical, counts, not_run_reason),
        "counts": counts,
        "critical_ids": [f["id"] for f in critical],
        "components": components,
        "findings": findings,
        "checklist": checklist,
        "options": {k: options[k] for k in ("airflow_namespace", "databases_namespace", "expected_dag_ids",
                                            "config_dag_id", "indicators_dag_id", "ingress_host",
                                            "backup_namespaces", "backup_max_age_hours", "stuck_after_seconds")},
    }


def _summary(overall, critical, counts, not_run_reason):
    if overall == NOT_RUN:
        return "Cluster checks not run: %s." % not_run_reason
    if overall == CRITICAL:
        return "%d critical issue(s): %s." % (len(critical), "; ".join(f["title"] for f in critical))
    if overall == WARN:
        return "No critical issue; %d warning(s)." % counts[WARN]
    return "Every check passed%s." % (" (%d not run)" % counts[SKIPPED] if counts[SKIPPED] else "")


# --------------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------------

def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report, title="pi-cluster assessment", context=None):
    """Markdown shaped like the original hand-written assessment."""
    overall = report["overall_status"]
    lines = ["# %s" % title, ""]
    lines.append("- Generated: %s" % report["generated_at"])
    for key, value in sorted((context or {}).items()):
        lines.append("- %s: %s" % (key, value))
    lines.append("- **Overall status: %s %s**" % (ICONS.get(overall, ""), OVERALL_TEXT.get(overall, overall)))
    lines.append("")
    lines.append(report["summary"])
    lines.append("")
    if overall == NOT_RUN:
        lines.append("No Kubernetes API was available, so no cluster object was read and every check below is "
                     "marked not run. This is expected in the podman lab; on the real cluster start k3s and "
                     "re-run `ansible-playbook playbooks/verify.yml`.")
        lines.append("")
    lines.append("## Components")
    lines.append("")
    lines.append("| Component | Status | Evidence |")
    lines.append("| --- | --- | --- |")
    for row in report["components"]:
        evidence = "<br>".join(_md_cell(e) for e in row["evidence"]) or "-"
        if row["findings"] and row["status"] != OK:
            evidence += "<br>see %s" % ", ".join("`%s`" % f for f in row["findings"])
        lines.append("| %s | %s | %s |" % (_md_cell(row["name"]), ICONS.get(row["status"], row["status"]), evidence))
    lines.append("")
    critical = [f for f in report["findings"] if f["status"] == CRITICAL]
    warnings = [f for f in report["findings"] if f["status"] == WARN]
    lines.append("## Critical issues")
    lines.append("")
    if not critical:
        lines.append("None.")
        lines.append("")
    for number, item in enumerate(critical, 1):
        lines.extend(_render_issue(number, item))
    if warnings:
        lines.append("## Warnings")
        lines.append("")
        for number, item in enumerate(warnings, 1):
            lines.extend(_render_issue(number, item))
    lines.append("## Testing checklist")
    lines.append("")
    for item in report["checklist"]:
        mark = "x" if item["passed"] else " "
        lines.append("- [%s] %s %s \u2014 %s" % (mark, ICONS.get(item["status"], ""), _md_cell(item["text"]),
                                                  _md_cell(item["evidence"])))
    lines.append("")
    lines.append("## All findings")
    lines.append("")
    lines.append("| ID | Status | Finding | Evidence |")
    lines.append("| --- | --- | --- | --- |")
    for item in report["findings"]:
        lines.append("| `%s` | %s %s | %s | %s |" % (item["id"], ICONS.get(item["status"], ""), item["status"],
                                                     _md_cell(item["title"]),
                                                     "<br>".join(_md_cell(e) for e in item["evidence"]) or "-"))
    lines.append("")
    return "\n".join(lines)


def _render_issue(number, item):
    lines = ["### %d. %s (`%s`)" % (number, item["title"], item["id"]), ""]
    lines.append("**Evidence**")
    lines.append("")
    for evidence in item["evidence"] or ["-"]:
        lines.append("- %s" % evidence)
    lines.append("")
    for label, key in (("Root cause", "root_cause"), ("Impact", "impact"), ("Resolution", "resolution")):
        if item.get(key):
            lines.append("**%s:** %s" % (label, item[key]))
            lines.append("")
    return lines


def render_json(report):
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# --------------------------------------------------------------------------------------------------
# restore drill helpers
# --------------------------------------------------------------------------------------------------

def compare_row_counts(live, restored, strict=False):
    """Compare table row counts of the live appdb with the restored copy.

    live / restored: lists of {"table_name": str, "row_count": int} (or a {table: count} dict).
    Non-strict (default): the live database may have gained rows since the backup, so restored <= live is
    fine; a table missing from the restore, an empty restored table whose live twin has rows, or more rows
    in the restore than live is a problem. Strict: every count must be equal.
    """
    def as_dict(value):
        if isinstance(value, dict):
            return dict((str(k), int(v)) for k, v in value.items())
        result = {}
        for row in value or []:
            name = row.get("table_name") or row.get("table") or row.get("relname")
            schema = row.get("table_schema") or row.get("schemaname")
            key = "%s.%s" % (schema, name) if schema else name
            result[str(key)] = int(row.get("row_count", row.get("count", row.get("n", 0))) or 0)
        return result

    live_counts = as_dict(live)
    restored_counts = as_dict(restored)
    tables = []
    problems = []
    for table in sorted(set(live_counts) | set(restored_counts)):
        have_live = live_counts.get(table)
        have_restored = restored_counts.get(table)
        verdict = "equal"
        if have_restored is None:
            verdict = "missing in restore"
            problems.append("%s: missing in the restored database (live has %s rows)" % (table, have_live))
        elif have_live is None:
            verdict = "only in restore"
            problems.append("%s: exists in the restore but not in the live database" % table)
        elif have_live != have_restored:
            if strict:
                verdict = "differs"
                problems.append("%s: live %d rows, restored %d rows" % (table, have_live, have_restored))
            elif have_restored == 0 and have_live > 0:
                verdict = "empty in restore"
                problems.append("%s: restored table is empty, live has %d rows" % (table, have_live))
            elif have_restored > have_live:
                verdict = "more in restore"
                problems.append("%s: restored %d rows > live %d rows" % (table, have_restored, have_live))
            else:
                verdict = "live grew since backup"
        tables.append({"table": table, "live": have_live, "restored": have_restored, "verdict": verdict})
    if not live_counts:
        problems.append("the live database returned no tables for the schema")
    return {"ok": not problems, "problems": problems, "tables": tables,
            "live_total": sum(live_counts.values()), "restored_total": sum(restored_counts.values())}
