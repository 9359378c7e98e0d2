# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""k3s versions and the rolling-upgrade decision.

Upstream's rules (docs.k3s.io/upgrades): never downgrade, never skip a minor version (v1.33 -> v1.35 must
go through v1.34), servers before agents, one node at a time. ``upgrade_plan`` applies them to the versions
read from the nodes and returns every refusal at once, so nothing is changed when any node is refused.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

VERSION_PATTERN = re.compile(r"v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)")
# `k3s --version` prints "k3s version v1.33.5+k3s1 (1d5ee8b4)" on its first line.
VERSION_OUTPUT_PATTERN = re.compile(r"k3s version (v\d+\.\d+\.\d+\+k3s\d+)(?: |$)")


def parse_version(text):
    """'v1.33.5+k3s1' -> (1, 33, 5, 1); ValueError on anything else (full-string match)."""
    match = VERSION_PATTERN.fullmatch(str(text))
    if not match:
        raise ValueError("not a k3s version (vX.Y.Z+k3sN): %r" % (text,))
    return tuple(int(part) for part in match.groups())


def version_from_output(output):
    """The version in the first line of `k3s --version`, or None when k3s is absent or says something else."""
    if not output:
        return None
    match = VERSION_OUTPUT_PATTERN.match(str(output).splitlines()[0].strip())
    return match.group(1) if match else None


def node_decision(installed, target):
    """What to do with one node: ('install'|'noop'|'upgrade'|'refuse', reason)."""
    wanted = parse_version(target)
    if installed is None:
        return "install", "k3s is not installed; %s will be installed" % target
    have = parse_version(installed)
    if have == wanted:
        return "noop", "already runs %s" % target
    if have > wanted:
        return "refuse", "runs %s, newer than the target %s: k3s does not support downgrades" % (installed, target)
    if wanted[0] != have[0]:
        return "refuse", "runs %s; %s is another major version" % (installed, target)
    if wanted[1] > have[1] + 1:
        return "refuse", (
            "runs %s; %s skips minor version(s) v%d.%d: upgrade one minor version at a time"
            % (installed, target, have[0], have[1] + 1)
        )
    return "upgrade", "%s -> %s" % (installed, target)


def upgrade_plan(installed, target, servers, agents, run_hosts=None):
    """The rollout over the cluster.

    installed: {host: version or None}; servers/agents: host names in inventory order; run_hosts: the hosts
    this run may change (the play's hosts under --limit; default all). An agent is refused while a server
    outside the run is still below the target: servers go first.
    Returns {"target", "refused": [messages], "nodes": [{host, role, installed, action, reason}],
    "order": [hosts to change, servers first then agents, one at a time]}.
    """
    parse_version(target)
    nodes, refused = [], []
    seen = set()
    for role, hosts in (("server", servers), ("agent", agents)):
        for host in hosts:
            if host in seen:
                continue
            seen.add(host)
            action, reason = node_decision(installed.get(host), target)
            nodes.append({"host": host, "role": role, "installed": installed.get(host), "action": action,
                          "reason": reason})
            if action == "refuse":
                refused.append("%s: %s" % (host, reason))
    run = set(seen if run_hosts is None else run_hosts)
    servers_behind = [n["host"] for n in nodes if n["role"] == "server" and n["action"] in ("upgrade", "install")
                      and n["host"] not in run]
    for node in nodes:
        if node["role"] == "agent" and node["host"] in run and node["action"] == "upgrade" and servers_behind:
            node["action"] = "refuse"
            node["reason"] = ("server(s) %s still run an older k3s and are not in this run: "
                              "upgrade the servers first" % ", ".join(servers_behind))
            refused.append("%s: %s" % (node["host"], node["reason"]))
    order = [] if refused else [n["host"] for n in nodes
                                if n["action"] in ("upgrade", "install") and n["host"] in run]
    return {"target": target, "refused": refused, "nodes": nodes, "order": order}
