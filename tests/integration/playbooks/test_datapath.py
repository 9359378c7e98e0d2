# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application data path end to end on real services (issue 11).

tests/fixtures/datapath.py starts it once per session: PostgreSQL 15 with the charts' user models, the
appdb_config role's migrations and rows, Airflow 3.0.2 scheduler + dag-processor + triggerer + api-server
configured from what the airflow role renders, the DAGs from a git checkout as git-sync makes it. The only
stand-in is the pods (the operator's dry-run: the exact pod it would create, returned as XCom).

verify's own task files drive the flow (tests/data/datapath/verify.yml): REST API v2 with a JWT, unpause
every DAG, trigger historical_load_equities; the real scheduler runs load_jobs as the application user,
maps one pod per enabled row, emits the asset event and creates the calculate_indicators run itself.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse

import yaml
from conftest import REPO

DAG_IDS = ["calculate_indicators", "data_collection", "historical_load_equities"]
LOAD, INDICATORS = "historical_load_equities", "calculate_indicators"


def _serialized(dp):
    rows = dp.meta_query("SELECT dag_id FROM serialized_dag ORDER BY dag_id")
    return [r[0] for r in rows] == DAG_IDS


def _rows(dp):
    """The enabled dag_configuration rows of the load DAG as seeded (read back as the superuser)."""
    rows = dp.app_query("SELECT job_name, cpu_request, memory_request, cpu_limit, memory_limit FROM "
                        "financial_screener.dag_configuration WHERE dag_id = %s AND enabled ORDER BY job_name", (LOAD,))
    expected = {}
    for job, cpu_req, mem_req, cpu_lim, mem_lim in rows:
        res = {"requests": {"cpu": cpu_req, "memory": mem_req}}
        limits = {k: v for k, v in (("cpu", cpu_lim), ("memory", mem_lim)) if v}
        if limits:
            res["limits"] = limits
        expected[job] = res
    return expected


def _pods(dp, run_id):
    """Every pod the operator built for one run of the load DAG: job name -> pod spec (read back from XCom)."""
    pods = {}
    for (value,) in dp.meta_query("SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND key = 'return_value' "
                                  "AND task_id = 'load_exchange_history' ORDER BY map_index", (LOAD, run_id)):
        pods[value["env"]["JOB_NAME"]] = value["pod"]
    return pods


def _task_states(dp, dag_id, run_id):
    return dp.meta_query("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = %s AND run_id = %s "
                         "ORDER BY task_id, map_index", (dag_id, run_id))


def test_data_path_end_to_end_through_verify(datapath, tmp_path):
    dp = datapath
    # the configuration is the role's: the connection URL with the URL-encoded password, the Variable
    conn = dp.env["AIRFLOW_CONN_APPDB"]
    assert conn.startswith("postgresql://%s:" % dp.appdb_user) and "%40%3A%2F%25%23" in conn, "not URL-encoded"
    assert dp.env["AIRFLOW_VAR_PI_CLUSTER_JOBS_NAMESPACE"] == dp.jobs_namespace
    mark = time.monotonic()
    dp.wait_until("the dag-processor serialized %s from the git checkout" % DAG_IDS, lambda: _serialized(dp))
    dp.timings["DAGs serialized"] = round(time.monotonic() - mark, 1)
    assert {r[0] for r in dp.meta_query("SELECT fileloc FROM dag")} == {
        os.path.join(dp.dags_folder, d + ".py") for d in DAG_IDS}

    mark = time.monotonic()
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    proc = dp.playbook("verify.yml", {
        **dp.address_vars(),
        "verify_trigger": True,
        # no Kubernetes API here: verify's Service and pod lookups find nothing (findings, not errors)
        "pi_cluster_kubeconfig": str(tmp_path / "no-kubeconfig"),
        "verify_api": {"available": True, "reason": "live test instance of tests/fixtures/datapath.py"},
        "verify_api_url": dp.api_url,
        "verify_airflow_db_host": dp.pg_meta.host,
        "verify_airflow_db_port": dp.pg_meta.port,
        "verify_appdb_address": dp.pg_app.host,
        "verify_appdb_port": dp.pg_app.port,
        "verify_trigger_poll_seconds": 2,
        "verify_trigger_wait_seconds": 240,
        "verify_task_pod_wait_seconds": 1,
        "verify_dag_status_delay": 2,
        "verify_report_dir": str(report_dir),
    }, timeout=600)
    (tmp_path / "verify.log").write_text(proc.stdout + proc.stderr)
    dp.timings["verify playbook (trigger, load, indicators, report)"] = round(time.monotonic() - mark, 1)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    # -- what the real scheduler did -------------------------------------------------------------------------
    runs = dp.meta_query("SELECT run_id, run_type, triggered_by, state, logical_date FROM dag_run WHERE dag_id = %s "
                         "ORDER BY id", (LOAD,))
    assert runs, "no run of %s" % LOAD
    load_run, run_type, triggered_by, state, _logical = runs[-1]
    assert (run_type, triggered_by) == ("manual", "REST_API"), runs
    states = _task_states(dp, LOAD, load_run)
    assert state == "success", "%s: %s\n%s" % (state, states, dp.task_logs(LOAD, load_run))
    jobs = _rows(dp)
    assert [s for s in states if s[0] == "load_jobs"] == [("load_jobs", -1, "success")]
    assert [s for s in states if s[0] == "load_exchange_history"] == [
        ("load_exchange_history", i, "success") for i in range(len(jobs))]
    assert len(jobs) == 4  # the role's four seeded rows -> 4 mapped pod tasks
    assert ("publish_history", -1, "success") in states

    ind = dp.meta_query("SELECT run_id, run_type, triggered_by, state, logical_date, data_interval_start FROM dag_run "
                        "WHERE dag_id = %s ORDER BY id", (INDICATORS,))
    assert len(ind) == 1, ind
    ind_run, ind_type, ind_by, ind_state, ind_logical, ind_interval = ind[0]
    assert (ind_type, ind_by, ind_logical, ind_interval) == ("asset_triggered", "ASSET", None, None), ind
    assert ind_state == "success", "%s\n%s" % (ind, dp.task_logs(INDICATORS, ind_run))
    assert _task_states(dp, INDICATORS, ind_run) == [("calculate_indicators", -1, "success")]

    # -- the pods: one per enabled row, carrying that row's resources -------------------------------------
    pods = _pods(dp, load_run)
    assert sorted(pods) == sorted(jobs)
    for job, pod in pods.items():
        container = pod["spec"]["containers"][0]
        assert container["resources"] == jobs[job], (job, container["resources"])
        assert pod["metadata"]["namespace"] == dp.jobs_namespace
        assert pod["metadata"]["labels"]["dag_id"] == LOAD

    # -- verify's report for this instance ----------------------------------------------------------------
    reports = sorted(report_dir.glob("assessment-*.json"))
    assert len(reports) == 1, "no report written:\n" + proc.stdout[-8000:]
    report = json.loads(reports[0].read_text())
    findings = {f["id"]: f for f in report["findings"]}
    wanted = ["dags.serialized", "dags.trigger", "dags.config_resources", "dags.indicators_after_load"]
    summary = {fid: (findings[fid]["status"], findings[fid]["title"]) for fid in wanted if fid in findings}
    assert all(findings.get(fid, {}).get("status") == "ok" for fid in wanted), json.dumps(
        {fid: findings.get(fid) for fid in wanted}, indent=1)
    evidence = "\n".join(findings["dags.config_resources"]["evidence"])
    for job, pod in pods.items():
        assert pod["metadata"]["name"] in evidence and "matches row %s" % job in evidence, evidence
    print("verify findings:", json.dumps(summary, indent=1))
    print("startup seconds:", json.dumps(dp.timings))


def test_row_edited_through_the_role_reaches_the_next_pod(datapath):
    """cpu_request 750m for lse through the appdb_config role -> the next run's lse pod requests 750m."""
    dp = datapath
    with open(os.path.join(REPO, "roles", "appdb_config", "defaults", "main.yml")) as handle:
        rows = yaml.safe_load(handle)["appdb_config_dag_configuration"]
    for row in rows:
        if row["job_name"] == "lse":
            row["cpu_request"] = "750m"
    dp.apply_appdb_config(appdb_config_dag_configuration=rows)
    assert _rows(dp)["lse"]["requests"]["cpu"] == "750m"

    dp.api("PATCH", "/api/v2/dags/%s" % LOAD, {"is_paused": False})
    run_id = dp.api("POST", "/api/v2/dags/%s/dagRuns" % LOAD, {"logical_date": None})["dag_run_id"]
    path = "/api/v2/dags/%s/dagRuns/%s" % (LOAD, urllib.parse.quote(run_id, safe=""))

    def finished():
        state = dp.api("GET", path)["state"]
        return state if state in ("success", "failed") else None

    state = dp.wait_until("run %s finished" % run_id, finished)
    assert state == "success", dp.task_logs(LOAD, run_id)
    pods = _pods(dp, run_id)
    assert pods["lse"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "750m"
    assert pods["us_markets"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
