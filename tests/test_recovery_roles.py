"""Role tasks of issue 12 run through the real ansible-playbook on localhost.

- Longhorn: every host of group longhorn_nodes must be a node of the cluster (roles/longhorn/tasks/check_nodes.yml),
  fed the recorded `kubectl get nodes -o json` of tests/data/recorded/nodes.json (STAND-IN for the API).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import REPO, localhost_recap, run_playbook

RECORDED = REPO / "tests" / "data" / "recorded"
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
