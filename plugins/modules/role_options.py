#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: role_options
short_description: Check the role options set in the inventory against the roles' own argument specs
version_added: "1.1.0"
description:
  - For every host, takes the variables the inventory sets (C(group_vars), C(host_vars), extra vars; no
    role defaults) that are options of a role of the collection, and validates each value with the
    option's definition in that role's C(meta/argument_specs.yml) (type, elements, choices, sub-options),
    with the validator C(ansible.builtin.validate_argument_spec) uses.
  - A variable named like an option of a role (starts with the role's name and C(_)) that no
    argument spec declares is reported as unknown, with the nearest real option name.
  - Reports every problem at once, once per distinct problem (with the hosts it concerns when not all).
  - Runs on the control machine only (action plugin) and changes nothing; used by the preflight role.
options:
  roles_dir:
    description: Directory holding the roles; default the collection's C(roles) directory.
    type: path
  hosts:
    description: Hosts whose variables are checked; default every host of the inventory (not only the
      hosts of the play, so C(--limit) does not narrow the check).
    type: list
    elements: str
  fail_on_problems:
    description: Fail when there is a problem. With C(false) the problems are only returned.
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  action:
    description: Runs on the control machine.
    support: full
author:
  - StratData platform team (@stratdata)
"""

EXAMPLES = r"""
- name: Refuse role options that their roles would refuse
  stratdata.pi_cluster.role_options:
  run_once: true
  delegate_to: localhost

- name: Collect the problems for a combined report
  stratdata.pi_cluster.role_options:
    fail_on_problems: false
  register: option_check
"""

RETURN = r"""
problems:
  description: One sentence per problem, naming the variable, the role and the allowed values.
  returned: always
  type: list
  elements: str
  sample: ["value of k3s_binary_source must be one of: download, local, got: copy (role k3s_binary)"]
checked:
  description: Number of (host, option) values validated.
  returned: always
  type: int
  sample: 70
roles:
  description: Roles whose argument specs were read.
  returned: always
  type: list
  elements: str
"""
