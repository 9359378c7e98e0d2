# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
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
  dag_config   {query_result, failed, msg}: the rows stratdata.pi_cluster.appdb_dag_config_info read
               (``query_result``) and its error message, as roles/verify/tasks/dags.yml records them
  dag_runs     {dag_id: <GET /api/v2/dags/{dag_id}/dagRuns result or list of runs>}
  trigger      {"requested": bool, "dag_run_id", "final_state", "unpause_status", "trigger_status", "error"}
  ui           the registered result of ansible.builtin.uri against the ingress host

Each finding is a dict: id, title, status (ok / warn / critical / skipped), evidence (list of
sentences), root_cause, impact, resolution. ``skipped`` means "not checked" (with the reason in the
evidence) and never turns the overall status green on its own: the checklist shows it unticked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timezone

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (  # noqa: F401
    CHECKLIST,
    CHECK_NEEDS,
    CONTRACT_OPTIONS,
    CRITICAL,
    DEFAULT_COMPONENTS,
    DEFAULT_OPTIONS,
    FINDING_ORDER,
    ICONS,
    MULTI_ATTACH_PODS_RE,
    MULTI_ATTACH_RE,
    NOT_RUN,
    OK,
    OVERALL_TEXT,
    RESULT_KEYS,
    RWO_MODES,
    RWX_MODES,
    SCHEMA_VERSION,
    SKIPPED,
    STATUS_RANK,
    VELERO_TERMINAL,
    WARN,
    describe_pod,
    finding,
    format_time,
    human_age,
    labels_of,
    meta,
    normalize_object,
    objects,
    parse_quantity,
    parse_time,
    pod_display_status,
    quantities_equal,
    ref,
    summarize_pod,
    worst,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.storage import (  # noqa: F401
    check_dag_volume,
    check_pvc_unbound,
    check_storage_multi_attach,
    check_storage_rwo_shared,
    multi_attach_events,
    volume_usage,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.workloads import (  # noqa: F401
    check_components_missing,
    check_pods_not_ready,
    check_pods_stuck_init,
    evaluate_components,
    resolve_components,
    selector_matches,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.dags import (  # noqa: F401
    JOB_LABELS,
    ROW_RESOURCE_COLUMNS,
    check_config_resources,
    check_dags_serialized,
    check_indicators_after_load,
    check_trigger,
    compare_resources,
    expected_resources,
    match_pod_to_rows,
    normalize_dag_status,
    pod_job_name,
    pod_resources,
    row_resources,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.backups import (  # noqa: F401
    backup_covers,
    backup_includes_pvcs,
    backup_time,
    backup_volume_data,
    check_velero,
    newest_backup,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.ingress import (  # noqa: F401
    check_tls,
    check_ui,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.alerts import (  # noqa: F401
    alert_list,
    check_alerts,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.report import (  # noqa: F401
    _collection_finding,
    _not_collected,
    _not_run_report,
    _report,
    render_json,
    render_markdown,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.restore import (  # noqa: F401
    compare_row_counts,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.context import (  # noqa: F401
    _Context,
)

# The package's interface: what the modules, filters and tests import from it.
__all__ = [
    "CHECKLIST",
    "CHECK_NEEDS",
    "CONTRACT_OPTIONS",
    "CRITICAL",
    "DEFAULT_COMPONENTS",
    "DEFAULT_OPTIONS",
    "FINDING_ORDER",
    "ICONS",
    "JOB_LABELS",
    "MULTI_ATTACH_PODS_RE",
    "MULTI_ATTACH_RE",
    "NOT_RUN",
    "OK",
    "OVERALL_TEXT",
    "RESULT_KEYS",
    "ROW_RESOURCE_COLUMNS",
    "RWO_MODES",
    "RWX_MODES",
    "SCHEMA_VERSION",
    "SKIPPED",
    "STATUS_RANK",
    "VELERO_TERMINAL",
    "WARN",
    "alert_list",
    "assess",
    "backup_covers",
    "backup_includes_pvcs",
    "backup_time",
    "backup_volume_data",
    "check_alerts",
    "check_components_missing",
    "check_config_resources",
    "check_dag_volume",
    "check_dags_serialized",
    "check_indicators_after_load",
    "check_pods_not_ready",
    "check_pods_stuck_init",
    "check_pvc_unbound",
    "check_storage_multi_attach",
    "check_storage_rwo_shared",
    "check_tls",
    "check_trigger",
    "check_ui",
    "check_velero",
    "compare_resources",
    "compare_row_counts",
    "describe_pod",
    "evaluate_components",
    "expected_resources",
    "finding",
    "format_time",
    "human_age",
    "labels_of",
    "match_pod_to_rows",
    "merge_options",
    "meta",
    "multi_attach_events",
    "newest_backup",
    "normalize_dag_status",
    "normalize_object",
    "objects",
    "parse_quantity",
    "parse_time",
    "pod_display_status",
    "pod_job_name",
    "pod_resources",
    "quantities_equal",
    "ref",
    "render_json",
    "render_markdown",
    "resolve_components",
    "row_resources",
    "selector_matches",
    "summarize_pod",
    "volume_usage",
    "worst",
]


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
    state = dict(state) if isinstance(state, dict) else {}
    for key in RESULT_KEYS:
        # an Ansible result of the wrong JSON type (a string, a list) is as good as absent
        if state.get(key) is not None and not isinstance(state[key], dict):
            state[key] = None
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
    for check in (check_velero, check_ui, check_tls, check_alerts):
        result = check(ctx)
        ctx.findings[result["id"]] = result
    not_collected = _not_collected(options)
    if not_collected:
        for fid, needs in CHECK_NEEDS.items():
            absent = [name for name in needs if name in not_collected]
            if absent and fid in ctx.findings:
                ctx.findings[fid] = finding(
                    fid, "Not checked: %s not collected" % ", ".join(absent), SKIPPED,
                    ["not collected: %s absent from the snapshot" % ", ".join(n + ".json" for n in absent)])
        if "pods" in not_collected:
            components = [dict(row, status=SKIPPED, evidence=["not collected: pods.json absent from the snapshot"],
                               findings=[]) for row in components]
    ctx.findings["snapshot.collection"] = _collection_finding(options, not_collected)
    findings = [ctx.findings[fid] for fid in FINDING_ORDER if fid in ctx.findings]
    report = _report(findings, components, options, api_available=True)
    report["alerts"] = ctx.findings["alerts.firing"].get("alerts", [])
    report["alerts_collected"] = ctx.findings["alerts.firing"]["status"] != SKIPPED
    report["source"] = options.get("source") or "kubernetes api"
    report["not_collected"] = not_collected
    return report
