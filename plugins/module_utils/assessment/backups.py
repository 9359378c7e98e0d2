# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup findings: the newest Velero backups, day-one schedules, failed backups."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timezone

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CRITICAL,
    OK,
    VELERO_TERMINAL,
    WARN,
    _unique,
    finding,
    format_time,
    human_age,
    meta,
    objects,
    parse_time,
    ref,
    worst,
)

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


def _same(left, right):
    """The same object (normalised copies of one object are equal, not identical)."""
    return left is right or (left is not None and right is not None and left == right)


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
    covering = [sch for sch in ctx.schedules if all(backup_covers(
        {"spec": (sch.get("spec") or {}).get("template") or {}}, ns) for ns in wanted)]
    if not backups and covering:
        # Day one: since Velero 1.8 a new Schedule takes no backup until its first cron time; the backup
        # layer takes the first one itself. Until a schedule is older than the allowed age, that is no fault.
        young = [sch for sch in covering if parse_time(meta(sch, "creationTimestamp")) and
                 (ctx.now - parse_time(meta(sch, "creationTimestamp"))).total_seconds() <= max_age]
        evidence = ["no backups.velero.io object in namespace %s yet" % ctx.options["velero_namespace"]]
        evidence.extend("Schedule %s (%s) created %s, last backup %s" % (
            ref(sch), (sch.get("spec") or {}).get("schedule") or "?", format_time(meta(sch, "creationTimestamp")),
            format_time((sch.get("status") or {}).get("lastBackup")) if (sch.get("status") or {}).get(
                "lastBackup") else "none") for sch in covering)
        if young:
            return finding(
                fid, "No Velero backup yet: the schedule was created %s ago" % human_age(
                    (ctx.now - parse_time(meta(young[0], "creationTimestamp"))).total_seconds()), WARN, evidence,
                root_cause="A fresh install: the first backup has not been taken yet.",
                impact="Nothing to restore until the first backup completes.",
                resolution="Wait for the first backup, or take it now: `velero backup create --from-schedule %s`; "
                           "`ansible-playbook site.yml --tags backup` takes and waits for it." % meta(young[0],
                                                                                                   "name"))
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
    failed_names = []
    groups = []  # [(backup or None, newest_any, [namespaces])] keeps the order of wanted
    for namespace in wanted:
        newest_any = newest_backup(backups, namespace)
        newest_done = newest_backup(backups, namespace, VELERO_TERMINAL)
        for group in groups:
            if _same(group[0], newest_done) and _same(group[1], newest_any):
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
        if not _same(newest_any, newest_done):
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
            failure = (newest_done.get("status") or {}).get("failureReason")
            causes.append("%s ended %s%s" % (name, phase, ": %s" % failure if failure else ""))
            failed_names.append("%s %s" % (name, phase))
        evidence.append(line)
    status = worst(statuses)
    if status == OK:
        return finding(fid, "Newest Velero backups Completed with %s and their PVCs" % ", ".join(wanted), OK,
                       evidence)
    title = "Velero backup of %s not usable as is" % ", ".join(wanted)
    if failed_names:
        title = "Velero backup %s: nothing to restore %s from" % (", ".join(_unique(failed_names)), ", ".join(wanted))
    return finding(
        fid, title, status, evidence,
        root_cause="; ".join(_unique(causes)) or "see the evidence",
        impact="A restore may miss data or be inconsistent (database copied without a consistent backup point).",
        resolution=resolution_base,
    )
