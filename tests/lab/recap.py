#!/usr/bin/env python3
"""Parse the PLAY RECAP of an ansible-playbook log (used by fault_test.sh and bench/bench_lab.py).

recap.py LOG                          print the recap as JSON {host: {ok, changed, ...}}
recap.py LOG --check-fault VICTIM     run 1 of the fault test: VICTIM unreachable (or failed),
                                      every other host finished with failed=0 unreachable=0
recap.py LOG --check-rerun VICTIM     run 2: every host ok, no failure, changed=0 on all but VICTIM
recap.py LOG --check-clean            every host ok, no failure, changed=0 (check mode, idempotence)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_recap(text: str) -> dict[str, dict[str, int]]:
    """Return {host: {"ok": n, "changed": n, "unreachable": n, "failed": n, ...}} of the last PLAY RECAP."""
    text = ANSI.sub("", text)
    start = text.rfind("PLAY RECAP")
    if start < 0:
        raise ValueError("no PLAY RECAP in the log")
    recap: dict[str, dict[str, int]] = {}
    for line in text[start:].splitlines()[1:]:
        line = line.strip()
        if not line:
            if recap:
                break
            continue
        match = RECAP_LINE.match(line)
        if not match:
            if recap:
                break
            continue
        counts = dict(item.split("=") for item in match["counts"].split())
        recap[match["host"]] = {k: int(v) for k, v in counts.items()}
    if not recap:
        raise ValueError("empty PLAY RECAP")
    return recap


def check_fault(recap: dict[str, dict[str, int]], victim: str, expected: set[str]) -> list[str]:
    problems = []
    if victim not in recap:
        problems.append(f"{victim} missing from the recap")
    elif recap[victim]["unreachable"] + recap[victim]["failed"] == 0:
        problems.append(f"{victim} was stopped but the recap shows neither unreachable nor failed: {recap[victim]}")
    for host in sorted(expected - {victim}):
        counts = recap.get(host)
        if counts is None:
            problems.append(f"{host} missing from the recap")
        elif counts["failed"] or counts["unreachable"]:
            problems.append(f"{host} did not finish: {counts}")
    return problems


def check_rerun(recap: dict[str, dict[str, int]], victim: str, expected: set[str]) -> list[str]:
    problems = []
    for host in sorted(expected):
        counts = recap.get(host)
        if counts is None:
            problems.append(f"{host} missing from the recap")
            continue
        if counts["failed"] or counts["unreachable"]:
            problems.append(f"{host} failed on the re-run: {counts}")
        if host != victim and counts["changed"]:
            problems.append(f"{host} reported changed={counts['changed']} on the re-run (expected 0)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check-fault", metavar="VICTIM")
    group.add_argument("--check-rerun", metavar="VICTIM")
    group.add_argument("--check-clean", action="store_true")
    parser.add_argument("--hosts", default="", help="space-separated hosts that must be in the recap")
    args = parser.parse_args()
    recap = parse_recap(Path(args.log).read_text(encoding="utf-8", errors="replace"))
    expected = set(args.hosts.split()) or {h for h in recap if h != "localhost"}
    if args.check_fault:
        problems = check_fault(recap, args.check_fault, expected)
    elif args.check_rerun or args.check_clean:
        problems = check_rerun(recap, args.check_rerun or "", expected)
    else:
        print(json.dumps(recap, indent=1))
        return 0
    for host in sorted(recap):
        print(f"  {host:14} {recap[host]}")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
