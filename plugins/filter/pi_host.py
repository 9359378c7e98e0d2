# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters used by the host-layer roles (base_os, rpi_image, nfs_server).

cmdline_ensure  edit the single line of a Raspberry Pi cmdline.txt (tokens exactly once)
cidr_prefix     '192.168.10.0/24' -> 24
network_within  is network/address A inside network B ('192.168.10.0/25' in '192.168.10.0/24')
is_ip           is the string an IPv4/IPv6 address

Pure python (ipaddress), so no netaddr is needed on the control machine. Documented in the .yml file of
each filter next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


class FilterModule(object):
    def filters(self):
        return {
            "cmdline_ensure": cmdline_ensure,
            "cidr_prefix": cidr_prefix,
            "network_within": network_within,
            "is_ip": is_ip,
        }
