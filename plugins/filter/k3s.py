# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the k3s lifecycle (upgrade decision); documented in k3s_upgrade_plan.yml / k3s_version_from_output.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.k3s_version import upgrade_plan, version_from_output


def k3s_upgrade_plan(installed, target, servers, agents, run_hosts=None):
    try:
        return upgrade_plan(dict(installed or {}), target, list(servers or []), list(agents or []),
                            None if run_hosts is None else list(run_hosts))
    except ValueError as exc:
        raise AnsibleFilterError("k3s_upgrade_plan: %s" % exc) from exc


def k3s_version_from_output(output):
    return version_from_output(output)


class FilterModule(object):
    def filters(self):
        return {"k3s_upgrade_plan": k3s_upgrade_plan, "k3s_version_from_output": k3s_version_from_output}
