# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alert findings: the alerts Alertmanager (API v2) reports firing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CRITICAL,
    OK,
    SKIPPED,
    STATUS_RANK,
    WARN,
    _as_str,
    _dict,
    _unique,
    finding,
    format_time,
    worst,
)

# Alerts -------------------------------------------------------------------------------------------
# Alertmanager API v2 GET /api/v2/alerts: [{labels: {alertname, severity, ...}, annotations: {summary,
# description, runbook_url}, startsAt, status: {state: active|suppressed|unprocessed}, fingerprint}].

def alert_list(value):
    """The alerts from a bare list, a uri register (``json``) or ``{"alerts": [...]}``; None when unknown."""
    if isinstance(value, dict):
        if value.get("not_installed") or value.get("skipped"):
            return None
        if value.get("failed") and "json" not in value:
            return None
        for key in ("json", "alerts", "data"):
            if key in value:
                return alert_list(value[key])
        return None
    if isinstance(value, list):
        return [a for a in value if isinstance(a, dict)]
    return None


def _alert_row(alert):
    labels = _dict(alert.get("labels"))
    annotations = _dict(alert.get("annotations"))
    status = _dict(alert.get("status"))
    return {
        "alertname": _as_str(labels.get("alertname")) or "?",
        "severity": _as_str(labels.get("severity")) or "none",
        "namespace": _as_str(labels.get("namespace")),
        "since": format_time(_as_str(alert.get("startsAt"))),
        "state": _as_str(status.get("state")) or "active",
        "summary": _as_str(annotations.get("summary") or annotations.get("description") or "") or "",
        "runbook": _as_str(annotations.get("runbook") or annotations.get("runbook_url") or "") or "",
    }


def check_alerts(ctx):
    fid = "alerts.firing"
    raw = ctx.state.get("alerts")
    alerts = alert_list(raw)
    if alerts is None:
        reason = (_dict(raw).get("reason") or _dict(raw).get("msg") or
                  ("monitoring not installed" if _dict(raw).get("not_installed") else "alerts not collected"))
        return finding(fid, "Alerts not read", SKIPPED, ["not collected: %s" % _as_str(reason)], alerts=[])
    rows = [_alert_row(a) for a in alerts]
    firing = [r for r in rows if r["state"] == "active" and r["alertname"] != "Watchdog"]
    quiet = [r for r in rows if r["state"] != "active"]
    firing.sort(key=lambda r: (-STATUS_RANK.get(_alert_status(r), 0), r["alertname"]))
    evidence = ["%s [%s] since %s%s%s" % (r["alertname"], r["severity"], r["since"],
                                          " (%s)" % r["namespace"] if r["namespace"] else "",
                                          ": %s" % r["summary"] if r["summary"] else "") for r in firing]
    if quiet:
        evidence.append("%d more alert(s) silenced or inhibited: %s" % (len(quiet), ", ".join(
            r["alertname"] for r in quiet)))
    if not firing:
        return finding(fid, "No alert firing", OK, evidence or ["Alertmanager returned no active alert"],
                       alerts=rows)
    status = worst(_alert_status(r) for r in firing)
    return finding(
        fid, "Alerts firing: %s" % ", ".join(_unique(r["alertname"] for r in firing)), status, evidence,
        root_cause="Prometheus rules of the monitoring layer fire (see each alert's summary).",
        impact="Each alert names a failing part of the platform.",
        resolution="; ".join(_unique(r["runbook"] for r in firing if r["runbook"])) or
                   "Follow each alert's runbook line (Alertmanager UI, or `kubectl -n monitoring port-forward "
                   "svc/alertmanager-operated 9093`).",
        alerts=rows,
    )


def _alert_status(row):
    return CRITICAL if row["severity"] == "critical" else WARN
