"""Shared pytest setup: repository paths, the ansible environment, service fixtures."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The collection is importable as ansible_collections.stratdata.pi_cluster (collections/ links the checkout).
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))
CLUSTER_CONTRACT_FILE = REPO / "inventory" / "group_vars" / "all" / "cluster.yml"


def load_cluster_contract():
    """The cluster contract (inventory/group_vars/all/cluster.yml) with its templates resolved, as Ansible sees it.

    Tests take the shared names from here instead of writing them again.
    """
    import jinja2
    import yaml

    context = yaml.safe_load((REPO / "inventory" / "group_vars" / "all" / "main.yml").read_text())
    raw = yaml.safe_load(CLUSTER_CONTRACT_FILE.read_text())
    context.update(raw)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def render(value):
        if isinstance(value, str) and "{{" in value:
            return env.from_string(value).render(**context).strip()
        if isinstance(value, list):
            return [render(item) for item in value]
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        return value

    for _ in range(10):
        rendered = {key: render(value) for key, value in raw.items()}
        if rendered == {key: context[key] for key in raw}:
            break
        context.update(rendered)
    return {key: context[key] for key in raw}


CONTRACT = load_cluster_contract()
# The options every caller of the assessment passes from the contract (as roles/verify does).
ASSESSMENT_NAMES = {
    "airflow_namespace": CONTRACT["pi_cluster_airflow_namespace"],
    "databases_namespace": CONTRACT["pi_cluster_appdb_namespace"],
    "velero_namespace": CONTRACT["pi_cluster_velero_namespace"],
    "backup_namespaces": CONTRACT["pi_cluster_backup_namespaces"],
    "ingress_host": CONTRACT["pi_cluster_airflow_host"],
}
# The options every caller of the repair plan passes from the contract (as playbooks/repair-dags.yml does).
REPAIR_NAMES = {
    "dags_mode": CONTRACT["pi_cluster_dags_mode"],
    "namespace": CONTRACT["pi_cluster_airflow_namespace"],
    "release": CONTRACT["pi_cluster_airflow_release"],
    "rwx_storage_class": CONTRACT["pi_cluster_rwx_storage_class"],
}


def appdb_module_args(pg, dbname):
    """Connection options plus the contract's appdb schema, as the appdb_config role passes them."""
    return dict(pg.module_args(dbname), schema=CONTRACT["pi_cluster_appdb_schema"])

pytest_plugins = ["fixtures.postgres", "fixtures.airflow", "fixtures.datapath"]


def ansible_env(**extra):
    """Environment for running ansible-* commands from the repository root, as a user would."""
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (VENV_BIN, env.get("PATH", ""))
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_ansible(args, cwd=REPO, env=None, timeout=600):
    """Run an ansible command; return CompletedProcess with stdout+stderr in .stdout."""
    exe = shutil.which(args[0], path=str(VENV_BIN)) or args[0]
    return subprocess.run(
        [exe] + list(args[1:]), cwd=str(cwd), env=env or ansible_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )


def run_playbook(inventory, playbook, *extra, check=False):
    """ansible-playbook on an inventory with -e for each extra item (and --check when asked)."""
    args = ["ansible-playbook", "-i", str(inventory), str(playbook)]
    if check:
        args.append("--check")
    for item in extra:
        args += ["-e", item]
    return run_ansible(args, env=ansible_env())


def localhost_recap(stdout):
    """The PLAY RECAP counters of localhost as a dict."""
    match = re.search(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M)
    assert match, stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


@pytest.fixture(scope="session")
def repo():
    return REPO


# --- markers (registered in pytest.ini, --strict-markers) -------------------------------------------------
# Tests that use these fixtures get the marker without writing it: `make unit-fast` deselects them.
FIXTURE_MARKERS = {
    "postgres_server": "postgres", "pg_database": "postgres", "pg": "postgres",
    "airflow_env": "airflow", "airflow_venv": "airflow",
    # the live data path: PostgreSQL, Airflow and ansible-playbook runs together
    "datapath": ("postgres", "airflow", "ansible"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            markers = FIXTURE_MARKERS.get(fixture, ())
            for marker in (markers,) if isinstance(markers, str) else markers:
                if marker not in item.keywords:
                    item.add_marker(getattr(pytest.mark, marker))
