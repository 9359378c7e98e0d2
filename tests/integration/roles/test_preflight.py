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
    "vault_grafana_admin_password": "test-grafana-admin",
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


def run_site(inventory, playbook="site.yml", *extra):
    return run_ansible(["ansible-playbook", "-i", str(inventory), playbook] + list(extra))


def assert_stopped_in_preflight(out):
    """Only the preflight play ran, only its tasks, on the control machine, and nothing changed."""
    plays = [line for line in out.splitlines() if line.startswith("PLAY [")]
    assert len(plays) == 1 and plays[0].startswith("PLAY [Preflight"), plays
    tasks = [line for line in out.splitlines() if line.startswith("TASK [")]
    assert tasks and all(line.startswith("TASK [preflight : ") for line in tasks), tasks
    results = [line for line in out.splitlines() if line.startswith(("ok: [", "changed: [", "fatal: ["))]
    assert results and all("-> localhost]" in line for line in results), results
    recap = out.split("PLAY RECAP", 1)[1].split("TASKS RECAP", 1)[0]
    rows = [line for line in recap.splitlines() if ": ok=" in line]
    assert len(rows) == 1 and "changed=0" in rows[0] and "failed=1" in rows[0], recap


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
    # issue 15 (4): "None | string" is the non-empty text "None"
    "null vault secret": (
        dict(vault=dict(TEST_VAULT, vault_k3s_token=None)),
        "missing or empty vault variable(s): vault_k3s_token",
    ),
    "vault secret that is a list": (
        dict(vault=dict(TEST_VAULT, vault_appdb_password=["a", "b"])),
        "vault variable(s) that are not text: vault_appdb_password",
    ),
    # issue 15 (5): int("six") / int(None) was a Python traceback
    "non-numeric topology count": (
        dict(group_vars={"pi_cluster_topology": {"k3s_server": 1, "k3s_agents": "six", "nfs_server": 1}}),
        "pi_cluster_topology.k3s_agents is 'six': give the number of hosts of group 'k3s_agents' as a whole number",
    ),
    "null topology count": (
        dict(group_vars={"pi_cluster_topology": {"k3s_server": 1, "k3s_agents": None, "nfs_server": 1}}),
        "pi_cluster_topology.k3s_agents is None",
    ),
    # issue 10 (5): checked against the roles' own meta/argument_specs.yml
    "k3s binary source not a choice": (
        dict(group_vars={"k3s_binary_source": "copy"}),
        "value of k3s_binary_source must be one of: download, local, got: copy (role k3s_binary)",
    ),
    "image style not a choice": (
        dict(group_vars={"rpi_image_style": "jessie"}),
        "value of rpi_image_style must be one of: auto, trixie, bookworm, got: jessie (role rpi_image)",
    ),
    "option of the wrong type": (
        dict(group_vars={"longhorn_replica_count": "two"}),
        "argument 'longhorn_replica_count' is of type str and we were unable to convert to int",
    ),
    "bad option in one host's host_vars": (
        dict(host_vars={"pi-worker-04": {"storage_prereqs_multipath_mode": "off"}}),
        "value of storage_prereqs_multipath_mode must be one of: blacklist, disable, got: off "
        "(role storage_prereqs) (set for pi-worker-04)",
    ),
    "bad option as an extra var": (
        dict(extra=["-e", "velero_storage_mode=nfs"]),
        "value of velero_storage_mode must be one of: s3, minio, got: nfs (role velero)",
    ),
    "example vault on a real cluster": (
        dict(vault=dict(TEST_VAULT, vault_is_example=True)),
        "the example vault (vault_is_example: true) is in use outside the lab",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_inventory_fails_in_preflight_before_any_host(tmp_path, case):
    kwargs, expected = BAD_CASES[case]
    kwargs = dict(kwargs)
    extra = kwargs.pop("extra", [])
    result = run_site(make_inventory(tmp_path, **kwargs), "site.yml", *extra)
    out = result.stdout
    assert result.returncode != 0, out
    assert expected in out, out
    assert "Preflight found" in out or "Validation of arguments failed" in out
    assert_stopped_in_preflight(out)


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
    assert_stopped_in_preflight(out)


def rename_hosts(children):
    """Four names that are not DNS labels, in place of pi-worker-02..05 (issue 15, defect 6)."""
    agents = children["k3s_cluster"]["children"]["k3s_agents"]["hosts"]
    for old, new in zip(["pi-worker-02", "pi-worker-03", "pi-worker-04", "pi-worker-05"], BAD_NAMES):
        del agents[old]
        agents[new] = None
        del children["longhorn_nodes"]["hosts"][old]
        children["longhorn_nodes"]["hosts"][new] = None


BAD_NAMES = ["Pi-Worker-02", "pi_worker_03", "pi-worker-04.", "-pi-worker-05"]


def test_host_names_must_be_dns_labels(tmp_path):
    out = run_site(make_inventory(tmp_path, hosts_mutation=rename_hosts)).stdout
    for name in BAD_NAMES:
        assert "host name %r is not a DNS label" % name in out, out
    assert "pi-worker-06" not in out.split("Preflight found", 1)[1].split("Origin:", 1)[0]
    assert_stopped_in_preflight(out)


def test_real_role_options_ending_in_mode_are_accepted(tmp_path):
    """The old hand-kept list refused every *_mode variable it did not know, real ones included."""
    inventory = make_inventory(tmp_path, group_vars={
        "nfs_server_export_mode": "0750",
        "storage_prereqs_multipath_mode": "disable",
        "k3s_server_write_kubeconfig_mode": "0600",
        "k3s_binary_source": "local",
        "rpi_image_style": "bookworm",
    })
    result = run_site(inventory, "playbooks/preflight.yml")
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


def test_every_problem_at_once_across_roles(tmp_path):
    inventory = make_inventory(
        tmp_path,
        group_vars={"k3s_binary_source": "copy", "rpi_image_style": "jessie", "airflow_dag_mode": "git_sync"},
        vault=dict(TEST_VAULT, vault_k3s_token=None),
        host_vars={"pi-worker-03": {"ansible_host": "127.0.10.11"}},
    )
    out = run_site(inventory).stdout
    assert "Preflight found 5 problem(s)" in out, out
    for expected in ("k3s_binary_source", "rpi_image_style", "airflow_dag_mode", "vault_k3s_token",
                     "duplicate address"):
        assert expected in out
    assert_stopped_in_preflight(out)


def test_preflight_runs_under_any_limit(tmp_path):
    """A `hosts: localhost` play is emptied by --limit pi-worker-03; the preflight play is not (issue 10)."""
    bad = make_inventory(tmp_path, group_vars={"k3s_binary_source": "copy"})
    listed = run_site(bad, "site.yml", "--limit", "pi-worker-03", "--list-tasks").stdout
    first_play = listed.split("play #2", 1)[0]
    assert "Preflight | validate inventory and variables" in first_play, listed
    assert "preflight : Validate inventory, vault, versions and role options" in first_play, listed

    result = run_site(bad, "site.yml", "--limit", "pi-worker-03")
    assert result.returncode != 0
    assert "value of k3s_binary_source must be one of: download, local, got: copy" in result.stdout, result.stdout
    assert_stopped_in_preflight(result.stdout)
    assert "pi-worker-03 -> localhost" in result.stdout

    # the check is of the whole inventory, not only of the limited hosts
    other = make_inventory(tmp_path / "other", host_vars={"pi-worker-06": {"rpi_image_style": "jessie"}})
    result = run_site(other, "site.yml", "--limit", "pi-worker-03")
    assert "got: jessie (role rpi_image) (set for pi-worker-06)" in result.stdout, result.stdout
