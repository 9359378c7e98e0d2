"""Bad inventories fail in preflight, with a message naming the problem, before any host task runs.

Each case copies the real inventory into a temporary directory, breaks one thing and runs the whole
site.yml. Host addresses are on loopback with a closed port: if preflight ever let a host play start,
its first task would fail as unreachable instead of touching anything.
"""

import shutil

import pytest
import yaml
from conftest import REPO, run_ansible

# Every test here runs ansible-playbook (or renders through it): not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

HOSTS = ["pi-master"] + ["pi-worker-%02d" % n for n in range(2, 8)]
TEST_VAULT = {
    "vault_k3s_token": "test-k3s-token-0123456789abcdef",
    "vault_airflow_admin_password": "test-admin-password",
    "vault_airflow_fernet_key": "dGVzdC1mZXJuZXQta2V5LXRlc3QtZmVybmV0LWtleSE=",
    "vault_airflow_api_secret_key": "test-api-secret",
    "vault_airflow_jwt_secret": "test-jwt-secret",
    "vault_airflow_metadata_db_password": "test-airflow-db",
    "vault_appdb_password": "test-appdb",
    "vault_appdb_postgres_password": "test-appdb-postgres",
    "vault_velero_s3_access_key": "test-access",
    "vault_velero_s3_secret_key": "test-secret",
}


def make_inventory(tmp_path, hosts_mutation=None, host_vars=None, group_vars=None, vault=None):
    inv = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory", inv, ignore=shutil.ignore_patterns("lab", "vault.yml"))
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    if hosts_mutation:
        hosts_mutation(hosts["all"]["children"])
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    for index, host in enumerate(HOSTS + ["pi-worker-08"]):
        data = {"ansible_host": "127.0.10.%d" % (10 + index), "ansible_port": 1}
        data.update((host_vars or {}).get(host, {}))
        (inv / "host_vars" / ("%s.yml" % host)).write_text(yaml.safe_dump(data))
    extra = {"pi_cluster_subnet": "127.0.10.0/24", "velero_s3_url": "https://s3.test.invalid"}
    extra.update(group_vars or {})
    (inv / "group_vars" / "all" / "zz_test.yml").write_text(yaml.safe_dump(extra))
    (inv / "group_vars" / "all" / "vault.yml").write_text(yaml.safe_dump(TEST_VAULT if vault is None else vault))
    return inv / "hosts.yml"


def run_site(inventory, playbook="site.yml"):
    return run_ansible(["ansible-playbook", "-i", str(inventory), playbook])


def drop_worker_07(children):
    del children["k3s_cluster"]["children"]["k3s_agents"]["hosts"]["pi-worker-07"]
    del children["longhorn_nodes"]["hosts"]["pi-worker-07"]


def empty_server_group(children):
    children["k3s_cluster"]["children"]["k3s_server"]["hosts"] = {}
    children["k3s_cluster"]["children"]["k3s_agents"]["hosts"]["pi-master"] = None


def stray_host(children):
    children["longhorn_nodes"]["hosts"]["pi-worker-08"] = None


def without(key):
    return {k: v for k, v in TEST_VAULT.items() if k != key}


BAD_CASES = {
    "six hosts": (dict(hosts_mutation=drop_worker_07), "group 'k3s_agents' has 5 host(s)"),
    "duplicate address": (
        dict(host_vars={"pi-worker-03": {"ansible_host": "127.0.10.11"}}),
        "duplicate address 127.0.10.11 for hosts pi-worker-02, pi-worker-03",
    ),
    "empty server group": (dict(hosts_mutation=empty_server_group), "group 'k3s_server' is empty"),
    "missing vault variable": (
        dict(vault=without("vault_airflow_fernet_key")),
        "missing or empty vault variable(s): vault_airflow_fernet_key",
    ),
    "missing k3s token": (
        dict(vault=dict(TEST_VAULT, vault_k3s_token="")),
        "missing or empty vault variable(s): vault_k3s_token",
    ),
    "host in no k3s group": (dict(hosts_mutation=stray_host), "host 'pi-worker-08' is in no k3s group"),
    "bad k3s version": (
        dict(group_vars={"pi_cluster_k3s_version": "1.33"}),
        "pi_cluster_k3s_version '1.33' is not a k3s release of the form vX.Y.Z+k3sN",
    ),
    "address outside subnet": (
        dict(host_vars={"pi-worker-06": {"ansible_host": "127.0.99.5"}}),
        "host 'pi-worker-06' address 127.0.99.5 is outside pi_cluster_subnet",
    ),
    "nfs export outside subnet": (
        dict(group_vars={"nfs_server_export_network": "127.0.0.0/8"}),
        "NFS export network 127.0.0.0/8 is outside the cluster subnet 127.0.10.0/24",
    ),
    "readwriteonce dag volume": (
        dict(group_vars={"pi_cluster_dags_mode": "rwx_pvc", "airflow_dags_persistence_access_mode": "ReadWriteOnce"}),
        "Airflow DAG volume with accessMode ReadWriteOnce is refused",
    ),
    "unknown dag mode": (
        dict(group_vars={"pi_cluster_dags_mode": "copy_by_hand"}),
        "pi_cluster_dags_mode 'copy_by_hand' is not a known option; choose one of: git_sync, rwx_pvc",
    ),
    "misspelt layer option": (
        dict(group_vars={"airflow_dag_mode": "git_sync"}),
        "airflow_dag_mode is not a known layer option",
    ),
    "unpinned chart": (
        dict(group_vars={"airflow_chart_version": "latest"}),
        "airflow_chart_version 'latest' is not pinned",
    ),
    "example vault on a real cluster": (
        dict(vault=dict(TEST_VAULT, vault_is_example=True)),
        "the example vault (vault_is_example: true) is in use outside the lab",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_inventory_fails_in_preflight_before_any_host(tmp_path, case):
    kwargs, expected = BAD_CASES[case]
    result = run_site(make_inventory(tmp_path, **kwargs))
    out = result.stdout
    assert result.returncode != 0, out
    assert expected in out, out
    assert "Preflight found" in out or "Validation of arguments failed" in out
    plays = [line for line in out.splitlines() if line.startswith("PLAY [")]
    assert len(plays) == 1 and plays[0].startswith("PLAY [Preflight"), plays
    recap = out.split("PLAY RECAP", 1)[1]
    assert "localhost" in recap and not any(host in recap for host in HOSTS), recap


def test_valid_inventory_passes_preflight(tmp_path):
    result = run_site(make_inventory(tmp_path), playbook="playbooks/preflight.yml")
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


def test_preflight_reports_every_problem_at_once(tmp_path):
    inventory = make_inventory(
        tmp_path,
        hosts_mutation=drop_worker_07,
        host_vars={"pi-worker-03": {"ansible_host": "127.0.10.11"}},
        vault=without("vault_appdb_password"),
    )
    out = run_site(inventory).stdout
    assert "Preflight found 3 problem(s)" in out, out
    assert "vault_appdb_password" in out and "duplicate address" in out and "k3s_agents" in out


def test_preflight_never_prints_vault_values(tmp_path):
    inventory = make_inventory(tmp_path, vault=dict(TEST_VAULT, vault_git_password=""))
    out = run_site(inventory, "playbooks/preflight.yml").stdout
    for value in TEST_VAULT.values():
        assert value not in out


def test_s3_backups_need_an_endpoint(tmp_path):
    """The real site.yml stops with a non-zero exit in preflight, naming the one problem; no host play starts."""
    result = run_site(make_inventory(tmp_path, group_vars={"velero_s3_url": ""}))
    out = result.stdout
    assert result.returncode == 2, out  # ansible-playbook: a task failed
    assert "Preflight found 1 problem(s)" in out, out
    assert "velero_s3_url is empty" in out, out
    plays = [line for line in out.splitlines() if line.startswith("PLAY [")]
    assert len(plays) == 1 and plays[0].startswith("PLAY [Preflight"), plays
    recap = out.split("PLAY RECAP", 1)[1]
    assert "localhost" in recap and "failed=1" in recap and not any(host in recap for host in HOSTS), recap
