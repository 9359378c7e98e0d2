# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory and variable checks that run before any host is touched.

Each check returns a list of problems, each a sentence that names what is wrong and how to fix it.
The preflight module collects all of them so a user fixes the inventory in one pass.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.dag_mode import (
    DAG_MODES,
    DAG_VOLUME_ACCESS_MODE,
    dag_chart_values,
)

K3S_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$")
# An exact version: 1.18.0, v1.10.1, 3.0.2, 16.7.27 (optionally with a -suffix such as -debian-12-r5).
PINNED_VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
K3S_GROUPS = ("k3s_server", "k3s_agents")

MULTI_ATTACH_WHY = (
    "with the LocalExecutor the scheduler, dag-processor and triggerer all mount the DAG volume, and they run on "
    "different nodes; a ReadWriteOnce volume attaches to one node only, so the other pods stay in Init with "
    "'Multi-Attach error'"
)


def check_topology(groups, topology):
    problems = []
    for group, expected in sorted(topology.items()):
        members = groups.get(group, [])
        if group == "k3s_server" and not members:
            problems.append("group 'k3s_server' is empty: k3s needs exactly one server host (e.g. pi-master)")
            continue
        if len(members) != int(expected):
            problems.append(
                "group '%s' has %d host(s) (%s) but pi_cluster_topology expects %d"
                % (group, len(members), ", ".join(members) or "none", int(expected))
            )
    return problems


def check_group_membership(groups):
    problems = []
    servers = set(groups.get("k3s_server", []))
    agents = set(groups.get("k3s_agents", []))
    k3s_hosts = servers | agents
    for host in sorted(servers & agents):
        problems.append(
            "host '%s' is in both k3s_server and k3s_agents: a node is either a server or an agent" % host
        )
    for host in sorted(set(groups.get("all", [])) - k3s_hosts):
        problems.append("host '%s' is in no k3s group: put it under k3s_server or k3s_agents" % host)
    for group in ("nfs_server", "longhorn_nodes"):
        for host in sorted(set(groups.get(group, [])) - k3s_hosts):
            problems.append("host '%s' of group '%s' is not a k3s node" % (host, group))
    return problems


def check_addresses(addresses, subnet):
    problems = []
    try:
        network = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        return ["pi_cluster_subnet '%s' is not a network in CIDR notation: %s" % (subnet, exc)]
    seen = {}
    for host, address in sorted(addresses.items()):
        if not address:
            problems.append(
                "host '%s' has no ansible_host address (set it in inventory/host_vars/%s.yml)" % (host, host)
            )
            continue
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            problems.append("host '%s' has ansible_host '%s', which is not an IP address" % (host, address))
            continue
        if ip not in network:
            problems.append("host '%s' address %s is outside pi_cluster_subnet %s" % (host, address, subnet))
        seen.setdefault(str(ip), []).append(host)
    for address, hosts in sorted(seen.items()):
        if len(hosts) > 1:
            problems.append(
                "duplicate address %s for hosts %s: every node needs its own address" % (address, ", ".join(hosts))
            )
    return problems


def check_vault(missing, is_example, lab):
    problems = []
    if missing:
        problems.append(
            "missing or empty vault variable(s): %s — define them in inventory/group_vars/all/vault.yml "
            "(ansible-vault edit) and run with --ask-vault-pass or --vault-password-file" % ", ".join(sorted(missing))
        )
    if is_example and not lab:
        problems.append(
            "the example vault (vault_is_example: true) is in use outside the lab: create your own vault "
            "with new secrets (README, 'Using it on real Pis')"
        )
    return problems


def check_versions(k3s_version, pinned):
    problems = []
    if not K3S_VERSION_RE.match(str(k3s_version or "")):
        problems.append(
            "pi_cluster_k3s_version '%s' is not a k3s release of the form vX.Y.Z+k3sN (e.g. v1.33.5+k3s1)" % k3s_version
        )
    for name, value in sorted(pinned.items()):
        if not PINNED_VERSION_RE.match(str(value)):
            problems.append(
                "%s '%s' is not pinned: give an exact version such as 1.2.3 (no ranges, no 'latest')" % (name, value)
            )
    return problems


def check_options(values, choices):
    problems = []
    for name, value in sorted(values.items()):
        allowed = choices.get(name)
        if allowed is not None and value not in allowed:
            problems.append("%s '%s' is not a known option; choose one of: %s" % (name, value, ", ".join(allowed)))
    for name in sorted(set(values) - set(choices)):
        problems.append("%s is not a known layer option" % name)
    return problems


def check_dag_delivery(mode, access_mode):
    """Problems of the DAG delivery: an unknown mode, or a DAG volume that is not ReadWriteMany (dag_mode.py)."""
    if mode not in DAG_MODES:
        return ["pi_cluster_dags_mode '%s' is not a known option; choose one of: %s" % (mode, ", ".join(DAG_MODES))]
    uses_a_volume = dag_chart_values(mode, rwx_storage_class="(checked by the airflow role)")["persistence"]["enabled"]
    if uses_a_volume and access_mode != DAG_VOLUME_ACCESS_MODE:
        return [
            "Airflow DAG volume with accessMode %s is refused: %s. Use pi_cluster_dags_mode git_sync, or rwx_pvc "
            "(%s on the RWX StorageClass)" % (access_mode, MULTI_ATTACH_WHY, DAG_VOLUME_ACCESS_MODE)
        ]
    return []


def check_nfs_export(export_network, subnet):
    try:
        export = ipaddress.ip_network(export_network, strict=False)
        cluster = ipaddress.ip_network(subnet, strict=False)
    except ValueError as exc:
        return ["NFS export network '%s' is not valid: %s" % (export_network, exc)]
    if export.version != cluster.version or not export.subnet_of(cluster):
        return [
            "NFS export network %s is outside the cluster subnet %s: the export would be reachable from "
            "machines that are not nodes" % (export_network, subnet)
        ]
    return []


def check_required_settings(settings, lab):
    if lab:
        return []
    return [
        "%s is empty: %s" % (name, why)
        for name, (value, why) in sorted(settings.items())
        if not str(value if value is not None else "").strip()
    ]


def run_checks(params):
    """Run every check on the module's parameters; return the list of problems."""
    groups = params["groups"]
    problems = []
    problems += check_topology(groups, params["topology"])
    problems += check_group_membership(groups)
    problems += check_addresses(params["addresses"], params["subnet"])
    problems += check_vault(params["vault_missing"], params["vault_is_example"], params["lab"])
    problems += check_versions(params["k3s_version"], params["pinned_versions"])
    problems += check_options(params["options"], params["option_choices"])
    dags = params["airflow_dags"]
    problems += check_dag_delivery(dags["mode"], dags["persistence_access_mode"])
    problems += check_required_settings(params.get("required_settings") or {}, params["lab"])
    if params.get("nfs_export_network"):
        problems += check_nfs_export(params["nfs_export_network"], params["subnet"])
    return problems
