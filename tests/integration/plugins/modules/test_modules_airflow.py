"""airflow_dag_status and the reference DAGs against REAL Airflow 3.0.2 on a REAL PostgreSQL 15.

The dag-processor really parses a temporary copy of dags/ (``airflow dag-processor -n 1``); the module
reads the metadata database it wrote (and the REST API of a real ``airflow api-server``);
``historical_load_equities`` really runs (``airflow dags test``) against a database seeded by the
collection's own modules. Fixtures: tests/fixtures/postgres.py, tests/fixtures/airflow.py.
"""

from __future__ import annotations

import copy
import os
import threading
import time

import pytest
import yaml
from conftest import REPO, appdb_module_args

from fixtures.airflow import API_PASSWORD, API_USER, probe_parse

MIGRATIONS_DIR = os.path.join(REPO, "roles", "appdb_config", "files", "migrations")
DEFAULTS = yaml.safe_load(open(os.path.join(REPO, "roles", "appdb_config", "defaults", "main.yml")))
DAG_IDS = ["data_collection", "historical_load_equities", "calculate_indicators"]
DAG_FILES = ["data_collection.py", "historical_load_equities.py", "calculate_indicators.py"]


@pytest.fixture
def fresh_parse(airflow_env):
    """Dags folder reset to the repository's dags/ and parsed once by the real dag-processor."""
    airflow_env.reset_dags()
    airflow_env.parse()
    return airflow_env


def status_args(airflow_env, **extra):
    args = dict(airflow_env.pg.module_args(airflow_env.meta_db), dag_ids=DAG_IDS)
    args.update(extra)
    return args


def test_all_three_dags_found_after_real_parse_db_and_api(fresh_parse, run_module):
    env = fresh_parse
    result = run_module("airflow_dag_status", status_args(env))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["import_errors"] == [] and result["missing"] == [] and result["stale"] == []
    for dag_id in DAG_IDS:
        dag = result["dags"][dag_id]
        assert dag["ok"] and dag["found"] and dag["serialized"] and dag["is_stale"] is False, dag
        assert dag["fileloc"] == os.path.join(env.dags_folder, dag_id + ".py")
        assert dag["bundle_name"] == "dags-folder"
    assert sorted(result["paused"]) == sorted(DAG_IDS)  # new DAGs start paused; reported, not an error

    # read-only module: same answer in check mode
    assert not run_module("airflow_dag_status", status_args(env), check=True).get("failed")

    # and through the REST API v2 (JWT from POST /auth/token, then GET /api/v2/dags)
    with env.api_server() as base:
        api = run_module("airflow_dag_status", status_args(env, api_url=base, api_username=API_USER,
                                                          api_password=API_PASSWORD))
        assert not api.get("failed"), api.get("msg")
        assert api["api_checked"] is True
        assert all(api["dags"][d]["api_visible"] is True for d in DAG_IDS)

        missing = run_module("airflow_dag_status", status_args(env, dag_ids=DAG_IDS + ["no_such_dag"], api_url=base,
                                                              api_username=API_USER, api_password=API_PASSWORD))
        assert missing.get("failed") is True
        assert "no_such_dag: not in the metadata database" in missing["msg"]
        assert "no_such_dag: not listed by GET /api/v2/dags" in missing["msg"]

        denied = run_module("airflow_dag_status", status_args(env, api_url=base, api_username=API_USER,
                                                             api_password="pi-cluster-TEST-ONLY-wrong"))
        assert denied.get("failed") and "HTTP 401" in denied["msg"]
        assert API_PASSWORD not in str(denied)


def test_broken_dag_file_reports_its_import_error(airflow_env, run_module):
    env = airflow_env
    env.reset_dags()
    broken = os.path.join(env.dags_folder, "broken_screener_dag.py")
    with open(broken, "w") as handle:
        handle.write("from airflow.sdk import dag\nimport pi_cluster_module_that_does_not_exist\n")
    env.parse()
    result = run_module("airflow_dag_status", status_args(env))
    assert result.get("failed") is True
    assert "import error in %s" % broken in result["msg"]
    assert "No module named 'pi_cluster_module_that_does_not_exist'" in result["msg"]
    assert [e["filename"] for e in result["import_errors"]] == [broken]
    assert "Traceback" in result["import_errors"][0]["stacktrace"]
    assert all(result["dags"][d]["ok"] for d in DAG_IDS)  # the good DAGs are still reported fine

    tolerant = run_module("airflow_dag_status", status_args(env, fail_on_import_errors=False))
    assert not tolerant.get("failed") and len(tolerant["import_errors"]) == 1


def test_removed_dag_file_reported_stale_and_retries_wait_for_its_return(airflow_env, run_module):
    env = airflow_env
    env.reset_dags()
    env.parse()
    os.remove(os.path.join(env.dags_folder, "data_collection.py"))
    env.parse()  # the dag-processor notices the file is gone
    result = run_module("airflow_dag_status", status_args(env))
    assert result.get("failed") is True
    assert result["stale"] == ["data_collection"]
    assert "data_collection: stale" in result["msg"]
    assert result["dags"]["data_collection"]["is_stale"] is True
    assert result["dags"]["historical_load_equities"]["ok"] is True

    # retries/delay: the module polls while the dag-processor brings the DAG back
    waited = {}

    def check():
        waited.update(run_module("airflow_dag_status", status_args(env, retries=60, delay=1)))

    thread = threading.Thread(target=check)
    thread.start()
    time.sleep(3)
    env.reset_dags()
    env.parse()
    thread.join(timeout=120)
    assert not waited.get("failed"), waited.get("msg")
    assert waited["attempts"] > 1
    assert waited["dags"]["data_collection"]["is_stale"] is False


def test_historical_load_maps_one_pod_per_seeded_row(fresh_parse, run_module, postgres_server, pg_database):
    """A real `airflow dags test` run: jobs and their resources come from the rows our modules seeded.

    The dag-processor must have parsed the bundle first (it registers the outlet asset, as in production).
    """
    env, pg, db = fresh_parse, postgres_server, pg_database
    assert not run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR)).get("failed")
    rows = copy.deepcopy(DEFAULTS["appdb_config_dag_configuration"])
    by_name = {r["job_name"]: r for r in rows}
    by_name["lse"].update(cpu_request="250m", memory_request="768Mi", cpu_limit="2", memory_limit="3Gi",
                          batch_size=50)
    by_name["european_markets"]["enabled"] = False
    seeded = run_module("appdb_dag_config", dict(appdb_module_args(pg, db), dag_configuration=rows,
                                                 job_defaults=DEFAULTS["appdb_config_job_defaults"],
                                                 exchange_groups=DEFAULTS["appdb_config_exchange_groups"]))
    assert not seeded.get("failed"), seeded.get("msg")

    proc = env.run("dags", "test", "historical_load_equities", timeout=600, env=env.env(
        AIRFLOW_CONN_APPDB=pg.url(db),        # the connection id the DAG reads by default
        PI_CLUSTER_DAGS_DRY_RUN="true",       # render + return the pod instead of creating it
        PYTHONPATH=env.dags_folder,           # `dags test` does not put the bundle root on sys.path
    ))
    assert "DRY RUN: pod that would be created" in proc.stdout + proc.stderr

    run_id = env.meta_query("SELECT run_id FROM dag_run WHERE dag_id = 'historical_load_equities' "
                            "ORDER BY id DESC LIMIT 1")[0][0]
    states = env.meta_query("SELECT task_id, map_index, state FROM task_instance WHERE run_id = %s "
                            "ORDER BY task_id, map_index", (run_id,))
    assert [s for s in states if s[0] == "load_exchange_history"] == [
        ("load_exchange_history", i, "success") for i in range(3)]  # 3 enabled rows -> 3 mapped pods
    assert ("publish_history", -1, "success") in states

    pods = {}
    for _map_index, value in env.meta_query("SELECT map_index, value FROM xcom WHERE run_id = %s AND "
                                           "task_id = 'load_exchange_history' ORDER BY map_index", (run_id,)):
        pods[value["env"]["JOB_NAME"]] = value
    assert sorted(pods) == ["german_markets", "lse", "us_markets"]  # european_markets is disabled
    assert pods["lse"]["resources"] == {"requests": {"cpu": "250m", "memory": "768Mi"},
                                        "limits": {"cpu": "2", "memory": "3Gi"}}
    assert pods["lse"]["resources_type"] == "V1ResourceRequirements"
    assert pods["lse"]["args"][-2:] == ["--batch-size", "50"]
    assert pods["us_markets"]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    assert pods["us_markets"]["env"]["EXCHANGES"] == "NYSE,NASDAQ"
    assert pods["german_markets"]["namespace"] == "financial-screener"

    # the asset outlet was emitted -> calculate_indicators is scheduled by it
    events = env.meta_query("SELECT a.uri FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                            "WHERE e.source_run_id = %s", (run_id,))
    assert events == [("appdb://financial_screener/historical_prices",)]


def test_reference_dags_make_zero_db_queries_at_parse_time(airflow_env, postgres_server, pg_database, tmp_path):
    env = airflow_env
    env.reset_dags()
    for probe in probe_parse(env, [os.path.join(env.dags_folder, name) for name in DAG_FILES]):
        assert probe["import_errors"] == {}, probe
        assert len(probe["dags"]) == 1
        assert probe["db_connects"] == 0 and probe["sql_statements"] == 0, probe

    # control: the probe does see a DAG file that queries the database while it is parsed
    bad = os.path.join(env.dags_folder, "queries_at_parse.py")
    with open(bad, "w") as handle:
        handle.write(
            "from airflow.sdk import dag\n"
            "from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
            "ROWS = PostgresHook(postgres_conn_id='appdb').get_records('SELECT 1')\n"
            "@dag(dag_id='queries_at_parse', schedule=None)\n"
            "def queries_at_parse():\n    pass\n"
            "queries_at_parse()\n")
    probe = probe_parse(env, [bad], {"AIRFLOW_CONN_APPDB": postgres_server.url(pg_database)})[0]
    assert probe["dags"] == ["queries_at_parse"]
    assert probe["db_connects"] >= 1
