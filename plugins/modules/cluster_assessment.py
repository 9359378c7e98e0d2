#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_assessment
short_description: Turn gathered cluster state into assessment findings and a Markdown/JSON report
version_added: "0.1.0"
description:
  - Takes what the verify role gathered (pods, events, PVCs, PVs, StatefulSets, Deployments, Velero Backups,
    Ingresses, the DAG status module's result, the dag_configuration rows, DAG runs, the optional trigger
    result and the UI request) and returns findings, each with id, title, status (ok, warn, critical,
    skipped), evidence, root cause, impact and resolution, plus the component table, the testing checklist
    and the overall status.
  - Renders the report as Markdown shaped like the original hand-written assessment and as a JSON twin.
    With I(report_dir) it writes C(<report_dir>/<report_name>.md) and C(.json) (also in check mode, since the report
    is the purpose of the run, and it changes nothing in the cluster).
  - Never talks to the cluster itself and always returns C(changed=false). It does not fail on critical
    findings; the caller decides (the verify role fails after writing the report).
  - Kubernetes objects may be given as kubectl Lists (C(items)), kubernetes.core.k8s_info results
    (C(resources)), looped registers (C(results)) or plain lists.
options:
  api:
    description:
      - Whether the Kubernetes API answered, C({available, reason}). When not available, every check is
        marked not run and the overall status is C(not_run) (or C(critical) with I(api_required)).
    type: dict
    default: {available: true}
  api_required:
    description: Treat a missing Kubernetes API as a critical finding instead of "not run".
    type: bool
    default: false
  pods:
    description: Pods of the Airflow and databases namespaces.
    type: raw
  events:
    description: Events of those namespaces.
    type: raw
  pvcs:
    description: PersistentVolumeClaims of those namespaces.
    type: raw
  pvs:
    description: PersistentVolumes.
    type: raw
  statefulsets:
    description: StatefulSets of those namespaces.
    type: raw
  deployments:
    description: Deployments of those namespaces.
    type: raw
  backups:
    description: velero.io/v1 Backup objects.
    type: raw
  ingresses:
    description: Ingress objects (the one of I(ingress_host) is checked).
    type: raw
  schedules:
    description: velero.io/v1 Schedule objects (a fresh install has a schedule before its first backup).
    type: raw
  secrets:
    description:
      - Secrets, names only (as playbooks/snapshot.yml writes them, data dropped); the TLS Secret of the
        Ingress, its cert-manager annotations and the certificate fingerprints are read.
    type: raw
  certificates:
    description: cert-manager.io/v1 Certificate objects (absent when cert-manager is not installed).
    type: raw
  clusterissuers:
    description: cert-manager.io/v1 ClusterIssuer objects.
    type: raw
  issuers:
    description: cert-manager.io/v1 Issuer objects (namespaced issuers).
    type: raw
  alerts:
    description:
      - Alerts of Alertmanager's C(GET /api/v2/alerts) (a list, or the registered uri result with C(json)),
        or C({not_installed, reason}) when there is no monitoring. A firing C(severity=critical) alert makes
        the overall status critical.
    type: raw
  not_collected:
    description: Inputs a snapshot lacks (e.g. C(certificates)); the checks that read them are skipped.
    type: list
    elements: str
    default: []
  source:
    description: Where the state comes from, for the report (C(kubernetes api) or C(snapshot <dir>)).
    type: str
  cluster_issuer:
    description: cert-manager ClusterIssuer the UI certificate must come from (empty = any).
    type: str
  task_pods:
    description:
      - Pods labelled dag_id=I(config_dag_id) (KubernetesPodOperator pods), e.g. caught during a triggered run.
    type: raw
  dag_status:
    description: Registered result of stratdata.pi_cluster.airflow_dag_status (registered with failed_when false).
    type: dict
  dag_config:
    description:
      - The financial_screener.dag_configuration rows as the verify role records them, C({query_result, failed,
        msg}), C(query_result) being the rows stratdata.pi_cluster.appdb_dag_config_info returned.
    type: dict
  dag_runs:
    description: Map of dag_id to the registered GET /api/v2/dags/{dag_id}/dagRuns result (or a list of runs).
    type: dict
  trigger:
    description:
      - Result of the opt-in trigger, C({requested, unpause_status, trigger_status, dag_run_id, final_state,
        error}).
    type: dict
  ui:
    description: Registered ansible.builtin.uri result of the HTTPS request to the ingress host.
    type: dict
  expected_dag_ids:
    description: DAG ids that must be serialized and listed by the API.
    type: list
    elements: str
    default: [historical_load_equities, calculate_indicators]
  config_dag_id:
    description: DAG whose pods must carry the resources of its dag_configuration rows (and that the trigger starts).
    type: str
    default: historical_load_equities
  indicators_dag_id:
    description: DAG that must run after a successful run of I(config_dag_id).
    type: str
    default: calculate_indicators
  ingress_host:
    description: Host name the UI must answer on (the cluster contract's C(pi_cluster_airflow_host)).
    type: str
    required: true
  airflow_namespace:
    description: Namespace of the Airflow release (C(pi_cluster_airflow_namespace)).
    type: str
    required: true
  databases_namespace:
    description: Namespace of the application PostgreSQL (C(pi_cluster_appdb_namespace)).
    type: str
    required: true
  velero_namespace:
    description: Namespace of Velero, for messages (C(pi_cluster_velero_namespace)).
    type: str
    required: true
  backup_namespaces:
    description: Namespaces the newest backups must include (C(pi_cluster_backup_namespaces)).
    type: list
    elements: str
    required: true
  backup_max_age_hours:
    description: A newest Completed backup older than this is a warning.
    type: float
    default: 26
  stuck_after_seconds:
    description: A pod not ready for less than this is starting, not stuck.
    type: int
    default: 300
  now:
    description: Reference time (ISO 8601); defaults to the current UTC time. For reproducible reports and tests.
    type: str
  report_dir:
    description:
      - Directory to write the Markdown and JSON report into (created when missing). Nothing is written when unset.
    type: path
  report_name:
    description: Base name of the report files; defaults to C(assessment-<UTC timestamp>).
    type: str
  report_context:
    description: Extra header lines of the Markdown report (label to value), e.g. the kube host.
    type: dict
    default: {}
author:
  - StratData platform team
extends_documentation_fragment:
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Computes the same report in check mode and writes its files (they are the result; never changed).
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Assess the cluster and write the report on the control machine
  stratdata.pi_cluster.cluster_assessment:
    pods: "{{ verify_pods }}"
    events: "{{ verify_events }}"
    pvcs: "{{ verify_pvcs }}"
    backups: "{{ verify_backups }}"
    dag_status: "{{ verify_dag_status }}"
    report_dir: "{{ playbook_dir }}/../reports"
  delegate_to: localhost
  become: false
  register: verify_assessment
"""

RETURN = r"""
overall_status:
  description: ok, warn, critical, or not_run (no Kubernetes API).
  returned: always
  type: str
  sample: critical
summary:
  description: One sentence summing up the result.
  returned: always
  type: str
alerts:
  description: The alerts Alertmanager returned (alertname, severity, namespace, since, state, summary, runbook).
  returned: always
  type: list
  elements: dict
critical_ids:
  description: Ids of the critical findings.
  returned: always
  type: list
  elements: str
  sample: [dags.volume, dags.serialized]
findings:
  description: Every finding (id, title, status, evidence, root_cause, impact, resolution).
  returned: always
  type: list
  elements: dict
components:
  description: Component table rows (name, status, evidence, findings).
  returned: always
  type: list
  elements: dict
checklist:
  description: The testing checklist (id, text, status, passed, evidence).
  returned: always
  type: list
  elements: dict
markdown:
  description: The rendered Markdown report.
  returned: always
  type: str
report:
  description: The whole report as written to the JSON twin.
  returned: always
  type: dict
report_files:
  description: Paths of the written files (markdown, json); empty when I(report_dir) is unset.
  returned: always
  type: dict
"""

import os
import tempfile
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment import (
    assess,
    parse_time,
    render_json,
    render_markdown,
)

STATE_KEYS = ("api", "pods", "events", "pvcs", "pvs", "statefulsets", "deployments", "backups", "schedules",
              "ingresses", "secrets", "certificates", "clusterissuers", "issuers", "alerts", "task_pods", "dag_status",
              "dag_config", "dag_runs", "trigger", "ui")
OPTION_KEYS = ("api_required", "expected_dag_ids", "config_dag_id", "indicators_dag_id", "ingress_host",
               "airflow_namespace", "databases_namespace", "velero_namespace", "backup_namespaces",
               "backup_max_age_hours", "stuck_after_seconds", "now", "not_collected", "source", "cluster_issuer")


def argument_spec():
    return dict(
        api=dict(type="dict", default={"available": True}),
        api_required=dict(type="bool", default=False),
        pods=dict(type="raw"),
        events=dict(type="raw"),
        pvcs=dict(type="raw"),
        pvs=dict(type="raw"),
        statefulsets=dict(type="raw"),
        deployments=dict(type="raw"),
        backups=dict(type="raw"),
        ingresses=dict(type="raw"),
        schedules=dict(type="raw"),
        secrets=dict(type="raw"),
        certificates=dict(type="raw"),
        clusterissuers=dict(type="raw"),
        issuers=dict(type="raw"),
        alerts=dict(type="raw"),
        not_collected=dict(type="list", elements="str", default=[]),
        source=dict(type="str"),
        cluster_issuer=dict(type="str"),
        task_pods=dict(type="raw"),
        dag_status=dict(type="dict"),
        dag_config=dict(type="dict"),
        dag_runs=dict(type="dict"),
        trigger=dict(type="dict"),
        ui=dict(type="dict"),
        expected_dag_ids=dict(type="list", elements="str",
                              default=["historical_load_equities", "calculate_indicators"]),
        config_dag_id=dict(type="str", default="historical_load_equities"),
        indicators_dag_id=dict(type="str", default="calculate_indicators"),
        ingress_host=dict(type="str", required=True),
        airflow_namespace=dict(type="str", required=True),
        databases_namespace=dict(type="str", required=True),
        velero_namespace=dict(type="str", required=True),
        backup_namespaces=dict(type="list", elements="str", required=True),
        backup_max_age_hours=dict(type="float", default=26),
        stuck_after_seconds=dict(type="int", default=300),
        now=dict(type="str"),
        report_dir=dict(type="path"),
        report_name=dict(type="str"),
        report_context=dict(type="dict", default={}),
    )


def _write(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".assessment-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_assessment(params):
    """(result, error message or None) of one assessment from the module's validated parameters; writes the
    report files when report_dir is set. Shared by main() and the action plugin of the same name."""
    state = dict((key, params[key]) for key in STATE_KEYS if params.get(key) is not None)
    options = dict((key, params[key]) for key in OPTION_KEYS)
    now = parse_time(params["now"]) if params["now"] else datetime.now(timezone.utc)
    if now is None:
        return {}, "now=%r is not an ISO 8601 time" % params["now"]
    options["now"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    report = assess(state, options)
    markdown = render_markdown(report, context=params["report_context"])
    files = {}
    if params["report_dir"]:
        name = params["report_name"] or "assessment-%s" % now.strftime("%Y%m%dT%H%M%SZ")
        try:
            os.makedirs(params["report_dir"], exist_ok=True)
            files["markdown"] = os.path.join(params["report_dir"], name + ".md")
            files["json"] = os.path.join(params["report_dir"], name + ".json")
            _write(files["markdown"], markdown)
            _write(files["json"], render_json(report))
        except OSError as exc:
            return {}, "cannot write the report into %s: %s" % (params["report_dir"], exc)
    return dict(
        changed=False,
        overall_status=report["overall_status"],
        summary=report["summary"],
        critical_ids=report["critical_ids"],
        alerts=report.get("alerts", []),
        findings=report["findings"],
        components=report["components"],
        checklist=report["checklist"],
        markdown=markdown,
        report=report,
        report_files=files,
    ), None


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    result, error = run_assessment(module.params)
    if error:
        module.fail_json(msg=error)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
