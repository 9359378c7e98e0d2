# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring layer, offline and with real Prometheus tools (Debian packages prometheus,
prometheus-alertmanager, prometheus-postgres-exporter; scripts/system-packages.txt).

One `make render` (scripts/render.sh, the roles' own tasks/render.yml, TEST vault) for the module, then:
- `promtool check rules` on the rendered rules and on the rendered PrometheusRule's groups (the same data);
- `promtool test rules` (tests/data/monitoring/rules.test.yml) next to the rendered rules file: every
  alert fires in at least one case and stays silent in at least one, the assessment's state included;
- ServiceMonitors against the Services of the Airflow, Velero, Longhorn and postgres-exporter charts
  (recorded facts, tests/data/monitoring/chart-services.yml) and the rendered values that enable them;
- plain manifests against the Kubernetes 1.33 schemas, values keys against the pinned charts;
- `amtool check-config` on the Alertmanager configuration, with and without receivers;
- a real Prometheus scraping a real postgres exporter in front of the tests' real PostgreSQL 15,
  evaluating the rendered PostgresConnectionsHigh rule: a connection flood fires it (loopback only).
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg2
import pytest
import yaml
from conftest import CLUSTER_CONTRACT_FILE, CONTRACT, REPO

from fixtures.postgres import free_port

VENV_BIN = Path(sys.executable).parent
DATA = REPO / "tests" / "data" / "monitoring"
CHART_KEYS = REPO / "tests" / "data" / "chart_keys"
TEST_VAULT = REPO / "tests" / "data" / "test-vault.yml"
ROLE = REPO / "roles" / "monitoring"
# every test renders through ansible-playbook (make render) or runs it
pytestmark = pytest.mark.ansible

# The alerts issue 13 asks for (one or two rules each).
ISSUE_ALERTS = {
    "scheduler heartbeat stale": {"AirflowSchedulerHeartbeatStale"},
    "dag-processor import errors": {"AirflowDagImportErrors"},
    "no DAG parsed / fewer than three": {"AirflowDagsMissing"},
    "task failures": {"AirflowTaskFailures"},
    "pod Pending or stuck in Init > 10 min": {"KubePodPending", "KubePodStuckInInit"},
    "FailedAttachVolume / Multi-Attach": {"KubeVolumeAttachFailing"},
    "PVC Pending": {"KubePersistentVolumeClaimPending"},
    "Velero backup too old / failed / partially failed": {"VeleroBackupTooOld", "VeleroBackupFailed",
                                                          "VeleroBackupPartiallyFailed"},
    "Longhorn volume degraded / faulted": {"LonghornVolumeDegraded", "LonghornVolumeFaulted"},
    "node NotReady": {"KubeNodeNotReady"},
    "PostgreSQL connections > 80 % of max": {"PostgresConnectionsHigh"},
    "certificate expiring < 14 days": {"CertificateExpiringSoon", "KubeClientCertificateExpiringSoon"},
    "disk (SD card) > 85 %": {"NodeDiskAlmostFull"},
}
PROJECT_REPAIRS = ("--tags", "repair-dags.yml", "restore-drill.yml", "verify.yml")


def tool(name):
    path = shutil.which(name)
    assert path, "%s missing: bash scripts/system-deps.sh installs it (scripts/system-packages.txt)" % name
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render-monitoring")
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (VENV_BIN, env.get("PATH", ""))
    env.update(RENDER_DIR=str(out), DAGS_MODE="git_sync", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "render.sh")], cwd=str(REPO), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return out


def docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def rules_file(rendered):
    return yaml.safe_load((rendered / "monitoring-rules.yml").read_text())


def all_rules(rendered):
    return [r for g in rules_file(rendered)["groups"] for r in g["rules"]]


def defaults(role):
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())


# -- rules -----------------------------------------------------------------------------------------------
def test_promtool_checks_the_rendered_rules_and_the_prometheusrule(rendered, tmp_path):
    promtool = tool("promtool")
    proc = subprocess.run([promtool, "check", "rules", str(rendered / "monitoring-rules.yml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: %d rules found" % len(all_rules(rendered)) in proc.stdout
    (rule,) = docs(rendered / "monitoring-prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    (namespace,) = docs(rendered / "monitoring-namespace.yaml")
    assert rule["metadata"]["namespace"] == namespace["metadata"]["name"]
    assert namespace["metadata"]["name"] == CONTRACT["pi_cluster_monitoring_namespace"]
    # ONE source: the PrometheusRule carries exactly the groups of the promtool-tested file
    assert rule["spec"]["groups"] == rules_file(rendered)["groups"]
    spec_file = tmp_path / "prometheusrule-spec.yml"
    spec_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    proc = subprocess.run([promtool, "check", "rules", str(spec_file)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_of_the_issue_exists_with_severity_and_a_runbook(rendered):
    rules = {r["alert"]: r for r in all_rules(rendered)}
    wanted = set().union(*ISSUE_ALERTS.values())
    assert set(rules) == wanted
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        runbook = rule["annotations"]["runbook"]
        assert "ansible-playbook" in runbook and any(r in runbook for r in PROJECT_REPAIRS), (name, runbook)
        for path in (p for p in runbook.replace(";", " ").replace(",", " ").split() if p.endswith(".yml")):
            assert (REPO / path).is_file(), (name, path)


def test_promtool_rule_tests_fire_and_stay_silent_for_every_rule(rendered):
    tests = yaml.safe_load((DATA / "rules.test.yml").read_text())
    firing, silent = {}, {}
    for group in tests["tests"]:
        for case in group["alert_rule_test"]:
            target = firing if case["exp_alerts"] else silent
            target[case["alertname"]] = target.get(case["alertname"], 0) + 1
    names = {r["alert"] for r in all_rules(rendered)}
    assert set(firing) == names, names ^ set(firing)
    assert set(silent) == names, names ^ set(silent)
    names_of_cases = " ".join(g["name"] for g in tests["tests"])
    for state in ("scheduler pod stuck in Init", "dags PVC Multi-Attach", "zero serialized DAGs"):
        assert "the assessment: " + state in names_of_cases, state
    shutil.copy(DATA / "rules.test.yml", rendered / "rules.test.yml")
    proc = subprocess.run([tool("promtool"), "test", "rules", "rules.test.yml"], cwd=str(rendered),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert "SUCCESS" in proc.stdout


def test_dashboard_queries_are_valid_promql(rendered, tmp_path):
    exprs = []
    maps = docs(rendered / "monitoring-dashboards.yaml")
    assert {m["metadata"]["name"] for m in maps} == {"pi-cluster-dashboard-airflow", "pi-cluster-dashboard-cluster"}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (body,) = cm["data"].values()
        board = json.loads(body)
        assert board["uid"].startswith("pi-cluster-") and board["panels"]
        exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
    text = " ".join(exprs)
    for metric in ("airflow_dagrun_duration", "airflow_task_duration", "airflow_ti_failures",
                   "airflow_scheduler_heartbeat", "airflow_pool_open_slots", "node_filesystem_avail_bytes",
                   "longhorn_volume_robustness", "velero_backup_last_successful_timestamp"):
        assert metric in text, metric
    rule_file = tmp_path / "dashboard-exprs.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
        {"record": "dashboard:expr_%d" % i, "expr": e} for i, e in enumerate(exprs)]}]}))
    proc = subprocess.run([tool("promtool"), "check", "rules", str(rule_file)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- what is scraped -------------------------------------------------------------------------------------
def recorded_services():
    facts = yaml.safe_load((DATA / "chart-services.yml").read_text())
    services = {}
    for key, svc in facts["services"].items():
        release = svc.get("release") or CONTRACT[svc["release_var"]]
        services[key] = dict(svc, name=svc["name"].replace("{release}", release),
                             labels={k: str(v).replace("{release}", release) for k, v in svc["labels"].items()})
    return services, facts["databases"]


def test_servicemonitors_select_the_services_of_the_charts(rendered):
    services, _ = recorded_services()
    monitors = {m["metadata"]["name"]: m for m in docs(rendered / "monitoring-servicemonitors.yaml")}
    namespaces = {key: CONTRACT[svc["namespace_var"]] for key, svc in services.items()}
    matched = set()
    for name, monitor in monitors.items():
        assert monitor["kind"] == "ServiceMonitor" and monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        (namespace,) = spec["namespaceSelector"]["matchNames"]
        selector = spec["selector"]["matchLabels"]
        hits = [key for key, svc in services.items()
                if namespaces[key] == namespace and selector.items() <= svc["labels"].items()]
        assert len(hits) == 1, (name, hits)
        svc = services[hits[0]]
        port_names = {p["name"] for p in svc["ports"] if p["protocol"] == "TCP"}
        for endpoint in spec["endpoints"]:
            assert endpoint["port"] in port_names, (name, endpoint["port"], port_names)
        matched.add(hits[0])
    assert matched == set(services)
    # the rendered values keep those Services (and their ports) as recorded
    airflow = yaml.safe_load((rendered / "airflow.values.yaml").read_text())
    assert airflow["statsd"]["enabled"] is True
    assert "statsdScrape" not in airflow.get("ports", {})
    velero = yaml.safe_load((rendered / "velero.values.yaml").read_text())
    assert velero.get("metrics", {}).get("enabled", True) is True
    for exporter in ("appdb-postgres-exporter", "airflow-postgres-exporter"):
        values = yaml.safe_load((rendered / ("%s.values.yaml" % exporter)).read_text())
        assert values["fullnameOverride"] == exporter and "service" not in values


def test_postgres_exporters_point_at_the_database_services(rendered):
    _, databases = recorded_services()
    appdb = yaml.safe_load((rendered / "appdb-postgres-exporter.values.yaml").read_text())["config"]["datasource"]
    expected = databases["appdb"]["name"].replace("{release}", CONTRACT[databases["appdb"]["release_var"]])
    assert appdb["host"] == "%s.%s.svc" % (expected, CONTRACT["pi_cluster_appdb_namespace"])
    assert appdb["port"] == str(databases["appdb"]["port"]) == str(CONTRACT["pi_cluster_appdb_port"])
    assert appdb["database"] == CONTRACT["pi_cluster_appdb_database"]
    assert appdb["user"] == CONTRACT["pi_cluster_appdb_admin_user"]
    auth_secret = defaults("app_database")["app_database_auth_secret"]
    assert appdb["passwordSecret"] == {"name": auth_secret, "key": "postgres-password"}
    # Airflow metadata database: the URI Secret of the airflow role, whose embedded host is the chart's
    # <release>-postgresql Service (the contract's pi_cluster_airflow_db_service)
    embedded = databases["airflow"]["name"].replace("{release}", CONTRACT[databases["airflow"]["release_var"]])
    assert embedded == CONTRACT["pi_cluster_airflow_db_service"]
    airflow = yaml.safe_load((rendered / "airflow-postgres-exporter.values.yaml").read_text())["config"]
    assert airflow["datasourceSecret"] == {"name": defaults("airflow")["airflow_secret_names"]["metadata"],
                                           "key": "connection"}
    af_values = yaml.safe_load((rendered / "airflow.values.yaml").read_text())
    assert af_values["data"]["metadataSecretName"] == airflow["datasourceSecret"]["name"]


def test_stack_values_bound_retention_and_select_every_monitor(rendered):
    values = yaml.safe_load((rendered / "kube-prometheus-stack.values.yaml").read_text())
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] and spec["retentionSize"]
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "longhorn"
    size_gib = float(claim["resources"]["requests"]["storage"].rstrip("Gi"))
    assert float(spec["retentionSize"].rstrip("GiB")) < size_gib
    for key in ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                "ruleSelectorNilUsesHelmValues"):
        assert spec[key] is False, key
    assert values["fullnameOverride"] == CONTRACT["pi_cluster_monitoring_release"]
    assert CONTRACT["pi_cluster_alertmanager_service"] == values["fullnameOverride"] + "-alertmanager"
    assert values["alertmanager"]["alertmanagerSpec"]["useExistingSecret"] is True
    assert values["grafana"]["admin"]["existingSecret"] == defaults("monitoring")["monitoring_grafana_admin_secret"]
    for component in (spec, values["alertmanager"]["alertmanagerSpec"], values["grafana"],
                      values["kube-state-metrics"], values["prometheus-node-exporter"], values["prometheusOperator"]):
        res = component["resources"]
        assert res["requests"]["memory"] and res["limits"]["memory"] and res["requests"]["cpu"]


@pytest.mark.parametrize("values_name, chart", [
    ("kube-prometheus-stack.values.yaml", "kube-prometheus-stack-88.5.3"),
    ("appdb-postgres-exporter.values.yaml", "prometheus-postgres-exporter-8.2.0"),
    ("airflow-postgres-exporter.values.yaml", "prometheus-postgres-exporter-8.2.0"),
])
def test_value_keys_exist_in_the_pinned_charts(rendered, values_name, chart):
    recorded = [line.strip() for line in (CHART_KEYS / ("%s.txt" % chart)).read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    exact = {k for k in recorded if not k.endswith(".*")}
    prefixes = [k[:-1] for k in recorded if k.endswith(".*")]

    def key_paths(data, prefix=()):
        if isinstance(data, dict) and data:
            for key, value in data.items():
                yield from key_paths(value, prefix + (str(key),))
        else:
            yield ".".join(prefix)

    for path in key_paths(yaml.safe_load((rendered / values_name).read_text())):
        assert path in exact or any(path.startswith(p) for p in prefixes), (values_name, path)


def test_plain_manifests_validate_and_secrets_are_redacted(rendered):
    import kubernetes_validate  # in requirements-dev.txt: a missing package must fail, not skip
    checked = 0
    for name in ("monitoring-namespace.yaml", "monitoring-dashboards.yaml", "monitoring-grafana-admin.secret.yaml",
                 "monitoring-alertmanager-config.secret.yaml"):
        for doc in docs(rendered / name):
            kubernetes_validate.validate(doc, "1.33.0", strict=True)
            checked += 1
            if doc["kind"] == "Secret":
                assert "data" not in doc and set(doc["stringData"].values()) == {"REDACTED"}
    assert checked == 5
    password = str(yaml.safe_load(TEST_VAULT.read_text())["vault_grafana_admin_password"])
    for path in rendered.iterdir():
        text = path.read_text()
        assert password not in text and base64.b64encode(password.encode()).decode() not in text, path.name


# -- Alertmanager configuration: receivers from variables, none by default -------------------------------
def render_alertmanager_secret(tmp_path, extra):
    """Render the role's Alertmanager Secret unredacted (the role's own template, real ansible)."""
    out = tmp_path / "out"
    playbook = tmp_path / "am.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars_files": [str(CLUSTER_CONTRACT_FILE)],
        "vars": {"pi_cluster_domain": "example.invalid", "vault_grafana_admin_password": "x",
                 "ansible_python_interpreter": sys.executable},
        "tasks": [{"name": "render", "ansible.builtin.include_role": {"name": "monitoring", "tasks_from": "render"},
                   "vars": dict({"monitoring_render_dir": str(out), "monitoring_render_redact": False}, **extra)}]}]))
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (VENV_BIN, env.get("PATH", ""))
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=str(REPO / "roles"))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)], cwd=str(REPO),
                          env=env, capture_output=True, text=True, timeout=600)
    return proc, out


@pytest.mark.parametrize("extra, receiver", [
    ({}, "null"),
    ({"monitoring_alert_receivers": [{"name": "ntfy", "webhook_configs": [
        {"url": "https://ntfy.example.invalid/pi-cluster-alerts", "send_resolved": True}]}]}, "ntfy"),
])
def test_alertmanager_configuration_passes_amtool(tmp_path, extra, receiver):
    proc, out = render_alertmanager_secret(tmp_path, extra)
    assert proc.returncode == 0, proc.stdout[-3000:]
    (secret,) = docs(out / "monitoring-alertmanager-config.secret.yaml")
    config_text = base64.b64decode(secret["data"]["alertmanager.yaml"]).decode()
    config = yaml.safe_load(config_text)
    assert config["route"]["receiver"] == receiver
    assert {r["name"] for r in config["receivers"]} == {"null"} | {receiver}
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(config_text)
    check = subprocess.run([tool("amtool"), "check-config", str(config_file)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_bad_receiver_settings_are_refused_before_anything_is_rendered(tmp_path):
    proc, out = render_alertmanager_secret(tmp_path, {"monitoring_alert_receivers": [{"webhook_configs": []}]})
    assert proc.returncode != 0
    assert "monitoring_alert_receivers must be a list of Alertmanager receivers" in proc.stdout
    assert "Traceback" not in proc.stdout
    assert not out.exists()


# -- a real Prometheus, a real postgres exporter, the tests' real PostgreSQL -------------------------------
class Process:
    def __init__(self, cmd, env=None, log=None):
        self.log = open(log, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback URL built by the test)
        return json.loads(resp.read().decode())


def wait_for(predicate, what, deadline_s=120):
    """Poll until predicate() is truthy; the deadline only bounds a hang (nothing is timed)."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError("%s did not happen (last: %r)" % (what, last))


def firing(prom_url, alertname):
    alerts = get_json(prom_url + "/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


@pytest.mark.postgres
def test_real_prometheus_fires_postgres_connections_high_on_a_connection_flood(rendered, postgres_server, tmp_path):
    exporter_port, prom_port = free_port(), free_port()
    # The rendered rule, unchanged except its `for` (5m on the cluster; 2s here so the test stays short).
    (rule,) = [r for r in all_rules(rendered) if r["alert"] == "PostgresConnectionsHigh"]
    rule["for"] = "2s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "pi-cluster-test", "rules": [rule]}]}))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [{"job_name": "postgres", "static_configs": [{
            "targets": ["127.0.0.1:%d" % exporter_port],
            "labels": {"namespace": "databases", "service": "appdb-postgres-exporter"}}]}]}))
    # the TEST-ONLY credentials of tests/fixtures/postgres.py, on 127.0.0.1
    dsn = "postgresql://%s:%s@127.0.0.1:%d/postgres?sslmode=disable"  # pragma: allowlist secret
    pg = postgres_server
    env = dict(os.environ, DATA_SOURCE_NAME=dsn % (pg.user, pg.password, pg.port))
    exporter = Process([tool("prometheus-postgres-exporter"), "--web.listen-address=127.0.0.1:%d" % exporter_port],
                       env=env, log=tmp_path / "exporter.log")
    prometheus = Process([tool("prometheus"), "--config.file=%s" % (tmp_path / "prometheus.yml"),
                          "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                          "--web.listen-address=127.0.0.1:%d" % prom_port], log=tmp_path / "prometheus.log")
    prom_url = "http://127.0.0.1:%d" % prom_port
    flood = []
    try:
        def ratio():
            result = get_json(prom_url + "/api/v1/query?query=" + urllib.request.quote(
                "sum(pg_stat_activity_count) / max(pg_settings_max_connections)"))["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        before = wait_for(ratio, "a first scrape of the exporter")
        assert before < 0.8
        assert not firing(prom_url, "PostgresConnectionsHigh")
        with postgres_server.admin_connection() as conn, conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            max_connections = int(cur.fetchone()[0])
        for _ in range(int(max_connections * 0.8) + 2):  # above 80 %, below the superuser reserve
            flood.append(psycopg2.connect(host=postgres_server.host, port=postgres_server.port,
                                          user=postgres_server.user, password=postgres_server.password,
                                          dbname="postgres"))
        alerts = wait_for(lambda: firing(prom_url, "PostgresConnectionsHigh"), "PostgresConnectionsHigh firing")
        assert alerts[0]["labels"]["severity"] == "warning"
        assert alerts[0]["labels"]["service"] == "appdb-postgres-exporter"
        assert float(alerts[0]["value"]) > 0.8
        assert "of max_connections" in alerts[0]["annotations"]["summary"]
        for conn in flood:
            conn.close()
        flood.clear()
        wait_for(lambda: not firing(prom_url, "PostgresConnectionsHigh"), "the alert resolving after the flood")
    finally:
        for conn in flood:
            conn.close()
        prometheus.stop()
        exporter.stop()


# -- the layer in site.yml ---------------------------------------------------------------------------------
def test_site_lists_the_monitoring_layer_after_airflow_and_before_verify():
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (VENV_BIN, env.get("PATH", ""))
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "site.yml", "--tags", "monitoring", "--list-tasks",
                           "--vault-password-file", "lab/vault-password.txt"], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plays = re.findall(r"^\s*play #\d+ \([^)]*\): (.*?)\t", proc.stdout, flags=re.M)
    names = [p.split(" |")[0] for p in plays]
    assert names.index("Airflow") < names.index("Monitoring") < names.index("Verify"), names
    chunk = proc.stdout.split("Monitoring | ", 1)[1].split("play #", 1)[0]
    for task in ("monitoring : Render the monitoring values, rules and manifests", "Deploy kube-prometheus-stack",
                 "Deploy the postgres exporters",
                 "monitoring : Apply the ServiceMonitors, the alert rules and the dashboards"):
        assert task in chunk, task
