# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage findings: the DAG volume, Multi-Attach errors, ReadWriteOnce claims across nodes, unbound PVCs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CRITICAL,
    MULTI_ATTACH_PODS_RE,
    MULTI_ATTACH_RE,
    OK,
    RWO_MODES,
    WARN,
    _unique,
    describe_pod,
    finding,
    format_time,
    labels_of,
    meta,
    ref,
    worst,
)

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
        key = (meta(pvc, "namespace") or "", meta(pvc, "name") or "")
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
