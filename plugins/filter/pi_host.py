# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters used by the host-layer roles (base_os, rpi_image, nfs_server).

cmdline_ensure  edit the single line of a Raspberry Pi cmdline.txt (tokens exactly once)
cidr_prefix     '192.168.10.0/24' -> 24
network_within  is network/address A inside network B ('192.168.10.0/25' in '192.168.10.0/24')
is_ip           is the string an IPv4/IPv6 address
file_differs    would a file/template/link/directory task change this path (from pi_host.files)
packages_missing  the names of a list that pi_host.packages reports as not installed
packages_present  the names of a list that pi_host.packages reports as installed

Pure python (ipaddress), so no netaddr is needed on the control machine. Documented in the .yml file of
each filter next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress

from ansible.errors import AnsibleFilterError
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.rpi_cmdline import ensure_tokens


def cmdline_ensure(text, ensure=None, remove_keys=None):
    """Return the cmdline.txt text with every token of `ensure` exactly once in its first line."""
    try:
        return ensure_tokens(str(text), ensure, remove_keys)[0]
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def cidr_prefix(network):
    """Prefix length of a CIDR network ('192.168.10.0/24' -> 24)."""
    try:
        return ipaddress.ip_network(str(network), strict=False).prefixlen
    except ValueError as exc:
        raise AnsibleFilterError("cidr_prefix: %s" % exc) from exc


def network_within(inner, outer):
    """True when network or address `inner` lies completely inside network `outer`."""
    try:
        inner_net = ipaddress.ip_network(str(inner), strict=False)
        outer_net = ipaddress.ip_network(str(outer), strict=False)
    except ValueError:
        return False
    if inner_net.version != outer_net.version:
        return False
    return inner_net.subnet_of(outer_net)


def is_ip(value):
    """True when `value` is a plain IPv4 or IPv6 address (no prefix)."""
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _mode(value):
    """'644', '0644', 0o644 -> '0644' (a string mode is octal, as the file modules read it)."""
    if isinstance(value, int):
        return "%04o" % value
    return "%04o" % int(str(value), 8)


def file_differs(files, path, content=None, mode=None, owner=None, group=None, state="file", src=None):
    """True unless pi_host.files shows `path` exactly as the task would leave it.

    A path that was not read, or any doubt, answers True: the real task then runs and decides.
    """
    entry = (files or {}).get(path)
    if not entry or not entry.get("exists"):
        return True
    if entry.get("type") != state:
        return True
    if state == "file" and content is not None:
        if hashlib.sha1(str(content).encode("utf-8")).hexdigest() != entry.get("sha1"):
            return True
    if state == "link" and entry.get("link") != src:
        return True
    try:
        if mode is not None and state != "link" and _mode(mode) != entry.get("mode"):
            return True
    except ValueError as exc:
        raise AnsibleFilterError("file_differs: mode %r is not octal" % (mode,)) from exc
    if owner is not None and str(owner) != entry.get("owner"):
        return True
    if group is not None and str(group) != entry.get("group"):
        return True
    return False


def packages_missing(versions, names):
    """Names of `names` that are not installed according to pi_host.packages (unknown counts as missing)."""
    versions = versions or {}
    return [name for name in names if not versions.get(name)]


def packages_present(versions, names):
    """Names of `names` that pi_host.packages reports as installed."""
    versions = versions or {}
    return [name for name in names if versions.get(name)]


class FilterModule(object):
    def filters(self):
        return {
            "cmdline_ensure": cmdline_ensure,
            "cidr_prefix": cidr_prefix,
            "network_within": network_within,
            "is_ip": is_ip,
            "file_differs": file_differs,
            "packages_missing": packages_missing,
            "packages_present": packages_present,
        }
