"""The k3s rolling-upgrade decision (plugins/module_utils/k3s_version.py), with hand-written expectations."""


import pytest
from conftest import REPO


from ansible_collections.stratdata.pi_cluster.plugins.module_utils.k3s_version import (  # noqa: E402
    parse_version,
    upgrade_plan,
    version_from_output,
)

SERVERS = ["pi-master"]
AGENTS = ["pi-worker-02", "pi-worker-03", "pi-worker-04"]
ALL = SERVERS + AGENTS


def every(version):
    return {host: version for host in ALL}


def test_same_version_is_a_noop():
    plan = upgrade_plan(every("v1.33.5+k3s1"), "v1.33.5+k3s1", SERVERS, AGENTS)
    assert plan["refused"] == []
    assert plan["order"] == []
    assert {n["action"] for n in plan["nodes"]} == {"noop"}


def test_downgrade_is_refused_naming_both_versions():
    plan = upgrade_plan(every("v1.33.6+k3s1"), "v1.33.5+k3s1", SERVERS, AGENTS)
    assert plan["order"] == []
    assert len(plan["refused"]) == 4
    assert plan["refused"][0] == (
        "pi-master: runs v1.33.6+k3s1, newer than the target v1.33.5+k3s1: k3s does not support downgrades"
    )


def test_k3s_release_suffix_downgrade_is_refused():
    plan = upgrade_plan(every("v1.33.5+k3s2"), "v1.33.5+k3s1", SERVERS, AGENTS)
    assert plan["order"] == [] and len(plan["refused"]) == 4


def test_minor_skip_is_refused():
    plan = upgrade_plan(every("v1.33.5+k3s1"), "v1.35.0+k3s1", SERVERS, AGENTS)
    assert plan["order"] == []
    assert plan["refused"][1] == (
        "pi-worker-02: runs v1.33.5+k3s1; v1.35.0+k3s1 skips minor version(s) v1.34: "
        "upgrade one minor version at a time"
    )


def test_one_refused_node_stops_the_whole_rollout():
    installed = every("v1.33.5+k3s1")
    installed["pi-worker-03"] = "v1.32.9+k3s1"  # two minors behind v1.34
    plan = upgrade_plan(installed, "v1.34.1+k3s1", SERVERS, AGENTS)
    assert plan["refused"] == [
        "pi-worker-03: runs v1.32.9+k3s1; v1.34.1+k3s1 skips minor version(s) v1.33: "
        "upgrade one minor version at a time"
    ]
    assert plan["order"] == []


@pytest.mark.parametrize("target", ["v1.33.6+k3s1", "v1.34.0+k3s1"])
def test_patch_and_next_minor_are_planned_server_first(target):
    plan = upgrade_plan(every("v1.33.5+k3s1"), target, SERVERS, AGENTS)
    assert plan["refused"] == []
    assert plan["order"] == ["pi-master", "pi-worker-02", "pi-worker-03", "pi-worker-04"]
    assert [n["role"] for n in plan["nodes"]] == ["server", "agent", "agent", "agent"]
    assert {n["action"] for n in plan["nodes"]} == {"upgrade"}


def test_partly_upgraded_cluster_changes_only_the_rest():
    installed = every("v1.34.0+k3s1")
    installed["pi-worker-04"] = "v1.33.5+k3s1"  # a rollout stopped at the last agent
    plan = upgrade_plan(installed, "v1.34.0+k3s1", SERVERS, AGENTS)
    assert plan["order"] == ["pi-worker-04"]


def test_node_without_k3s_gets_an_install():
    installed = every("v1.33.5+k3s1")
    installed["pi-worker-02"] = None
    plan = upgrade_plan(installed, "v1.33.5+k3s1", SERVERS, AGENTS)
    assert plan["order"] == ["pi-worker-02"]
    assert plan["nodes"][1]["action"] == "install"


def test_version_output_and_grammar():
    assert version_from_output("k3s version v1.33.5+k3s1 (1d5ee8b4)\ngo version go1.24.6\n") == "v1.33.5+k3s1"
    assert version_from_output("") is None
    assert version_from_output("bash: k3s: command not found") is None
    assert parse_version("v1.33.5+k3s1") == (1, 33, 5, 1)
    for bad in ["1.33.5+k3s1", "v1.33.5", "v1.33.5+k3s1\n", "v1.33.5+k3s1 ", "latest"]:
        with pytest.raises(ValueError):
            parse_version(bad)


def test_limit_to_an_agent_while_the_server_is_behind_is_refused():
    plan = upgrade_plan(every("v1.33.5+k3s1"), "v1.33.6+k3s1", SERVERS, AGENTS, run_hosts=["pi-worker-03"])
    assert plan["order"] == []
    assert plan["refused"] == [
        "pi-worker-03: server(s) pi-master still run an older k3s and are not in this run: upgrade the servers first"
    ]


def test_limit_to_an_agent_after_the_servers_upgraded():
    installed = every("v1.33.5+k3s1")
    installed["pi-master"] = "v1.33.6+k3s1"
    plan = upgrade_plan(installed, "v1.33.6+k3s1", SERVERS, AGENTS, run_hosts=["pi-worker-03"])
    assert plan["refused"] == [] and plan["order"] == ["pi-worker-03"]


RESET_INVENTORY = """
all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: 1   # nothing listens: a node task that ran would show as unreachable
  children:
    k3s_cluster:
      children:
        k3s_server: {hosts: {pi-master: {}}}
        k3s_agents: {hosts: {pi-worker-05: {}, pi-worker-06: {}}}
"""


def _reset(tmp_path, *extra):
    from conftest import run_ansible

    (tmp_path / "group_vars").symlink_to(REPO / "inventory" / "group_vars")  # the real inventory's variables
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(RESET_INVENTORY)
    return run_ansible(["ansible-playbook", "-i", str(inventory), "playbooks/reset.yml", "--limit", "pi-worker-05",
                        "--vault-password-file", str(REPO / "lab" / "vault-password.txt"), *extra])


@pytest.mark.ansible
def test_reset_under_limit_without_a_terminal_is_refused_before_any_node_task(tmp_path):
    result = _reset(tmp_path)
    assert result.returncode != 0
    assert "Reset not confirmed" in result.stdout
    assert "unreachable=0" in result.stdout  # no task ever went to the node
    assert "Remove the k3s" not in result.stdout.split("Stop unless confirmed")[-1].split("PLAY RECAP")[0]


@pytest.mark.ansible
def test_reset_confirmed_goes_on_to_the_node(tmp_path):
    result = _reset(tmp_path, "-e", "confirm_reset=yes")
    assert "Reset not confirmed" not in result.stdout
    assert "pi-worker-05               : ok=" in result.stdout and "unreachable=1" in result.stdout


def _reboot_handlers():
    import yaml

    handlers = yaml.safe_load((REPO / "roles" / "base_os" / "handlers" / "main.yml").read_text())
    return [h for h in handlers if h["name"] == "Reboot the node" or h.get("listen") == "Reboot the node"]


def test_reboot_handlers_go_one_node_at_a_time_and_wait_for_ready():
    handlers = _reboot_handlers()
    assert [h["name"] for h in handlers] == ["Reboot the node", "Record the reboot as pending (lab or container)"]
    assert all(h.get("throttle") == 1 for h in handlers)
    reboot = handlers[0]["ansible.builtin.reboot"]
    assert reboot["test_command"] == "{{ base_os_reboot_ready_command }}"
    import yaml

    defaults = yaml.safe_load((REPO / "roles" / "base_os" / "defaults" / "main.yml").read_text())
    ready = defaults["base_os_reboot_ready_command"]
    assert "kubelet.kubeconfig get node" in ready and "grep -qx True" in ready


@pytest.mark.ansible
def test_seven_changed_hosts_record_their_pending_reboot_through_the_real_handler(tmp_path):
    """The lab path of the handler, on seven hosts (local connection stands in for the nodes)."""
    from conftest import run_ansible

    hosts = ["pi-master"] + ["pi-worker-0%d" % i for i in range(2, 8)]
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars:\n    ansible_connection: local\n"
        "    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n  hosts:\n"
        + "".join("    %s: {}\n" % h for h in hosts))
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n"
        "  vars:\n    base_os_reboot_allowed: false\n    base_os_in_container: true\n"
        "    base_os_reboot_required_file: %s/{{ inventory_hostname }}\n" % tmp_path
        + "  tasks:\n    - name: Change the kernel command line\n      ansible.builtin.debug: {msg: changed}\n"
        "      changed_when: true\n      notify: Reboot the node\n"
        "  handlers:\n    - name: The base_os handlers\n      ansible.builtin.import_tasks: %s\n"
        % (REPO / "roles" / "base_os" / "handlers" / "main.yml"))
    result = run_ansible(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")])
    assert result.returncode == 0, result.stdout[-3000:]
    for host in hosts:
        assert "kernel command line changed" in (tmp_path / host).read_text()
    recorded = [line for line in result.stdout.splitlines() if line.startswith("changed: [pi-")]
    assert len(recorded) == 14  # 7 notifying tasks + 7 records, one host at a time
