# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of stratdata.pi_cluster.preflight_inventory (documentation: plugins/modules/preflight_inventory.py).

The checks read only the task's arguments, so they run here, in the controller's worker, with the module's own
argument spec and module_utils.preflight: no Python process and no module transfer for a check that never
touches a host (preflight is the first play of every run).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.preflight import run_checks
from ansible_collections.stratdata.pi_cluster.plugins.modules.preflight_inventory import argument_spec


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=argument_spec())
        problems = run_checks(params)
        result.update(changed=False, problems=problems, checked_hosts=len(params["addresses"]))
        if problems:
            result.update(failed=True, msg="Preflight found %d problem(s); nothing was changed:\n- %s"
                          % (len(problems), "\n- ".join(problems)))
        return result
