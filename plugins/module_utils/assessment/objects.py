# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Objects and normalisation: shared constants, time and quantity parsing, the normalisation of Kubernetes
objects, pod summaries and the finding record."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


# State keys that hold an Ansible result (a dict) rather than Kubernetes objects.
RESULT_KEYS = ("api", "dag_status", "dag_config", "dag_runs", "trigger", "ui")


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
    "not_collected": None,
    "source": None,
    "cluster_issuer": None,
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
    "ingress.tls",
    "alerts.firing",
    "snapshot.collection",
]


# What each check reads; a check whose input was not collected (a snapshot without the file) is skipped
# and says so, instead of reporting the absence of the objects as a finding.
CHECK_NEEDS = {
    "dags.volume": ("pods", "pvcs"),
    "storage.multi_attach": ("events",),
    "storage.rwo_shared_nodes": ("pods", "pvcs"),
    "storage.pvc_unbound": ("pvcs",),
    "pods.stuck_init": ("pods",),
    "pods.not_ready": ("pods",),
    "components.missing": ("pods",),
    "dags.serialized": ("dag_status",),
    "dags.config_resources": ("dag_config",),
    "dags.indicators_after_load": ("dag_runs",),
    "velero.backup": ("backups",),
    "ui.ingress": ("ui",),
    "ingress.tls": ("ingresses", "secrets"),
    "alerts.firing": ("alerts",),
}


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


# Object normalisation ------------------------------------------------------------------------------
# Everything the classifier reads goes through normalize_object first: a field of the wrong JSON type
# (``kind: null``, ``ownerReferences: [null]``, ``status: "Running"``, a label that is a number, ...) is
# replaced by an empty value of the right type instead of raising later. Field names are the same across
# the Kubernetes kinds, so one table per name serves them all.

# Fields that hold an object (dict) wherever they appear.
_DICT_FIELDS = frozenset((
    "metadata", "spec", "labels", "annotations", "state", "waiting", "terminated", "running", "resources",
    "requests", "limits", "persistentVolumeClaim", "involvedObject", "series", "hookStatus", "claimRef",
    "loadBalancer", "template", "selector", "issuerRef", "ca", "acme", "selfSigned", "source", "attacher",
    "progress", "capacity", "nodeInfo", "matchLabels", "lastState",
))


# Fields that hold a list of objects.
_LIST_OF_DICT_FIELDS = frozenset((
    "containers", "initContainers", "volumes", "conditions", "initContainerStatuses", "containerStatuses",
    "ownerReferences", "rules", "tls", "ingress", "addresses", "taints", "ephemeralContainerStatuses",
))


# Fields that hold a list of strings.
_LIST_OF_STR_FIELDS = frozenset((
    "accessModes", "includedNamespaces", "excludedNamespaces", "includedResources", "excludedResources",
    "hosts", "dnsNames", "finalizers",
))


# Fields that hold a number (counts, exit codes, replicas).
_INT_FIELDS = frozenset((
    "count", "exitCode", "signal", "replicas", "readyReplicas", "availableReplicas", "errors", "warnings",
    "hooksAttempted", "hooksFailed", "volumeSnapshotsCompleted", "csiVolumeSnapshotsCompleted",
    "backupItemOperationsCompleted", "restartCount", "itemsBackedUp", "totalItems",
))


# Fields that hold a boolean.
_BOOL_FIELDS = frozenset(("ready", "started", "defaultVolumesToFsBackup", "snapshotVolumes",
                          "includeClusterResources", "unschedulable"))


# ``status`` is an object at the top of a Kubernetes object and a string inside a condition.
_STR_STATUS_PARENTS = frozenset(("conditions",))


def _as_int(value):
    """An int from a JSON value (int, float, numeric string); None otherwise. Never raises."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str) and re.match(r"^\s*[+-]?\d+\s*$", value):
        return int(value)
    return None


def _as_str(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return None
    return str(value)


_STR_FIELDS = frozenset((
    "name", "namespace", "kind", "phase", "reason", "message", "type", "nodeName", "claimName", "volumeName",
    "storageClassName", "apiVersion", "uid", "host", "secretName", "ip", "hostname", "restartPolicy",
    "schedule", "creationTimestamp", "deletionTimestamp", "lastTransitionTime", "lastTimestamp", "eventTime",
    "firstTimestamp", "startTime", "startTimestamp", "completionTimestamp", "lastBackup", "notAfter",
    "notBefore", "renewalTime", "failureReason",
))


def _clean(value, key=None, parent=None):
    """Normalise one field ``key`` (found under ``parent``) to the JSON type the classifier expects."""
    if key in _STR_FIELDS or (key == "status" and parent in _STR_STATUS_PARENTS):
        return _as_str(value)
    if key in _DICT_FIELDS or key == "status":
        if not isinstance(value, dict):
            return {}
        if key in ("labels", "annotations", "matchLabels", "requests", "limits", "capacity"):
            return dict((str(k), _as_str(v)) for k, v in value.items()
                        if isinstance(k, str) and not isinstance(v, (dict, list)))
        return dict((k, _clean(v, k, key)) for k, v in value.items() if isinstance(k, str))
    if key in _LIST_OF_DICT_FIELDS:
        if not isinstance(value, list):
            return []
        return [_clean_dict(item, key) for item in value if isinstance(item, dict)]
    if key in _LIST_OF_STR_FIELDS:
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, str)]
    if key in _INT_FIELDS:
        return _as_int(value)
    if key in _BOOL_FIELDS:
        return value if isinstance(value, bool) else None
    if isinstance(value, dict):
        return _clean_dict(value, key)
    if isinstance(value, list):
        return [_clean(item, None, key) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return None


def _clean_dict(value, parent=None):
    return dict((k, _clean(v, k, parent)) for k, v in value.items() if isinstance(k, str))


def normalize_object(obj):
    """A copy of one Kubernetes object with every field the classifier reads of the right JSON type."""
    cleaned = _clean_dict(obj)
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        if not metadata.get("name"):
            metadata["name"] = ""  # every object has a name, if only an empty one
        if "namespace" in metadata and not metadata["namespace"]:
            del metadata["namespace"]  # a null namespace is an absent one (cluster-scoped)
    return cleaned


def _is_object(value):
    kind = value.get("kind")
    return (isinstance(value.get("metadata"), dict) and "kind" in value
            and not (isinstance(kind, str) and kind.endswith("List")))


def objects(value):
    """Flatten kubectl Lists, k8s_info results, looped registers and plain lists into normalised objects.

    Anything that is not an object (a string, a number, null, an object without ``metadata``) is dropped;
    every object returned has dict ``metadata``/``spec``/``status`` (see normalize_object).
    """
    found = []
    stack = [value]
    depth = 0
    while stack and depth < 100000:
        depth += 1
        item = stack.pop(0)
        if isinstance(item, list):
            stack[0:0] = item
            continue
        if not isinstance(item, dict):
            continue
        if _is_object(item):
            found.append(normalize_object(item))
            continue
        children = [item[key] for key in ("items", "resources", "results") if key in item]
        stack[0:0] = children
    return found


def _dict(value):
    return value if isinstance(value, dict) else {}


def _short(value, limit=120):
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


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
        "name": meta(pod, "name") or "",
        "namespace": meta(pod, "namespace") or "",
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
