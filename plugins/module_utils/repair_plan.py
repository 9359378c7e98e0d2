# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide how to take Airflow from a ReadWriteOnce DAG volume (stuck pods) to git-sync or an RWX volume.

Pure Python, unit-tested on the recorded broken and healthy cluster states. The repair playbook gathers
pods, events, PVCs and the release's user-supplied Helm values, asks this module for a plan, prints it
(dry run, the default) and with ``repair_apply=true`` carries it out. A healthy cluster gives an empty plan,
so a second run changes nothing.

Plan phases:
  pre   before the upgrade: which values change, which pods are stuck now, which PVCs must go first
  post  after the upgrade: which pods still block the rollout (stuck in Init/Pending, blocked by a
        Multi-Attach error, or still mounting the old DAG claim and not ready), which DAG claims are
        now orphaned (deleted only when ``delete_dag_pvc`` is true)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timezone

from ansible_collections.stratdata.pi_cluster.plugins.module_utils import dag_mode
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment import (
    RWO_MODES,
    multi_attach_events,
    objects,
    parse_time,
    summarize_pod,
    volume_usage,
)

# Names plan_repair takes from the caller (the cluster contract), never from a default here.
CONTRACT_OPTIONS = ("dags_mode", "namespace", "release", "rwx_storage_class")

# Chart defaults (apache-airflow chart 1.18.0 values.yaml) for the keys the plan compares.
CHART_DEFAULTS = {
    "dags.gitSync.enabled": False,
    "dags.persistence.enabled": False,
    "dags.persistence.accessMode": "ReadWriteOnce",
    "dags.persistence.storageClassName": None,
    "dags.persistence.existingClaim": None,
}


def get_path(values, path, default=None):
    node = values or {}
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def desired_values(mode, rwx_storage_class=None, rwx_claim=None):
    """The DAG-delivery values the airflow role sets for a mode (dotted path -> value).

    The same mapping as the role's values template: plugins/module_utils/dag_mode.py (filter dag_chart_values).
    The volume size is not compared (the chart keeps an existing claim's size).
    """
    values = dag_mode.dag_chart_values(mode, rwx_storage_class, rwx_claim=rwx_claim)
    return dag_mode.flatten({"dags": values})


def value_changes(current_values, mode, rwx_storage_class=None, rwx_claim=None):
    changes = []
    for path, want in sorted(desired_values(mode, rwx_storage_class, rwx_claim).items()):
        have = get_path(current_values, path, CHART_DEFAULTS.get(path))
        if have != want:
            changes.append({"path": path, "current": have, "desired": want})
    return changes


def _is_rwo(pvc):
    modes = pvc.get("access_modes") or []
    return bool(modes) and all(m in RWO_MODES for m in modes)


def plan_repair(state, options=None):
    """Return the repair plan (JSON-serialisable dict).

    state:   pods, events, pvcs, pvs (object lists in any shape assessment.objects accepts),
             helm_values (user-supplied values of the release, {} when unknown), release_found (bool)
    options: dags_mode, namespace, release, rwx_storage_class, rwx_claim, delete_dag_pvc,
             stuck_after_seconds, phase ('pre' or 'post'), now (ISO time, for tests)
    """
    options = dict(options or {})
    missing = [key for key in CONTRACT_OPTIONS if not options.get(key)]
    if missing:
        raise ValueError("plan_repair needs %s (from the cluster contract)" % ", ".join(missing))
    mode = options["dags_mode"]
    namespace = options["namespace"]
    release = options["release"]
    phase = options.get("phase") or "pre"
    rwx_class = options["rwx_storage_class"]
    rwx_claim = options.get("rwx_claim") or None
    delete_dag_pvc = bool(options.get("delete_dag_pvc"))
    stuck_after = int(options.get("stuck_after_seconds") if options.get("stuck_after_seconds") is not None else 300)
    now = parse_time(options.get("now")) or datetime.now(timezone.utc)

    pods = [summarize_pod(p, now, stuck_after) for p in objects(state.get("pods"))]
    pods = [p for p in pods if p["namespace"] == namespace]
    usage, by_volume = volume_usage(pods, [p for p in objects(state.get("pvcs")) if (p.get("metadata") or {}).get(
        "namespace") == namespace], objects(state.get("pvs")))
    events = multi_attach_events([e for e in objects(state.get("events"))
                                  if ((e.get("involvedObject") or {}).get("namespace") or namespace) == namespace])

    helm_values = state.get("helm_values") or {}
    release_found = state.get("release_found", True)
    changes = value_changes(helm_values, mode, rwx_class, rwx_claim)
    target_claim = rwx_claim or "%s-dags" % release

    notes = []
    blockers = []
    delete_pods = []
    delete_pvcs = []
    kept_pvcs = []
    pre_upgrade_delete_pvcs = []

    if not release_found:
        blockers.append("Helm release %s not found in namespace %s: run `ansible-playbook site.yml --tags airflow` "
                        "for a first install instead of a repair" % (release, namespace))

    dag_claims = {key: entry for key, entry in usage.items() if entry["is_dag"]}

    # Pods to delete ------------------------------------------------------------------------------------
    blocked_by_event = {}
    for event in events:
        blocked_by_event.setdefault(event["pod"], event)
    stale_dag_users = set()
    for entry in dag_claims.values():
        pvc = entry["pvc"]
        claim_wanted = mode == "rwx_pvc" and pvc["name"] == target_claim and not _is_rwo(pvc)
        if not claim_wanted:
            for user, _volume in entry["users"]:
                stale_dag_users.add(user["name"])
    for pod in pods:
        if pod["terminating"] or pod["completed"] or pod["task_pod"]:
            continue
        reasons = []
        if pod["stuck_init"]:
            reasons.append("stuck in %s" % pod["display"])
        elif pod["phase"] == "Pending" and pod["not_ready_long"]:
            reasons.append("Pending (%s)" % pod["display"])
        if pod["name"] in blocked_by_event and not pod["ready"]:
            event = blocked_by_event[pod["name"]]
            reasons.append('Multi-Attach error on volume "%s" (held by %s)' % (
                event["volume"], ", ".join(event["holders"]) or "another node"))
        if phase == "post" and pod["name"] in stale_dag_users and not pod["ready"]:
            reasons.append("still mounts the old DAG claim and is not ready (blocks the StatefulSet rollout)")
        if reasons:
            delete_pods.append({"namespace": pod["namespace"], "name": pod["name"], "node": pod["node"],
                                "status": pod["display"], "reason": "; ".join(reasons)})

    # DAG claims -----------------------------------------------------------------------------------------
    for _key, entry in sorted(dag_claims.items()):
        pvc = entry["pvc"]
        users = [u[0]["name"] for u in entry["users"]]
        kept_by_mode = mode == "rwx_pvc" and pvc["name"] == target_claim and not _is_rwo(pvc)
        if kept_by_mode:
            notes.append("DAG claim %s is ReadWriteMany and is the one the chart uses: kept" % pvc["ref"])
            continue
        if not _is_rwo(pvc) and mode == "rwx_pvc":
            notes.append("DAG claim %s is %s but not the claim the chart will use (%s)" % (
                pvc["ref"], ", ".join(pvc["access_modes"]), target_claim))
        conflict = mode == "rwx_pvc" and pvc["name"] == target_claim and _is_rwo(pvc)
        if conflict:
            # accessModes of a PVC are immutable: the chart cannot turn this claim into RWX in place.
            item = {"namespace": pvc["namespace"], "name": pvc["name"],
                    "reason": "ReadWriteOnce claim has the name the RWX claim needs (accessModes are immutable)",
                    "users": users}
            if delete_dag_pvc:
                pre_upgrade_delete_pvcs.append(item)
                for user in entry["users"]:
                    if not any(d["name"] == user[0]["name"] for d in delete_pods):
                        delete_pods.append({"namespace": namespace, "name": user[0]["name"], "node": user[0]["node"],
                                            "status": user[0]["display"],
                                            "reason": "mounts %s, which must be deleted before the upgraded "
                                                      "chart can create it as ReadWriteMany" % pvc["name"]})
            else:
                blockers.append("%s is ReadWriteOnce and named like the RWX claim the chart will create; pass "
                                "-e repair_delete_dag_pvc=true to delete it (its files are lost; DAGs are re-copied "
                                "by the airflow role) or set airflow's claim name to another one" % pvc["ref"])
            continue
        if users:
            if phase == "post":
                notes.append("old DAG claim %s is still mounted by %s; it becomes orphaned when they are replaced" % (
                    pvc["ref"], ", ".join(users)))
            else:
                notes.append("DAG claim %s (%s) mounted by %s becomes orphaned after the upgrade" % (
                    pvc["ref"], ", ".join(pvc["access_modes"]) or "?", ", ".join(users)))
            continue
        item = {"namespace": pvc["namespace"], "name": pvc["name"],
                "reason": "orphaned %s DAG claim (no pod mounts it; DAGs now come from %s)" % (
                    ", ".join(pvc["access_modes"]) or "?", "git-sync" if mode == "git_sync" else target_claim)}
        if delete_dag_pvc:
            delete_pvcs.append(item)
        else:
            kept_pvcs.append(dict(item, hint="kept: pass -e repair_delete_dag_pvc=true to delete it"))

    upgrade = bool(changes) and release_found
    actions_needed = bool(upgrade or delete_pods or delete_pvcs or pre_upgrade_delete_pvcs)
    plan = {
        "phase": phase,
        "mode": mode,
        "namespace": namespace,
        "release": release,
        "upgrade": upgrade,
        "value_changes": changes,
        "delete_pods": delete_pods,
        "delete_pvcs": delete_pvcs,
        "pre_upgrade_delete_pvcs": pre_upgrade_delete_pvcs,
        "kept_pvcs": kept_pvcs,
        "blockers": blockers,
        "notes": notes,
        "multi_attach_volumes": sorted({e["volume"] for e in events if e["volume"]}),
        "actions_needed": actions_needed,
    }
    plan["summary"] = describe_plan(plan)
    return plan


def _fmt(value):
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe_plan(plan):
    """Human-readable lines of what the plan does (printed in dry-run and apply mode)."""
    lines = []
    if plan["blockers"]:
        for blocker in plan["blockers"]:
            lines.append("BLOCKED: %s" % blocker)
    if not plan["actions_needed"]:
        lines.append("nothing to do: release %s/%s already delivers DAGs by %s and no pod is stuck" % (
            plan["namespace"], plan["release"], plan["mode"].replace("_", "-")))
    if plan["upgrade"]:
        lines.append("upgrade Helm release %s/%s through the airflow role (pi_cluster_dags_mode=%s):" % (
            plan["namespace"], plan["release"], plan["mode"]))
        for change in plan["value_changes"]:
            lines.append("  %s: %s -> %s" % (change["path"], _fmt(change["current"]), _fmt(change["desired"])))
    for pvc in plan["pre_upgrade_delete_pvcs"]:
        lines.append("delete PVC %s/%s before the upgrade: %s" % (pvc["namespace"], pvc["name"], pvc["reason"]))
    for pod in plan["delete_pods"]:
        lines.append("delete pod %s/%s on %s (%s): %s" % (pod["namespace"], pod["name"], pod["node"] or "no node",
                                                          pod["status"], pod["reason"]))
    for pvc in plan["delete_pvcs"]:
        lines.append("delete PVC %s/%s: %s" % (pvc["namespace"], pvc["name"], pvc["reason"]))
    for pvc in plan["kept_pvcs"]:
        lines.append("keep PVC %s/%s: %s (%s)" % (pvc["namespace"], pvc["name"], pvc["reason"], pvc["hint"]))
    for note in plan["notes"]:
        lines.append("note: %s" % note)
    return lines
