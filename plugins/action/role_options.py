# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of stratdata.pi_cluster.role_options (documentation: plugins/modules/role_options.py).

Runs on the control machine only: it reads every host's inventory variables (group_vars, host_vars and
extra vars, as ``hostvars`` has them, without any role's defaults) and the roles' meta/argument_specs.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml
from ansible.plugins.action import ActionBase
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.role_options import (
    EvaluationError,
    check_host_options,
    load_role_specs,
    option_index,
    relevant,
)

DEFAULT_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("roles_dir", "hosts", "fail_on_problems"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        _, args = self.validate_argument_spec(argument_spec=dict(
            roles_dir=dict(type="path"),
            hosts=dict(type="list", elements="str"),
            fail_on_problems=dict(type="bool", default=True),
        ))
        roles_dir = os.path.normpath(args["roles_dir"] or DEFAULT_ROLES_DIR)
        try:
            specs = load_role_specs(roles_dir, yaml.safe_load)
        except ValueError as exc:
            return dict(result, failed=True, msg="Cannot read the roles' argument specs: %s" % exc)
        index = option_index(specs)
        roles = sorted(specs)
        hostvars = task_vars.get("hostvars", {})
        hosts = args["hosts"] if args["hosts"] is not None else list(task_vars.get("groups", {}).get("all", []))
        host_values = {}
        for host in hosts:
            try:
                variables = hostvars[host]
            except Exception as exc:  # host not in the inventory
                return dict(result, failed=True, msg="Host %s is not in the inventory: %s" % (host, exc))
            values = {}
            for name in list(variables):
                if not relevant(name, index, roles):
                    continue
                try:
                    values[name] = variables[name]
                except Exception as exc:  # undefined variable inside the value's template, bad Jinja...
                    values[name] = EvaluationError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            host_values[host] = values
        problems, checked = check_host_options(host_values, specs)
        result.update(changed=False, problems=problems, checked=checked, roles=roles)
        if problems and args["fail_on_problems"]:
            result.update(failed=True, msg="Role options that their roles refuse (%d); nothing was changed:\n- %s"
                          % (len(problems), "\n- ".join(problems)))
        return result
