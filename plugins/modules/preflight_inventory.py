#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: preflight_inventory
short_description: Validate the pi-cluster inventory and variables before any host is touched
version_added: "0.1.0"
description:
  - Checks the topology (host count per group, each a whole number), the host names (DNS labels, since
    they become the hostnames), k3s group membership, host addresses (present, unique, inside the
    cluster subnet), vault variables (defined, not empty, not null, text), pinned versions, Airflow DAG
    delivery and the NFS export network.
  - Adds the problems found by other checks (O(extra_problems), e.g. those of
    M(stratdata.pi_cluster.role_options)) to the same report.
  - Reports every problem at once, each as a sentence that names it, and fails when there is any.
  - Runs on the control machine and changes nothing. An action plugin runs the checks in the controller's worker
    (no module process), with this argument spec.
options:
  groups:
    description: The inventory's C(groups) magic variable.
    type: dict
    required: true
  topology:
    description: Expected number of hosts per group.
    type: dict
    required: true
  addresses:
    description: Map of inventory host name to its C(ansible_host).
    type: dict
    required: true
  subnet:
    description: The cluster subnet in CIDR notation.
    type: str
    required: true
  vault_missing:
    description: Names of required vault variables that are undefined or empty (never their values).
    type: list
    elements: str
    default: []
  vault_wrong_type:
    description: Names of required vault variables whose value is not text (a list, a mapping, a boolean).
    type: list
    elements: str
    default: []
  vault_is_example:
    description: Whether the example vault of the repository is in use.
    type: bool
    default: false
  lab:
    description: Whether this is the podman lab.
    type: bool
    default: false
  k3s_version:
    description: The pinned k3s release.
    type: str
    required: true
  pinned_versions:
    description: Map of version variables (charts, images) to their values; each must be an exact version.
    type: dict
    default: {}
  extra_problems:
    description:
      - Problems already found by other preflight checks (one sentence each), reported in the same message
        so the user sees every problem at once.
    type: list
    elements: str
    default: []
  airflow_dags:
    description: Airflow DAG delivery settings.
    type: dict
    required: true
    suboptions:
      mode:
        description: C(git_sync) or C(rwx_pvc) (the modes of plugins/module_utils/dag_mode.py).
        type: str
        required: true
      persistence_access_mode:
        description: Access mode of the DAG volume.
        type: str
        default: ReadWriteMany
  required_settings:
    description:
      - Settings that must not be empty outside the lab, as a map of variable name to a pair
        C([value, reason]) where the reason says what needs the setting.
    type: dict
    default: {}
  nfs_export_network:
    description: Network the NFS export is restricted to; must lie inside I(subnet).
    type: str
author:
  - StratData platform team
extends_documentation_fragment:
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; the checks are the same in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Validate the inventory
  stratdata.pi_cluster.preflight_inventory:
    groups: "{{ groups }}"
    topology: "{{ pi_cluster_topology }}"
    addresses:
      pi-master: 192.168.10.10
      pi-worker-02: 192.168.10.11
    subnet: "{{ pi_cluster_subnet }}"
    k3s_version: "{{ pi_cluster_k3s_version }}"
    airflow_dags:
      mode: git_sync
"""

RETURN = r"""
problems:
  description: Every problem found, one sentence each. Empty when the inventory is valid.
  returned: always
  type: list
  elements: str
  sample: ["duplicate address 192.168.10.11 for hosts pi-worker-02, pi-worker-03: every node needs its own address"]
checked_hosts:
  description: Number of hosts checked.
  returned: always
  type: int
  sample: 7
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.preflight import run_checks


def argument_spec():
    return dict(
        groups=dict(type="dict", required=True),
        topology=dict(type="dict", required=True),
        addresses=dict(type="dict", required=True),
        subnet=dict(type="str", required=True),
        vault_missing=dict(type="list", elements="str", default=[]),
        vault_wrong_type=dict(type="list", elements="str", default=[]),
        vault_is_example=dict(type="bool", default=False),
        lab=dict(type="bool", default=False),
        k3s_version=dict(type="str", required=True),
        pinned_versions=dict(type="dict", default={}),
        extra_problems=dict(type="list", elements="str", default=[]),
        airflow_dags=dict(
            type="dict",
            required=True,
            options=dict(
                mode=dict(type="str", required=True),
                persistence_access_mode=dict(type="str", default="ReadWriteMany"),
            ),
        ),
        required_settings=dict(type="dict", default={}),
        nfs_export_network=dict(type="str"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = run_checks(module.params)
    result = dict(changed=False, problems=problems, checked_hosts=len(module.params["addresses"]))
    if problems:
        module.fail_json(
            msg="Preflight found %d problem(s); nothing was changed:\n- %s" % (len(problems), "\n- ".join(problems)),
            **result
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
