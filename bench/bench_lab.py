#!/usr/bin/env python3
"""Lab benchmark: how long site.yml takes on the seven podman hosts, side by side in one run.

    python bench/bench_lab.py            # fresh lab (down + up), the runs below, then down
    python bench/bench_lab.py --reuse    # keep a running lab: no first converge row

Rows:
  lab up             lab/lab.sh up on a fresh lab (image cached)
  first converge     site.yml on fresh containers
  no-op re-run       site.yml again: the project's settings (pipelining, ControlPersist,
                     smart gathering with the fact cache, forks from ansible.cfg, the prefork callback)
  no-op, no prefork  the same without the stratdata.pi_cluster.prefork callback (what it saves)
  no-op, defaults    the same run with Ansible's defaults: no pipelining, no ControlPersist
                     (ANSIBLE_SSH_ARGS=''), facts gathered in full by every play
                     (ANSIBLE_GATHERING=implicit, memory cache), forks 5, no prefork callback
  no-op, mitogen     the no-op re-run under Mitogen (scripts/mitogen-env.sh: mitogen_linear strategy)
  no-op, free        the no-op re-run with ANSIBLE_STRATEGY=free (each host runs its play at its own pace;
                     plays still run one after the other)
  no-op, mitogen free  both (scripts/mitogen-env.sh free: mitogen_free)
  --tags base_os     a no-op run of one layer's tag: only preflight and base_os run
  floor              a facts-only run on the seven hosts (ansible -m setup, gather_subset=min),
                     the project's settings: the cost of just reaching every host once (median of three)
Performance only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lab"))
from recap import parse_recap  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
VENV = Path(os.environ.get("PI_CLUSTER_VENV", CACHE / "pi-cluster" / "venv"))
LOG_DIR = REPO / ".cache" / "bench-lab"
INVENTORY = "inventory/lab/hosts.yml"
VAULT = "lab/vault-password.txt"


def tool(name: str) -> str:
    path = VENV / "bin" / name
    return str(path) if path.exists() else name


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(REPO / ".cache" / "lab-facts"),
            "CONTAINERS_CONF": str(REPO / "lab" / "containers.conf"),
        }
    )
    return env


def timed(name: str, cmd: list[str], env: dict[str, str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, str]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    print(f"  running {name}: {' '.join(cmd[:3])} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as fh:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    elapsed = time.monotonic() - start
    text = log.read_text(encoding="utf-8", errors="replace")
    if rc not in ok_codes:
        print(text[-3000:], file=sys.stderr)
        raise SystemExit(f"bench: {name} failed with rc={rc} (log {log})")
    return elapsed, text


def playbook(extra: list[str] | None = None) -> list[str]:
    # as lab/lab.sh converge and molecule: tasks that cannot run in containers are tagged molecule-notest
    return [
        tool("ansible-playbook"),
        "-i",
        INVENTORY,
        "site.yml",
        "--vault-password-file",
        VAULT,
        "--skip-tags",
        "molecule-notest",
        *(extra or []),
    ]


def changed(text: str) -> int:
    return sum(c["changed"] for h, c in parse_recap(text).items() if h != "localhost")


def task_runs(text: str) -> int:
    """Tasks executed on the hosts (ok + failed in the recap; skipped tasks cost no round trip)."""
    return sum(c["ok"] + c.get("failed", 0) for h, c in parse_recap(text).items() if h != "localhost")


def mitogen_env(env: dict[str, str], strategy: str = "linear") -> dict[str, str]:
    out = subprocess.run(["bash", "scripts/mitogen-env.sh", strategy], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True).stdout
    env = dict(env)
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", action="store_true", help="use the running lab (no fresh first converge)")
    args = parser.parse_args()
    env = base_env()
    rows: list[tuple[str, float, str, str]] = []

    if not args.reuse:
        subprocess.run(["bash", "lab/lab.sh", "down"], cwd=REPO, env=env, check=True)
        elapsed, _ = timed("lab-up", ["bash", "lab/lab.sh", "up"], env)
        rows.append(("lab up (7 containers)", elapsed, "", ""))
        elapsed, text = timed("first-converge", playbook(), env)
        rows.append(("first converge", elapsed, str(changed(text)), str(task_runs(text))))
    else:
        timed("lab-up", ["bash", "lab/lab.sh", "up"], env)

    elapsed, text = timed("noop", playbook(), env)
    noop = elapsed
    rows.append(("no-op re-run (project settings)", elapsed, str(changed(text)), str(task_runs(text))))

    no_prefork = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
    elapsed, text = timed("noop-no-prefork", playbook(), dict(env, **no_prefork))
    noop_no_prefork = elapsed
    rows.append(("no-op re-run, no prefork callback", elapsed, str(changed(text)), str(task_runs(text))))

    elapsed, text = timed("noop-mitogen", playbook(), mitogen_env(env))
    noop_mitogen = elapsed
    rows.append(("no-op re-run, mitogen", elapsed, str(changed(text)), str(task_runs(text))))

    elapsed, text = timed("noop-free", playbook(), dict(env, ANSIBLE_STRATEGY="free"))
    rows.append(("no-op re-run, strategy free", elapsed, str(changed(text)), str(task_runs(text))))

    elapsed, text = timed("noop-mitogen-free", playbook(), mitogen_env(env, "free"))
    rows.append(("no-op re-run, mitogen free", elapsed, str(changed(text)), str(task_runs(text))))

    elapsed, text = timed("noop-tag-base_os", playbook(["--tags", "base_os"]), env)
    rows.append(("no-op --tags base_os", elapsed, str(changed(text)), str(task_runs(text))))

    defaults = dict(env)
    defaults.update(
        {
            "ANSIBLE_PIPELINING": "False",
            "ANSIBLE_SSH_ARGS": "",
            "ANSIBLE_GATHERING": "implicit",
            "ANSIBLE_CACHE_PLUGIN": "memory",
            "ANSIBLE_FORKS": "5",
            **no_prefork,
        }
    )
    # the lab inventory's ssh args carry a ControlPath (for testinfra): drop it so no multiplexed
    # master of an earlier run is reused
    no_mux = [
        "-e",
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'",
    ]
    elapsed, text = timed("noop-defaults", playbook(no_mux), defaults)
    rows.append(("no-op re-run, Ansible defaults", elapsed, str(changed(text)), str(task_runs(text))))
    noop_defaults = elapsed

    floor_cmd = [
        tool("ansible"),
        "k3s_cluster",
        "-i",
        INVENTORY,
        "--vault-password-file",
        VAULT,
        "-m",
        "ansible.builtin.setup",
        "-a",
        "gather_subset=min",
    ]
    # the floor is short, so its noise moves every ratio: the median of three runs
    floors = sorted(timed(f"floor-{i}", floor_cmd, env)[0] for i in range(3))
    floor = floors[1]
    rows.append(("floor: facts-only (setup, min)", floor, "-", "7"))

    print()
    print(f"pi-cluster lab bench ({os.cpu_count()} CPUs), site.yml on 7 podman hosts over SSH")
    print(f"{'run':34} {'wall s':>8} {'changed':>8} {'task runs':>10} {'x floor':>8}")
    print("-" * 72)
    for name, secs, chg, runs in rows:
        print(f"{name:34} {secs:8.1f} {chg:>8} {runs:>10} {secs / floor:8.1f}")
    print("-" * 72)
    print(f"defaults / project settings (no-op): {noop_defaults / noop:.2f}x")
    print(f"project settings / mitogen (no-op): {noop / noop_mitogen:.2f}x")
    print(f"no prefork / project settings (no-op): {noop_no_prefork / noop:.2f}x")
    print(f"floor runs: {', '.join(f'{f:.1f}' for f in floors)} s")
    print(f"logs: {LOG_DIR.relative_to(REPO)}/")
    if not args.reuse:
        # the bench made this lab: leave the machine as it found it
        subprocess.run(["bash", "lab/lab.sh", "down"], cwd=REPO, env=env, check=False)


if __name__ == "__main__":
    main()
