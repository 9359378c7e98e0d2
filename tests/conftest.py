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

pytest_plugins = ["fixtures.postgres", "fixtures.airflow"]


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
