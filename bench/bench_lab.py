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
                     the project's settings: the cost of just reaching every host once
The floor and the no-op rows run in three interleaved rounds (every configuration once per round, so a burst
of load hits all alike), each after an untimed ping that opens the SSH masters (so every run starts with warm
connections); each row is the median of its three runs, and the runs are printed next to it.
Performance only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
ROUNDS = 3
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


def adhoc(module: str, *args: str) -> list[str]:
    """An ad-hoc `ansible` run of one module on the seven lab hosts."""
    return [tool("ansible"), "k3s_cluster", "-i", INVENTORY, "--vault-password-file", VAULT, "-m", module, *args]


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
    rows: list[tuple[str, float, str, str, list[float]]] = []

    if not args.reuse:
        subprocess.run(["bash", "lab/lab.sh", "down"], cwd=REPO, env=env, check=True)
        elapsed, _ = timed("lab-up", ["bash", "lab/lab.sh", "up"], env)
        rows.append(("lab up (7 containers)", elapsed, "", "", [elapsed]))
        elapsed, text = timed("first-converge", playbook(), env)
        rows.append(("first converge", elapsed, str(changed(text)), str(task_runs(text)), [elapsed]))
    else:
        timed("lab-up", ["bash", "lab/lab.sh", "up"], env)

    no_prefork = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
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
    floor_cmd = adhoc("ansible.builtin.setup", "-a", "gather_subset=min")
    # (key, row name, command, environment); every no-op run leaves the lab as it found it
    runs = [
        ("floor", "floor: facts-only (setup, min)", floor_cmd, env),
        ("noop", "no-op re-run (project settings)", playbook(), env),
        ("noop-no-prefork", "no-op re-run, no prefork callback", playbook(), dict(env, **no_prefork)),
        ("noop-mitogen", "no-op re-run, mitogen", playbook(), mitogen_env(env)),
        ("noop-free", "no-op re-run, strategy free", playbook(), dict(env, ANSIBLE_STRATEGY="free")),
        ("noop-mitogen-free", "no-op re-run, mitogen free", playbook(), mitogen_env(env, "free")),
        ("noop-tag-base_os", "no-op --tags base_os", playbook(["--tags", "base_os"]), env),
        ("noop-defaults", "no-op re-run, Ansible defaults", playbook(no_mux), defaults),
    ]
    # ROUNDS rounds, each running every configuration once, so that a burst of load on the machine hits all
    # of them alike; each row is the median of its runs
    times: dict[str, list[float]] = {key: [] for key, *_ in runs}
    texts: dict[str, list[str]] = {key: [] for key, *_ in runs}
    # every timed run starts with the SSH masters of the project settings open (ControlPersist 60s), as the
    # no-op runs that follow one another would: the defaults row opens none and lasts about a minute, so
    # without this the run after it (the floor, in rounds 2 and 3) would pay seven handshakes the others don't
    warm_up = adhoc("ansible.builtin.ping")
    for round_no in range(ROUNDS):
        for key, _name, cmd, run_env in runs:
            subprocess.run(warm_up, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True)
            elapsed, text = timed(f"{key}-{round_no + 1}", cmd, run_env)
            times[key].append(elapsed)
            texts[key].append(text)
    median = {key: statistics.median(values) for key, values in times.items()}
    for key, name, _cmd, _env in runs:
        if key == "floor":
            continue
        # changed: the largest count of any run (each must be 0); task runs: of the first run
        rows.append((name, median[key], str(max(changed(t) for t in texts[key])), str(task_runs(texts[key][0])),
                     times[key]))
    rows.append(("floor: facts-only (setup, min)", median["floor"], "-", "7", times["floor"]))
    floor, noop = median["floor"], median["noop"]

    print()
    print(f"pi-cluster lab bench ({os.cpu_count()} CPUs), site.yml on 7 podman hosts over SSH")
    print(f"{'run':34} {'wall s':>8} {'changed':>8} {'task runs':>10} {'x floor':>8}  runs (s)")
    print("-" * 90)
    for name, secs, chg, task_count, each in rows:
        spread = ", ".join(f"{t:.1f}" for t in each) if len(each) > 1 else ""
        print(f"{name:34} {secs:8.1f} {chg:>8} {task_count:>10} {secs / floor:8.1f}  {spread}")
    print("-" * 90)
    print(f"no-op rows and the floor: the median of {ROUNDS} interleaved rounds")
    print(f"defaults / project settings (no-op): {median['noop-defaults'] / noop:.2f}x")
    print(f"project settings / mitogen (no-op): {noop / median['noop-mitogen']:.2f}x")
    print(f"no prefork / project settings (no-op): {median['noop-no-prefork'] / noop:.2f}x")
    print(f"logs: {LOG_DIR.relative_to(REPO)}/")
    if not args.reuse:
        # the bench made this lab: leave the machine as it found it
        subprocess.run(["bash", "lab/lab.sh", "down"], cwd=REPO, env=env, check=False)


if __name__ == "__main__":
    main()
