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

# Patterns are matched with fullmatch: "$" would also match before a final newline.
K3S_VERSION_RE = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+")
# An exact version: 1.18.0, v1.10.1, 3.0.2, 16.7.27 (optionally with a -suffix such as -debian-12-r5).
PINNED_VERSION_RE = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?")
# base_os makes the inventory name the hostname: an RFC 1123 label, lower case (k3s node names must be).
HOST_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
K3S_GROUPS = ("k3s_server", "k3s_agents")

MULTI_ATTACH_WHY = (
    "with the LocalExecutor the scheduler, dag-processor and triggerer all mount the DAG volume, and they run on "
    "different nodes; a ReadWriteOnce volume attaches to one node only, so the other pods stay in Init with "
    "'Multi-Attach error'"
)


def _count(value):
    """A host count from pi_cluster_topology as an int, or None when it is not a whole number >= 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def check_topology(groups, topology):
    problems = []
    for group, expected in sorted(topology.items(), key=lambda item: str(item[0])):
        members = groups.get(group, [])
        count = _count(expected)
        if count is None:
            problems.append(
                "pi_cluster_topology.%s is %r: give the number of hosts of group '%s' as a whole number "
                "(e.g. %s: %d)" % (group, expected, group, group, len(members))
            )
            continue
        if group == "k3s_server" and not members:
            problems.append("group 'k3s_server' is empty: k3s needs exactly one server host (e.g. pi-master)")
            continue
        if len(members) != count:
            problems.append(
                "group '%s' has %d host(s) (%s) but pi_cluster_topology expects %d"
                % (group, len(members), ", ".join(members) or "none", count)
            )
    return problems


def check_host_names(hosts):
    """Every inventory name must be a DNS label: base_os makes it the hostname and k3s the node name."""
    problems = []
    for host in sorted(hosts):
        if not HOST_LABEL_RE.fullmatch(host):
            problems.append(
                "host name %r is not a DNS label: base_os makes it the Pi's hostname and k3s its node name; "
                "use 1-63 lower-case letters, digits and '-', not starting or ending with '-' "
                "(e.g. %s)" % (host, suggest_label(host))
            )
    return problems


def suggest_label(host):
    label = re.sub(r"[^a-z0-9-]+", "-", host.lower()).strip("-")[:63].strip("-")
    return label or "pi-worker-02"


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
        if address is not None and not isinstance(address, str):
            problems.append("host '%s' has ansible_host %r, which is not an IP address (give it as text)"
                            % (host, address))
            continue
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


def check_vault(missing, is_example, lab, wrong_type=()):
    problems = []
    if missing:
        problems.append(
            "missing or empty vault variable(s): %s — define them in inventory/group_vars/all/vault.yml "
            "(ansible-vault edit) and run with --ask-vault-pass or --vault-password-file" % ", ".join(sorted(missing))
        )
    if wrong_type:
        problems.append(
            "vault variable(s) that are not text: %s — a secret must be a string (quote it in the vault)"
            % ", ".join(sorted(wrong_type))
        )
    if is_example and not lab:
        problems.append(
            "the example vault (vault_is_example: true) is in use outside the lab: create your own vault "
            "with new secrets (README, 'Using it on real Pis')"
        )
    return problems


def check_versions(k3s_version, pinned):
    problems = []
    if not isinstance(k3s_version, str) or not K3S_VERSION_RE.fullmatch(k3s_version):
        problems.append(
            "pi_cluster_k3s_version '%s' is not a k3s release of the form vX.Y.Z+k3sN (e.g. v1.33.5+k3s1)" % k3s_version
        )
    for name, value in sorted(pinned.items()):
        if not isinstance(value, str) or not PINNED_VERSION_RE.fullmatch(value):
            problems.append(
                "%s '%s' is not pinned: give an exact version such as 1.2.3 (no ranges, no 'latest')" % (name, value)
            )
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
    problems = []
    for name, pair in sorted(settings.items()):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            problems.append("required_settings.%s must be a pair [value, reason], got %r" % (name, pair))
            continue
        value, why = pair
        if value is not None and not isinstance(value, str):
            problems.append("%s is %r: give it as text" % (name, value))
        elif not lab and not (value or "").strip():
            problems.append("%s is empty: %s" % (name, why))
    return problems


def run_checks(params):
    """Run every check on the module's parameters; return the list of problems."""
    groups = params["groups"]
    problems = []
    problems += check_host_names(groups.get("all", []))
    problems += check_topology(groups, params["topology"])
    problems += check_group_membership(groups)
    problems += check_addresses(params["addresses"], params["subnet"])
    problems += check_vault(params["vault_missing"], params["vault_is_example"], params["lab"],
                            params.get("vault_wrong_type") or [])
    problems += check_versions(params["k3s_version"], params["pinned_versions"])
    problems += list(params.get("extra_problems") or [])
    dags = params["airflow_dags"]
    problems += check_dag_delivery(dags["mode"], dags["persistence_access_mode"])
    problems += check_required_settings(params.get("required_settings") or {}, params["lab"])
    if params.get("nfs_export_network"):
        problems += check_nfs_export(params["nfs_export_network"], params["subnet"])
    return problems
