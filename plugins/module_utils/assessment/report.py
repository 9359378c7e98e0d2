# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report: overall status, checklist, summary, Markdown and JSON rendering."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CHECKLIST,
    CRITICAL,
    ICONS,
    NOT_RUN,
    OK,
    OVERALL_TEXT,
    SCHEMA_VERSION,
    SKIPPED,
    WARN,
    finding,
    worst,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.workloads import (
    resolve_components,
)

# Snapshot collection ------------------------------------------------------------------------------

def _not_collected(options):
    value = options.get("not_collected") or []
    return sorted(str(v) for v in value if isinstance(v, (str, int))) if isinstance(value, list) else []


def _collection_finding(options, not_collected):
    fid = "snapshot.collection"
    source = options.get("source") or "kubernetes api"
    if not not_collected:
        return finding(fid, "Everything read from the %s" % source, OK, ["source: %s" % source])
    return finding(fid, "Not collected: %s" % ", ".join(not_collected), WARN,
                   ["source: %s" % source] + ["%s.json: not collected" % name for name in not_collected],
                   root_cause="The snapshot lacks these files (taken by an older snapshot.yml, or the resource "
                              "could not be read when it was taken).",
                   impact="The checks that read them are skipped.",
                   resolution="Take a new snapshot: `ansible-playbook playbooks/snapshot.yml`.")


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
    if overall != NOT_RUN:
        lines.extend(_render_alerts(report))
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


def _render_alerts(report):
    """The section "Alerts firing now" (Alertmanager API v2)."""
    lines = ["## Alerts firing now", ""]
    item = next((f for f in report["findings"] if f["id"] == "alerts.firing"), None)
    if item is None or item["status"] == SKIPPED:
        reason = "; ".join(item["evidence"]) if item else "not collected"
        lines.extend(["%s %s" % (ICONS[SKIPPED], _md_cell(reason)), ""])
        return lines
    firing = [a for a in report.get("alerts") or [] if a.get("state") == "active" and a.get("alertname") != "Watchdog"]
    if not firing:
        lines.extend(["%s None (Alertmanager answered; the Watchdog alert only proves the pipeline)." % ICONS[OK], ""])
        return lines
    lines.append("| Alert | Severity | Since | Summary | Runbook |")
    lines.append("| --- | --- | --- | --- | --- |")
    for alert in sorted(firing, key=lambda a: (a.get("severity") != "critical", a.get("alertname"))):
        lines.append("| %s | %s %s | %s | %s | %s |" % (
            _md_cell(alert.get("alertname")), ICONS[CRITICAL] if alert.get("severity") == "critical" else ICONS[WARN],
            _md_cell(alert.get("severity")), _md_cell(alert.get("since")), _md_cell(alert.get("summary") or "-"),
            _md_cell(alert.get("runbook") or "-")))
    lines.append("")
    return lines


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
