"""Role tasks of issue 12 run through the real ansible-playbook on localhost.

- Longhorn: every host of group longhorn_nodes must be a node of the cluster (roles/longhorn/tasks/check_nodes.yml),
  fed the recorded `kubectl get nodes -o json` of tests/data/recorded/nodes.json (STAND-IN for the API).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONTRACT, REPO, localhost_recap, run_playbook

RECORDED = REPO / "tests" / "data" / "recorded"
pytestmark = [pytest.mark.ansible]

WORKERS = ["pi-worker-0%d" % i for i in range(2, 8)]


def inventory(tmp_path, longhorn_nodes):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local"}},
        "children": {"longhorn_nodes": {"hosts": {name: None for name in longhorn_nodes}}},
    }}))
    return path


def check_nodes_play(tmp_path, nodes):
    nodes_file = tmp_path / "nodes.json"
    nodes_file.write_text(json.dumps(nodes))
    play = tmp_path / "check_nodes.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Longhorn node check on recorded nodes",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "Check the nodes", "ansible.builtin.include_role": {
            "name": "longhorn", "tasks_from": "check_nodes"},
            "vars": {"longhorn_cluster_nodes": {
                "resources": "{{ (lookup('file', '%s') | from_json)['items'] }}" % nodes_file}}}],
    }]))
    return play


def test_longhorn_nodes_all_present(tmp_path):
    nodes = json.loads((RECORDED / "nodes.json").read_text())
    proc = run_playbook(inventory(tmp_path, WORKERS), check_nodes_play(tmp_path, nodes))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert localhost_recap(proc.stdout)["failed"] == 0


def test_longhorn_missing_node_is_an_error_naming_it(tmp_path):
    nodes = json.loads((RECORDED / "nodes.json").read_text())
    # A node name drifted: the host pi-worker-07 joined as "raspberrypi".
    for item in nodes["items"]:
        if item["metadata"]["name"] == "pi-worker-07":
            item["metadata"]["name"] = "raspberrypi"
    proc = run_playbook(inventory(tmp_path, WORKERS), check_nodes_play(tmp_path, nodes))
    assert proc.returncode != 0
    assert "but pi-worker-07 is not a node of the cluster" in proc.stdout, proc.stdout[-3000:]
    assert "raspberrypi" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_longhorn_tasks_have_no_local_path_patch():
    main = yaml.safe_load((REPO / "roles" / "longhorn" / "tasks" / "main.yml").read_text())
    assert not [t for t in main if "local-path" in json.dumps(t)]
    assert not list(Path(REPO / "roles" / "longhorn" / "templates").glob("*local-path*"))


# -- restore_drill: choosing the backup and the Restore it creates (recorded Velero Backups) ----------------

def run_json_play(tmp_path, play):
    """A generated play on localhost with the json callback; the task results by task name."""
    import subprocess
    import uuid

    from conftest import ansible_env

    path = tmp_path / ("play-%s.json" % uuid.uuid4().hex[:8])
    path.write_text(json.dumps(play))
    proc = subprocess.run([str(Path(__import__("sys").executable).parent / "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", str(path)], cwd=str(REPO), capture_output=True, text=True, timeout=600,
                          env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                                          ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
                                          ANSIBLE_LOCALHOST_WARNING=0, ANSIBLE_INVENTORY_UNPARSED_WARNING=0))
    try:
        out = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("no JSON (rc=%d)\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                          proc.stderr[-3000:])) from exc
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]}


def drill_tasks():
    tasks = yaml.safe_load((REPO / "roles" / "restore_drill" / "tasks" / "main.yml").read_text())
    flat = []
    for task in tasks:
        flat.append(task)
        flat.extend(task.get("block", []) + task.get("always", []))
    return {t["name"]: t for t in flat}


def drill_vars(backups):
    import sys

    defaults = yaml.safe_load((REPO / "roles" / "restore_drill" / "defaults" / "main.yml").read_text())
    defaults.pop("restore_drill_appdb_password")
    return dict(CONTRACT, **defaults, ansible_python_interpreter=sys.executable,
                restore_drill_backups={"resources": backups})


STATES = REPO / "tests" / "data" / "cluster_states"


def test_restore_drill_chooses_the_newest_completed_backup_and_maps_the_namespace(tmp_path):
    tasks = drill_tasks()
    backups = json.loads((STATES / "healthy" / "backups.json").read_text())["items"]
    restore = next(t for t in tasks.values() if "kubernetes.core.k8s" in t and t["kubernetes.core.k8s"].get(
        "definition", {}).get("kind") == "Restore")
    steps = [tasks["Name the scratch namespace"], tasks["Choose the backup"],
             tasks["Check that there is a Completed backup of the namespace"], tasks["Say what is restored"],
             {"name": "render the Restore", "ansible.builtin.set_fact": {
                 "restore_definition": restore["kubernetes.core.k8s"]["definition"]}}]
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                        "vars": drill_vars(backups), "tasks": steps}])
    for name, result in results.items():
        assert not result.get("failed"), (name, result.get("msg"))
    namespace = results["Name the scratch namespace"]["ansible_facts"]["restore_drill_namespace"]
    assert namespace.startswith("restore-drill-") and len(namespace) <= 63
    name = results["Choose the backup"]["ansible_facts"]["restore_drill_backup"]["metadata"]["name"]
    assert name == "velero-daily-20261123020000"
    assert "then its dump /bitnami/postgresql/velero-dumps/appdb.dump into the scratch database restore_drill" in \
        results["Say what is restored"]["msg"]
    definition = results["render the Restore"]["ansible_facts"]["restore_definition"]
    assert definition["spec"] == {"backupName": name, "includedNamespaces": ["databases"],
                                  "namespaceMapping": {"databases": namespace}, "restorePVs": True,
                                  "existingResourcePolicy": "none"}


def test_restore_drill_without_a_completed_backup_stops(tmp_path):
    tasks = drill_tasks()
    backups = json.loads((STATES / "broken" / "backups.json").read_text())["items"]  # all PartiallyFailed
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False, "vars": drill_vars(backups),
                                        "tasks": [tasks["Choose the backup"],
                                                  tasks["Check that there is a Completed backup of the namespace"]]}])
    check = results["Check that there is a Completed backup of the namespace"]
    assert check["failed"]
    assert "No Completed Velero backup that includes namespace databases in velero (3 backup(s) found)" in \
        " ".join(check["msg"].split())


def test_restore_drill_module_task_passes_no_secret_on_a_command_line():
    task = drill_tasks()["Restore the dump into a scratch database and compare it with the live database"]
    assert task["no_log"] is True
    command = task["vars"]["restore_drill_in_pod_command"]
    # the password comes from the pod's own environment, never from a variable on the command line
    assert "vault_" not in command and "restore_drill_appdb_password" not in command
    assert "exec pg_restore" in command


# -- velero: the first backup from the daily schedule (recorded Schedule and Backups) -------------------------

def first_backup_tasks():
    return {t["name"]: t for t in yaml.safe_load(
        (REPO / "roles" / "velero" / "tasks" / "first_backup.yml").read_text())}


def first_backup_vars(backups):
    import sys

    defaults = yaml.safe_load((REPO / "roles" / "velero" / "defaults" / "main.yml").read_text())
    schedules = json.loads((RECORDED / "schedules.json").read_text())["items"]
    daily = [s for s in schedules if s["metadata"]["name"] == "velero-daily"]
    return dict(CONTRACT, **defaults, ansible_python_interpreter=sys.executable,
                velero_first_schedule={"resources": daily},
                velero_first_backups={"resources": backups})


def test_first_backup_is_taken_from_the_daily_schedule_like_velero_from_schedule(tmp_path):
    tasks = first_backup_tasks()
    create = tasks["Take the first backup from the schedule (velero backup create --from-schedule)"]
    steps = [{"name": "render the Backup", "ansible.builtin.set_fact": {
        "first_backup_definition": create["kubernetes.core.k8s"]["definition"]}, "when": create["when"]}]
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                        "vars": first_backup_vars([]), "tasks": steps}])
    backup = results["render the Backup"]["ansible_facts"]["first_backup_definition"]
    schedule = json.loads((RECORDED / "schedules.json").read_text())["items"][0]
    assert backup["kind"] == "Backup" and backup["metadata"]["namespace"] == "velero"
    assert backup["metadata"]["name"].startswith("velero-daily-") and len(backup["metadata"]["name"]) == 27
    assert backup["metadata"]["labels"] == {"velero.io/schedule-name": "velero-daily"}
    assert backup["spec"] == schedule["spec"]["template"]
    assert backup["spec"]["includedNamespaces"] == ["airflow", "databases"]


def test_first_backup_is_not_taken_twice(tmp_path):
    tasks = first_backup_tasks()
    existing = json.loads((RECORDED / "first-backup-completed.json").read_text())["items"]
    create = dict(tasks["Take the first backup from the schedule (velero backup create --from-schedule)"])
    steps = [{"name": "would create", "ansible.builtin.debug": {"msg": "created"}, "when": create["when"]},
             tasks["Name the backup to wait for"], tasks["Say which backup day one gets"]]
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                        "vars": dict(first_backup_vars(existing), velero_first_created={
                                            "skipped": True, "changed": False}), "tasks": steps}])
    assert results["would create"].get("skipped")
    assert results["Say which backup day one gets"]["msg"] == (
        "a backup from schedule velero-daily exists (velero-daily-20261202100211): no new one")


@pytest.mark.parametrize("recorded, words", [
    ("first-backup-completed.json", None),
    ("first-backup-hook-failed.json", ["velero-daily-20261202100211", "phase PartiallyFailed",
                                       "hooks attempted 2 / failed 1",
                                       "velero backup logs velero-daily-20261202100211"]),
])
def test_first_backup_check(tmp_path, recorded, words):
    tasks = first_backup_tasks()
    backups = json.loads((RECORDED / recorded).read_text())["items"]
    play_vars = dict(first_backup_vars(backups), velero_first_backup={"resources": backups},
                     velero_first_backup_name=backups[0]["metadata"]["name"])
    check = tasks["Check the backup (Completed, its namespaces, the dump hooks)"]
    results = run_json_play(tmp_path, [{"hosts": "localhost", "gather_facts": False, "vars": play_vars,
                                        "tasks": [check]}])
    result = results[check["name"]]
    if words is None:
        assert not result.get("failed"), result.get("msg")
    else:
        assert result["failed"]
        message = " ".join(result["msg"].split())
        for word in words:
            assert word in message, message


# -- preflight says which TLS source is in use --------------------------------------------------------------

@pytest.mark.parametrize("group_vars, words", [
    ({}, "TLS source: cluster_ca — cert-manager issues airflow-tls from the self-signed cluster CA "
         "(ClusterIssuer pi-cluster-ca)"),
    ({"pi_cluster_tls_source": "acme", "pi_cluster_tls_cluster_issuer": "letsencrypt",
      "cert_manager_acme_email": "ops@example.invalid"}, "TLS source: acme — cert-manager issues airflow-tls"),
    ({"pi_cluster_tls_source": "secret"}, "TLS source: secret — you provide the Secret airflow-tls"),
], ids=["cluster_ca", "acme", "secret"])
def test_preflight_says_which_tls_source(tmp_path, group_vars, words):
    sys.path.insert(0, str(REPO / "tests" / "integration" / "roles"))
    from test_preflight import make_inventory, run_site

    result = run_site(make_inventory(tmp_path, group_vars=group_vars), playbook="playbooks/preflight.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert words in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize("group_vars, words", [
    ({"pi_cluster_tls_source": "acme"}, "acme (cert-manager with an ACME server: set cert_manager_acme_email)"),
    # caught by preflight's check of role options against the roles' argument specs (cert_manager's choices)
    ({"pi_cluster_tls_source": "letsencrypt"},
     "value of pi_cluster_tls_source must be one of: cluster_ca, acme, secret, got: letsencrypt (role cert_manager)"),
], ids=["acme-without-email", "unknown"])
def test_preflight_refuses_a_bad_tls_source_before_any_host(tmp_path, group_vars, words):
    sys.path.insert(0, str(REPO / "tests" / "integration" / "roles"))
    from test_preflight import make_inventory, run_site

    result = run_site(make_inventory(tmp_path, group_vars=group_vars))
    assert result.returncode != 0
    assert words in " ".join(result.stdout.split()), result.stdout[-3000:]
    plays = [line for line in result.stdout.splitlines() if line.startswith("PLAY [")]
    assert len(plays) == 1 and plays[0].startswith("PLAY [Preflight"), plays
