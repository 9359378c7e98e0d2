"""The real verify play, end to end, on recorded snapshots (`playbooks/verify.yml -e verify_snapshot=DIR`).

tests/data/snapshots/<name>/ is what playbooks/snapshot.yml writes (built once by build.py there from the
recorded cluster states): broken (the original assessment), healthy, day-one (fresh install, first backup
Completed, UI certificate from the cluster CA) and day-one-failed-backup. The play runs through the real
ansible-playbook with the repository's inventory; nothing connects to a host (the inventory's hosts do not
resolve here, so a task that tried would fail the run). Expectations are hand-written from the recorded
objects, not taken from the implementation.
"""

import base64
import json
import re
import shutil
import sys

import pytest
import yaml
from conftest import ASSESSMENT_NAMES, REPO, ansible_env, run_ansible

# Every test here runs ansible-playbook: not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

from ansible_collections.stratdata.pi_cluster.plugins.module_utils import assessment as A  # noqa: E402

SNAPSHOTS = REPO / "tests" / "data" / "snapshots"
LAB_VAULT = REPO / "lab" / "vault-password.txt"
# openssl x509 -fingerprint -sha256 of the CA certificate build.py made (printed by build.py)
CA_FINGERPRINT = ("6D:2D:58:2C:E0:31:52:7E:0A:11:4A:39:31:A5:4C:3F:A2:ED:15:7B:12:72:32:C8:5D:E6:76:14:AB:EE:B6:"
                  "67")


def verify(snapshot, reports):
    env = ansible_env(ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_LOCALHOST_WARNING="0")
    proc = run_ansible(["ansible-playbook", "playbooks/verify.yml", "--vault-password-file", str(LAB_VAULT),
                        "-e", "verify_snapshot=%s" % snapshot, "-e", "verify_report_dir=%s" % reports], env=env)
    files = sorted(reports.glob("assessment-*")) if reports.exists() else []
    assert [f.suffix for f in files] == [".json", ".md"], proc.stdout[-6000:]
    return proc, json.loads(files[0].read_text()), files[1].read_text()


def statuses(report):
    return {f["id"]: f["status"] for f in report["findings"]}


def finding(report, fid):
    return next(f for f in report["findings"] if f["id"] == fid)


def test_broken_snapshot_names_the_two_critical_issues(tmp_path):
    proc, report, markdown = verify(SNAPSHOTS / "broken", tmp_path / "reports")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "Cluster assessment is CRITICAL (2)" in proc.stdout
    assert report["generated_at"] == "2026-11-20T09:42:17Z"
    assert report["overall_status"] == "critical"
    assert report["critical_ids"] == ["dags.volume", "dags.serialized"]
    volume = finding(report, "dags.volume")
    assert volume["title"] == ("DAG volume airflow/airflow-dags is ReadWriteOnce: Multi-Attach blocks "
                               "airflow-scheduler-0, airflow-dag-processor-7c9f8d6b5-x2kqp")
    assert ('event FailedAttachVolume on pod airflow/airflow-scheduler-0 (x25, last 2026-11-20T09:41:12Z): '
            'Multi-Attach error for volume "pvc-3f6c2a1e-8b7d-4e2f-9a51-0c4d7e9b2a16", already used by '
            'airflow-triggerer-0') in volume["evidence"]
    assert ("blocked pod airflow-scheduler-0 on pi-worker-03: Init:0/1 (wait-for-airflow-migrations: "
            "PodInitializing) for 51m") in volume["evidence"]
    serialized = finding(report, "dags.serialized")
    assert serialized["title"] == "No DAGs serialized: none of the 2 expected DAGs is in serialized_dag or the API"
    assert serialized["root_cause"].startswith("The dag-processor is not running (airflow-dag-processor-7c9f8d6b5-"
                                               "x2kqp on pi-worker-03: Init:0/1")
    # nothing else is critical; what the snapshot lacks is said, not guessed
    assert statuses(report) == {
        "cluster.api": "ok", "dags.volume": "critical", "storage.multi_attach": "ok",
        "storage.rwo_shared_nodes": "ok", "storage.pvc_unbound": "ok", "pods.stuck_init": "ok",
        "pods.not_ready": "ok", "components.missing": "ok", "dags.serialized": "critical",
        "dags.trigger": "skipped", "dags.config_resources": "skipped", "dags.indicators_after_load": "skipped",
        "velero.backup": "warn", "ui.ingress": "ok", "ingress.tls": "ok", "alerts.firing": "skipped",
        "snapshot.collection": "warn"}
    assert report["not_collected"] == ["certificates", "clusterissuers", "issuers"]
    assert report["source"] == "snapshot %s" % (SNAPSHOTS / "broken")
    assert "- Source: snapshot %s (taken 2026-11-20T09:42:17Z)" % (SNAPSHOTS / "broken") in markdown
    assert "## Alerts firing now\n\n\u23ed\ufe0f not collected: no Service monitoring/monitoring-alertmanager " \
           "(monitoring layer not installed)\n" in markdown
    assert ("### 1. DAG volume airflow/airflow-dags is ReadWriteOnce: Multi-Attach blocks airflow-scheduler-0"
            in markdown)
    assert "### 2. No DAGs serialized: none of the 2 expected DAGs" in markdown
    assert "### 3." not in markdown.split("## Warnings")[0]
    assert "| scheduler | \u274c | airflow-scheduler-0 on pi-worker-03: Init:0/1" in markdown


def test_healthy_snapshot_is_all_green(tmp_path):
    proc, report, markdown = verify(SNAPSHOTS / "healthy", tmp_path / "reports")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["overall_status"] == "ok"
    assert report["summary"] == "Every check passed."
    assert set(statuses(report).values()) == {"ok"}
    assert len(report["findings"]) == 17
    assert [row["status"] for row in report["components"]] == ["ok"] * 6
    assert all(item["passed"] for item in report["checklist"])
    assert "**Overall status: \u2705 OK**" in markdown
    assert "\u274c" not in markdown and "\u26a0" not in markdown and "\u23ed" not in markdown
    assert "## Alerts firing now\n\n\u2705 None (Alertmanager answered" in markdown
    tls = finding(report, "ingress.tls")
    assert tls["title"] == ("UI certificate on airflow.stratdata.org issued by the cluster CA (ClusterIssuer "
                            "pi-cluster-ca)")
    assert "CA certificate SHA-256 fingerprint %s" % CA_FINGERPRINT in tls["evidence"]
    assert report["alerts"][0]["alertname"] == "Watchdog"


def test_day_one_passes(tmp_path):
    proc, report, markdown = verify(SNAPSHOTS / "day-one", tmp_path / "reports")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["overall_status"] == "warn"
    assert report["critical_ids"] == []
    velero = finding(report, "velero.backup")
    assert velero["status"] == "ok"
    assert velero["evidence"] == [
        "airflow, databases: newest finished velero/velero-daily-20261123095012: Completed 2026-11-23T09:53:40Z "
        "(26m ago), namespaces airflow, databases; PVCs included; file-system backup of every volume "
        "(defaultVolumesToFsBackup)"]
    tls = finding(report, "ingress.tls")
    assert tls["status"] == "ok" and tls["ca_fingerprint"] == CA_FINGERPRINT
    assert "CA certificate SHA-256 fingerprint %s" % CA_FINGERPRINT in markdown
    # the only warning of a fresh install: the historical load has not run yet
    assert [f["id"] for f in report["findings"] if f["status"] == "warn"] == ["dags.indicators_after_load"]
    assert finding(report, "dags.indicators_after_load")["title"] == "historical_load_equities has not completed yet"


def test_day_one_with_a_failed_first_backup_names_it(tmp_path):
    proc, report, markdown = verify(SNAPSHOTS / "day-one-failed-backup", tmp_path / "reports")
    assert proc.returncode == 2
    assert report["critical_ids"] == ["velero.backup", "alerts.firing"]
    velero = finding(report, "velero.backup")
    assert velero["title"] == ("Velero backup velero/velero-daily-20261123095012 Failed: nothing to restore "
                               "airflow, databases from")
    assert "dial tcp 10.43.7.19:9000: connect: connection refused" in velero["root_cause"]
    alerts = finding(report, "alerts.firing")
    assert alerts["title"] == "Alerts firing: VeleroBackupFailed"
    assert alerts["evidence"] == ["VeleroBackupFailed [critical] since 2026-11-23T09:51:00Z (velero): Velero backup "
                                  "velero-daily-20261123095012 failed"]
    assert ("| VeleroBackupFailed | \u274c critical | 2026-11-23T09:51:00Z | Velero backup "
            "velero-daily-20261123095012 failed | velero backup logs <name>; ansible-playbook site.yml --tags backup |"
            ) in markdown
    assert "Velero backup velero/velero-daily-20261123095012 Failed" in proc.stdout


def test_a_snapshot_without_some_files_reports_them_not_collected(tmp_path):
    snapshot = tmp_path / "partial"
    shutil.copytree(SNAPSHOTS / "healthy", snapshot)
    for name in ("backups", "secrets", "alerts", "pods"):
        (snapshot / (name + ".json")).unlink()
    proc, report, markdown = verify(snapshot, tmp_path / "reports")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["not_collected"] == ["alerts", "backups", "pods", "secrets"]
    for fid in ("velero.backup", "ingress.tls", "alerts.firing", "pods.stuck_init", "components.missing"):
        item = finding(report, fid)
        assert item["status"] == "skipped" and item["evidence"][0].startswith("not collected: "), item
    assert finding(report, "velero.backup")["evidence"] == ["not collected: backups.json absent from the snapshot"]
    assert {row["status"] for row in report["components"]} == {"skipped"}
    assert "- [ ] \u23ed\ufe0f Newest Velero backup Completed" in markdown


def test_verify_refuses_a_folder_that_is_not_a_snapshot(tmp_path):
    proc = run_ansible(["ansible-playbook", "playbooks/verify.yml", "--vault-password-file", str(LAB_VAULT),
                        "-e", "verify_snapshot=%s" % tmp_path], env=ansible_env())
    assert proc.returncode == 2
    assert "is not a snapshot folder (no snapshot-info.json in it)" in proc.stdout
    assert "Traceback" not in proc.stdout


# --------------------------------------------------------------------------------------------------
# the collection list covers what the classifier reads
# --------------------------------------------------------------------------------------------------

def _collection_names():
    defaults = yaml.safe_load((REPO / "roles" / "verify" / "defaults" / "main.yml").read_text())
    return {r["name"] for r in defaults["verify_snapshot_resources"]} | set(defaults["verify_snapshot_results"])


def test_snapshot_collects_every_resource_the_classifier_reads():
    collected = _collection_names()
    # 1. statically: every state key the assessment code reads
    source = "".join(p.read_text() for p in sorted((REPO / "plugins" / "module_utils" / "assessment").glob("*.py")))
    # objects(state.get("pods")) in the context, ctx.state.get("ui") in the checks
    read = set(re.findall(r'objects\((?:ctx\.)?state\.get\("([a-z_]+)"\)\)', source))
    read |= set(re.findall(r'ctx\.state\.get\("([a-z_]+)"\)', source))
    read |= set(re.findall(r'normalize_dag_status\(state\.get\("([a-z_]+)"\)', source))
    assert "dag_status" in read
    assert read >= {"pods", "events", "pvcs", "backups", "secrets", "alerts"}  # the pattern still finds them
    assert read - {"api"} <= collected, sorted(read - collected)
    # 2. by behaviour: every input whose removal changes the report of a recorded snapshot is collected
    for name in ("broken", "healthy", "day-one-failed-backup"):
        files = {p.stem: json.loads(p.read_text()) for p in (SNAPSHOTS / name).glob("*.json")}
        now = files.pop("snapshot-info")["captured_at"]
        full = A.assess(dict(files), dict(ASSESSMENT_NAMES, now=now))
        for key in files:
            reduced = A.assess({k: v for k, v in files.items() if k != key}, dict(ASSESSMENT_NAMES, now=now))
            if reduced["findings"] != full["findings"] or reduced["components"] != full["components"]:
                assert key in collected, (name, key)


def test_the_snapshot_files_are_kubectl_lists_without_secret_data():
    for directory in sorted(p for p in SNAPSHOTS.iterdir() if p.is_dir()):
        info = json.loads((directory / "snapshot-info.json").read_text())
        for resource in info["resources"]:
            path = directory / (resource["name"] + ".json")
            if not path.exists():
                assert resource.get("optional"), path
                continue
            data = json.loads(path.read_text())
            assert data["apiVersion"] == "v1" and data["kind"] == "List", path
            for item in data["items"]:
                assert item["kind"] == resource["kind"] and item["apiVersion"] == resource["api_version"], path
                assert "data" not in item and "stringData" not in item, path
    secrets = json.loads((SNAPSHOTS / "healthy" / "secrets.json").read_text())["items"]
    assert sorted("%s/%s" % (s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets) == [
        "airflow/airflow-api-secret-key", "airflow/airflow-fernet-key", "airflow/airflow-metadata",
        "airflow/airflow-postgresql", "airflow/airflow-tls", "cert-manager/pi-cluster-ca", "databases/postgresql",
        "velero/velero-credentials"]


def test_ui_check_takes_the_ca_certificate_of_the_cluster_issuer(tmp_path):
    """ui.yml's template: the public certificate of the CA issuer's Secret (ca.crt, else tls.crt), or nothing."""
    tasks = yaml.safe_load((REPO / "roles" / "verify" / "tasks" / "ui.yml").read_text())
    keep = next(t for t in tasks if t["name"] == "Keep the CA certificate (public)")
    pem = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
    cases = {
        "ca.crt": {"resources": [{"data": {"ca.crt": base64.b64encode(pem.encode()).decode(), "tls.key": "eA=="}}]},
        "tls.crt": {"resources": [{"data": {"tls.crt": base64.b64encode(pem.encode()).decode()}}]},
        "none": {"skipped": True},
    }
    for label, register in cases.items():
        play = [{"hosts": "localhost", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable, "verify_ui_ca_secret": register},
                 "tasks": [dict(keep, register="kept")]}]
        path = tmp_path / ("play-%s.yml" % label.replace(".", "-"))
        path.write_text(yaml.safe_dump(play))
        proc = run_ansible(["ansible-playbook", "-i", "localhost,", "-c", "local", str(path)],
                           env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
        assert proc.returncode == 0, proc.stdout[-3000:]
        out, _end = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
        kept = out["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]["verify_ui_ca_pem"]
        assert kept.strip() == ("" if label == "none" else pem.strip()), label
