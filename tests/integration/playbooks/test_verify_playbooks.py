"""The verify, repair-dags and restore-drill playbooks and the two modules, through the real ansible-playbook.

- syntax-check of the three playbooks;
- verify.yml without a Kubernetes API: in the lab it writes a "not run" report and passes; on the real
  cluster (pi_cluster_lab false) it writes a CRITICAL report and fails;
- the cluster_assessment module on the recorded broken state writes the Markdown report and its JSON twin;
- verify's dag_configuration read (stratdata.pi_cluster.appdb_dag_config_info and the set_fact after it) and
  an exact row count of every table (the restore drill's former query) run against a real PostgreSQL 15
  with the appdb schema of roles/appdb_config, and their rows feed the assessment / the row-count comparison.
"""

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml
from conftest import ASSESSMENT_NAMES, CONTRACT, REPAIR_NAMES, REPO, VENV_BIN, ansible_env


from ansible_collections.stratdata.pi_cluster.plugins.module_utils import assessment as A  # noqa: E402

# Every test here runs ansible-playbook (or renders through it): not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

LAB_VAULT = REPO / "lab" / "vault-password.txt"
STATES = REPO / "tests" / "data" / "cluster_states"
MY_PLAYBOOKS = ("playbooks/verify.yml", "playbooks/snapshot.yml", "playbooks/repair-dags.yml",
                "playbooks/restore-drill.yml")


def env(**extra):
    quiet = dict(ANSIBLE_DEPRECATION_WARNINGS=0, ANSIBLE_LOCALHOST_WARNING=0, ANSIBLE_INVENTORY_UNPARSED_WARNING=0)
    return ansible_env(**dict(quiet, **extra))


def ansible_playbook(*args, environ=None, timeout=600):
    exe = shutil.which("ansible-playbook", path=str(VENV_BIN))
    assert exe, "ansible-playbook is not installed in %s" % VENV_BIN
    return subprocess.run([exe] + [str(a) for a in args], cwd=str(REPO), env=environ or env(), capture_output=True,
                          text=True, timeout=timeout)


def run_json_play(tmp_path, play):
    """Run a generated play on localhost with the json callback; return the task results by task name."""
    path = tmp_path / ("play-%s.json" % uuid.uuid4().hex[:8])
    path.write_text(json.dumps(play))
    proc = ansible_playbook("-i", "localhost,", "-c", "local", path,
                            environ=env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                                        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json"))
    try:
        out = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("no JSON from ansible-playbook (rc=%d)\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                                                proc.stderr[-3000:])) from exc
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]}


# --------------------------------------------------------------------------------------------------
# syntax
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("inventory", [[], ["-i", "localhost,"]], ids=["inventory", "no-inventory"])
@pytest.mark.parametrize("playbook", MY_PLAYBOOKS)
def test_syntax_check(playbook, inventory):
    proc = ansible_playbook("--syntax-check", *inventory, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_module_documentation_matches_the_argument_spec():
    for name in ("cluster_assessment", "airflow_repair_plan"):
        path = REPO / "plugins" / "modules" / (name + ".py")
        tree = ast.parse(path.read_text())
        docs = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
                if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                and n.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")}
        assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
        documentation = yaml.safe_load(docs["DOCUMENTATION"])
        yaml.safe_load(docs["EXAMPLES"])
        yaml.safe_load(docs["RETURN"])
        spec = importlib.util.spec_from_file_location("doc_" + name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        argument_spec = module.argument_spec()
        assert set(argument_spec) == set(documentation["options"]), name
        for option, definition in argument_spec.items():
            assert documentation["options"][option]["type"] == definition["type"], (name, option)


# --------------------------------------------------------------------------------------------------
# verify.yml without a Kubernetes API
# --------------------------------------------------------------------------------------------------

def _verify_without_api(tmp_path, *extra):
    reports = tmp_path / "reports"
    proc = ansible_playbook("playbooks/verify.yml", "--vault-password-file", LAB_VAULT,
                            "-e", "ansible_connection=local", "-e", "ansible_become=false",
                            "-e", "ansible_python_interpreter=%s" % sys.executable,
                            "-e", "verify_report_dir=%s" % reports, *extra)
    files = sorted(reports.glob("assessment-*")) if reports.exists() else []
    return proc, files


def test_verify_in_the_lab_writes_a_not_run_report_and_passes(tmp_path):
    proc, files = _verify_without_api(tmp_path, "-e", "pi_cluster_lab=true")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert output.count("verify: cluster checks not run: no Kubernetes API (pi_cluster_lab is true") == 1
    assert [f.suffix for f in files] == [".json", ".md"]
    assert re.match(r"assessment-\d{8}T\d{6}Z$", files[0].stem)
    report = json.loads(files[0].read_text())
    assert report["overall_status"] == "not_run"
    assert report["not_run_reason"] == "pi_cluster_lab is true: the podman lab has no k3s"
    markdown = files[1].read_text()
    assert "**Overall status: \u23ed\ufe0f NOT RUN**" in markdown
    assert "- Kube host: pi-master" in markdown
    assert "changed=0" in proc.stdout and "failed=0" in proc.stdout


def test_verify_on_the_cluster_without_api_fails_with_a_critical_report(tmp_path):
    proc, files = _verify_without_api(tmp_path, "-e", "pi_cluster_lab=false",
                                      "-e", "pi_cluster_kubeconfig=%s" % (tmp_path / "absent-k3s.yaml"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Cluster assessment is CRITICAL (1): Kubernetes API does not answer" in output
    report = json.loads(files[0].read_text())
    assert report["overall_status"] == "critical"
    assert report["critical_ids"] == ["cluster.api"]
    assert "absent-k3s.yaml not found on pi-master" in report["findings"][0]["evidence"][0]


# --------------------------------------------------------------------------------------------------
# the module through ansible
# --------------------------------------------------------------------------------------------------

def _state_vars(name):
    directory = STATES / name
    state = {}
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        if path.stem == "ansible":
            state.update({k: v for k, v in data.items() if k != "helm_values"})
        else:
            state[path.stem] = data
    return state


def test_cluster_assessment_module_writes_the_report(tmp_path):
    state = _state_vars("broken")
    now = state.pop("captured_at")
    args = dict(state, **ASSESSMENT_NAMES, now=now, report_dir=str(tmp_path / "reports"),
                report_name="assessment-broken",
                report_context={"Kube host": "pi-master"})
    task = {"name": "assess", "stratdata.pi_cluster.cluster_assessment": args}
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                        "vars": {"ansible_python_interpreter": sys.executable}, "tasks": [task]}])
    result = results["assess"]
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["overall_status"] == "critical"
    assert result["critical_ids"] == ["dags.volume", "dags.serialized"]
    markdown = (tmp_path / "reports" / "assessment-broken.md").read_text()
    assert markdown == result["markdown"]
    assert "### 2. No DAGs serialized: none of the 2 expected DAGs is in serialized_dag or the API" in markdown
    twin = json.loads((tmp_path / "reports" / "assessment-broken.json").read_text())
    assert twin == result["report"]
    assert result["report_files"] == {"markdown": str(tmp_path / "reports" / "assessment-broken.md"),
                                      "json": str(tmp_path / "reports" / "assessment-broken.json")}


def test_repair_plan_module_on_the_healthy_state(tmp_path):
    state = _state_vars("healthy")
    helm_values = json.loads((STATES / "healthy" / "ansible.json").read_text())["helm_values"]
    args = dict(REPAIR_NAMES, pods=state["pods"], events=state["events"], pvcs=state["pvcs"], pvs=state["pvs"],
                helm_values=helm_values, dags_mode="git_sync", now=state["captured_at"])
    result = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                       "vars": {"ansible_python_interpreter": sys.executable},
                                       "tasks": [{"name": "plan", "stratdata.pi_cluster.airflow_repair_plan": args}]}])
    assert result["plan"]["changed"] is False
    assert result["plan"]["actions_needed"] is False
    assert result["plan"]["delete_pods"] == []


# --------------------------------------------------------------------------------------------------
# the SQL of the verify role and of the restore drill, on a real PostgreSQL 15
# --------------------------------------------------------------------------------------------------

def _postgres_module():
    """tests/fixtures/postgres.py (whether or not conftest registers it as a plugin)."""
    name = "verify_pg_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "fixtures" / "postgres.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look the module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def pg():
    with _postgres_module().PostgresServer.started() as server:
        yield server


def _apply_appdb_schema(pg, dbname):
    conn = pg.connect(dbname)
    try:
        with conn.cursor() as cur:
            for migration in sorted((REPO / "roles" / "appdb_config" / "files" / "migrations").glob("*.sql")):
                cur.execute(migration.read_text())
            cur.execute("""
                INSERT INTO financial_screener.exchange_groups (group_name, timezone, exchanges) VALUES
                  ('us_markets', 'America/New_York', ARRAY['NYSE', 'NASDAQ']), ('lse', 'Europe/London', ARRAY['LSE']),
                  ('german_markets', 'Europe/Berlin', ARRAY['Frankfurt', 'XETRA']),
                  ('european_markets', 'Europe/Paris', ARRAY['Euronext', 'BME', 'SIX']);
                INSERT INTO financial_screener.dag_configuration
                  (dag_id, job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, batch_size,
                   enabled)
                VALUES
                  ('historical_load_equities', 'us_markets', ARRAY['NYSE', 'NASDAQ'], '500m', '1Gi', '1', '2Gi', 500,
                   true),
                  ('historical_load_equities', 'lse', ARRAY['LSE'], '500m', '1Gi', NULL, NULL, 500, true),
                  ('historical_load_equities', 'german_markets', ARRAY['Frankfurt', 'XETRA'], '500m', '1Gi', NULL, NULL,
                   500, true),
                  ('historical_load_equities', 'european_markets', ARRAY['Euronext', 'BME', 'SIX'], '500m', '1Gi', NULL,
                   NULL, 500, true),
                  ('calculate_indicators', 'all', ARRAY['NYSE'], '250m', '512Mi', NULL, NULL, 1000, true);
                CREATE TABLE financial_screener."Prices 2026" (id bigserial PRIMARY KEY, close numeric);
                INSERT INTO financial_screener."Prices 2026" (close) SELECT g FROM generate_series(1, 1500) g;
            """)
        conn.commit()
    finally:
        conn.close()


def _task(path, module):
    """The task of a role/playbook file that calls module (its YAML, as written)."""
    data = yaml.safe_load((REPO / path).read_text())
    tasks = data if isinstance(data, list) else []
    for entry in list(tasks):
        tasks.extend(entry.get("tasks", []) + entry.get("block", []))
    return next(t for t in tasks if module in t)


# Exact row count of every table of a schema (the restore drill's former query; the drill itself now
# compares through stratdata.pi_cluster.appdb_restore_drill, tested in
# tests/integration/plugins/modules/test_restore_drill.py).
ROW_COUNT_QUERY = (
    "SELECT c.relname AS table_name, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM "
    "%%I.%%I', ns.nspname, c.relname), false, true, '')))[1]::text::bigint AS row_count FROM pg_class c JOIN "
    "pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = %(schema)s AND c.relkind IN ('r', 'p') "
    "ORDER BY c.relname")


def test_dag_configuration_query_and_row_counts_on_real_postgresql(pg, tmp_path):
    live = pg.create_database()
    _apply_appdb_schema(pg, live)
    restored = pg.create_database()
    _apply_appdb_schema(pg, restored)
    unmigrated = pg.create_database()
    pg.query(restored, 'DELETE FROM financial_screener."Prices 2026" WHERE id > 1400')  # backup taken earlier
    try:
        # verify's two tasks as written: appdb_dag_config_info, then the set_fact that hands the rows on
        config_task = _task("roles/verify/tasks/dags.yml", "stratdata.pi_cluster.appdb_dag_config_info")
        config_args = dict(config_task["stratdata.pi_cluster.appdb_dag_config_info"])
        record = _role_task("dags.yml", "Record the dag_configuration rows")
        connection = {"login_host": pg.host, "port": pg.port, "login_user": pg.user, "login_password": pg.password,
                      "ssl_mode": "disable"}
        tasks = []
        for label, dbname in (("config rows", live), ("config of an unmigrated database", unmigrated)):
            args = dict(config_args, login_host=pg.host, port=pg.port, login_user=pg.user,
                        login_password=pg.password, database=dbname, sslmode="disable")
            tasks.append({"name": label, "stratdata.pi_cluster.appdb_dag_config_info": args,
                          "register": config_task["register"], "failed_when": config_task["failed_when"]})
            tasks.append(dict(record, name="%s recorded" % label))
        for label, dbname in (("live counts", live), ("restored counts", restored)):
            tasks.append({"name": label, "community.postgresql.postgresql_query": dict(
                connection, login_db=dbname, query=ROW_COUNT_QUERY,
                named_args={"schema": CONTRACT["pi_cluster_appdb_schema"]})})
        play_vars = {"ansible_python_interpreter": sys.executable,
                     "verify_appdb_schema": CONTRACT["pi_cluster_appdb_schema"],
                     "verify_config_dag_id": "historical_load_equities",
                     "verify_appdb_address": pg.host}
        results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False, "vars": play_vars,
                                            "tasks": tasks}])
    finally:
        pg.drop_database(live)
        pg.drop_database(restored)
        pg.drop_database(unmigrated)
    for name, result in results.items():
        assert not result.get("failed"), (name, result.get("msg"))

    config = results["config rows recorded"]["ansible_facts"]["verify_dag_config"]
    assert config["failed"] is False and config["msg"] == ""
    rows = config["query_result"]
    assert [r["job_name"] for r in rows] == ["european_markets", "german_markets", "lse", "us_markets"]
    assert {k: v for k, v in rows[3].items() if k != "updated_at"} == {
        "dag_id": "historical_load_equities", "job_name": "us_markets", "exchanges": ["NYSE", "NASDAQ"],
        "cpu_request": "500m", "memory_request": "1Gi", "cpu_limit": "1", "memory_limit": "2Gi", "batch_size": 500,
        "enabled": True}
    # the rows, as the verify role hands them on, against the recorded task pods of the healthy state
    state = _state_vars("healthy")
    now = state.pop("captured_at")
    state["dag_config"] = config
    by_id = {f["id"]: f for f in A.assess(state, dict(ASSESSMENT_NAMES, now=now))["findings"]}
    assert by_id["dags.config_resources"]["status"] == "ok", by_id["dags.config_resources"]["evidence"]
    # an unmigrated appdb: the read fails (a finding, not a failed play) and the report names the cause
    state["dag_config"] = results["config of an unmigrated database recorded"]["ansible_facts"]["verify_dag_config"]
    assert state["dag_config"]["failed"] is True and state["dag_config"]["query_result"] == []
    missing = {f["id"]: f for f in A.assess(state, dict(ASSESSMENT_NAMES, now=now))["findings"]}
    assert missing["dags.config_resources"]["status"] == "critical"
    assert "appdb_config not applied" in missing["dags.config_resources"]["root_cause"]
    assert pg.password not in json.dumps(results)

    live_counts = results["live counts"]["query_result"]
    assert {r["table_name"]: r["row_count"] for r in live_counts} == {
        "Prices 2026": 1500, "dag_configuration": 5, "exchange_groups": 4}
    diff = A.compare_row_counts(live_counts, results["restored counts"]["query_result"])
    assert diff["ok"], diff["problems"]
    assert {t["table"]: t["verdict"] for t in diff["tables"]}["Prices 2026"] == "live grew since backup"
    assert not A.compare_row_counts(live_counts, results["restored counts"]["query_result"], strict=True)["ok"]


# --------------------------------------------------------------------------------------------------
# the role's set_fact templates, with registered results as the modules return them
# --------------------------------------------------------------------------------------------------

def _role_task(filename, name):
    tasks = yaml.safe_load((REPO / "roles" / "verify" / "tasks" / filename).read_text())
    task = next(t for t in tasks if t["name"] == name)
    task.pop("no_log", None)  # the callback would censor the facts this test reads (the token is fake)
    return task


SIMULATED_REGISTERS = {
    "pi_cluster_kubeconfig": "/etc/rancher/k3s/k3s.yaml",
    "verify_airflow_api_port": 8080,
    "verify_airflow_db_host": "",
    "verify_airflow_db_namespace": "airflow",
    "verify_airflow_db_service": "airflow-postgresql",
    "verify_databases_namespace": "databases",
    "verify_appdb_service": "postgresql-primary",
    "verify_config_dag_id": "historical_load_equities",
    "verify_indicators_dag_id": "calculate_indicators",
    "verify_api_service": {"resources": [{"spec": {"clusterIP": "10.43.88.12"}}]},
    "verify_metadata_db_service": {"resources": [{"spec": {"clusterIP": "10.43.12.7"}}]},
    "verify_appdb_service_info": {"resources": []},
    "verify_dag_status_result": {"changed": False, "failed": False, "msg": "Airflow DAG check failed",
                                 "missing": ["x"]},
    "verify_dag_config_result": {"changed": False, "skipped": True},
    "verify_api_token": {"status": 201, "json": {"access_token": "eyJ.fake.token"}},
    "verify_unpause_all": {"results": [
        {"item": "historical_load_equities", "status": 200, "json": {"is_paused": False}},
        {"item": "calculate_indicators", "status": 200, "json": {"is_paused": False}}]},
    "verify_trigger_post": {"status": 200, "json": {"dag_run_id": "manual__2026-11-23T09:21:12+00:00"}},
    "verify_trigger_run": {"status": 200, "json": {"state": "success", "start_date": "2026-11-23T09:21:13Z"}},
    "verify_indicators_runs": {"status": 200, "json": {"dag_runs": [
        {"run_after": "2026-11-23T09:40:02Z", "state": "success"},
        {"run_after": "2026-11-22T09:40:02Z", "state": "failed"}]}},
    "verify_dag_runs_result": {"results": [
        {"item": "historical_load_equities", "status": 200, "json": {"dag_runs": [], "total_entries": 0},
         "invocation": {"module_args": {"headers": {"Authorization": "Bearer eyJ.fake.token"}}}},
        {"item": "calculate_indicators", "status": 404, "json": {"detail": "not found"}}]},
    "verify_kubeconfig_stat": {"stat": {"exists": True}},
    "verify_api_probe": {"failed": False, "resources": [], "msg": "Failed to get client due to\nHTTPSConnectionPool"},
    "pi_cluster_lab": False,
}


def test_role_set_fact_templates(tmp_path):
    tasks = [
        _role_task("api.yml", "Record whether the Kubernetes API answered"),
        _role_task("dags.yml", "Remember the addresses"),
        _role_task("dags.yml", "Record the DAG status"),
        _role_task("dags.yml", "Record the dag_configuration rows"),
        _role_task("dags.yml", "Remember the API token"),
        _role_task("trigger.yml", "Record the unpause result"),
        _role_task("trigger.yml", "Record the trigger result"),
        _role_task("runs.yml", "Record the DAG runs"),
    ]
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                        "vars": dict(SIMULATED_REGISTERS, ansible_python_interpreter=sys.executable),
                                        "tasks": tasks}])
    facts = {}
    for name, result in results.items():
        assert not result.get("failed"), (name, result.get("msg"))
        facts.update(result.get("ansible_facts", {}))
    assert facts["verify_api"] == {"available": False, "reason": "API did not answer: Failed to get client due to "
                                                                 "HTTPSConnectionPool"}
    assert facts["verify_api_url"] == "http://10.43.88.12:8080"
    assert facts["verify_metadata_db_address"] == "10.43.12.7"
    assert facts["verify_appdb_address"] == ""
    assert facts["verify_dag_status"]["missing"] == ["x"]
    assert facts["verify_dag_config"] == {"skipped": True, "skip_reason": "Service databases/postgresql-primary of "
                                                                          "the application database not found"}
    assert facts["verify_api_bearer"] == "eyJ.fake.token"
    assert facts["verify_trigger_state"] == {"requested": True, "unpause_status": 200, "trigger_status": 200,
                                             "dag_run_id": "manual__2026-11-23T09:21:12+00:00",
                                             "final_state": "success", "indicators_state": "success",
                                             "unpaused_failed": [], "error": None}
    # only the JSON bodies go on (the registered results carry the token)
    assert facts["verify_dag_runs"] == {"historical_load_equities": {"dag_runs": [], "total_entries": 0},
                                        "calculate_indicators": {"detail": "not found"}}
    report = A.assess({"api": {"available": True}, "dag_status": facts["verify_dag_status"],
                       "dag_runs": facts["verify_dag_runs"], "trigger": facts["verify_trigger_state"]},
                      dict(ASSESSMENT_NAMES, now="2026-11-23T10:15:00Z"))
    assert {f["id"]: f["status"] for f in report["findings"]}["dags.indicators_after_load"] == "skipped"


def _play_tasks(path):
    play = yaml.safe_load((REPO / path).read_text())[0]
    flat = []
    for task in play["tasks"]:
        flat.append(task)
        flat.extend(task.get("block", []))
        flat.extend(task.get("always", []))
    return play, {t["name"]: t for t in flat}


def test_repair_dags_prints_the_plan(tmp_path):
    play, tasks = _play_tasks("playbooks/repair-dags.yml")
    state = _state_vars("broken")
    helm_values = json.loads((STATES / "broken" / "ansible.json").read_text())["helm_values"]
    plan_task = {"name": "plan", "register": "verify_repair_plan", "stratdata.pi_cluster.airflow_repair_plan": {
        "pods": state["pods"], "events": state["events"], "pvcs": state["pvcs"], "pvs": state["pvs"],
        "helm_values": helm_values, **REPAIR_NAMES, "dags_mode": "git_sync", "now": state["captured_at"]}}
    play_vars = dict(CONTRACT, **play["vars"], ansible_python_interpreter=sys.executable)
    steps = [plan_task, tasks["Show the plan"], tasks["Stop when the plan is blocked"]]
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False, "vars": play_vars,
                                        "tasks": steps}])
    shown = results["Show the plan"]["msg"]
    assert shown[0] == "repair-dags DRY RUN (pass -e repair_apply=true to act):"
    assert "  dags.persistence.enabled: true -> false" in shown
    assert results["Stop when the plan is blocked"].get("skipped")
