# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of stratdata.pi_cluster.preflight_inventory (documentation: plugins/modules/preflight_inventory.py).

The checks read only the task's arguments, so they run in the controller's worker (preflight is the first
play of every run): module_utils.preflight.run_checks with the module's argument spec.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.preflight import run_checks
from ansible_collections.stratdata.pi_cluster.plugins.modules.preflight_inventory import argument_spec
from ansible_collections.stratdata.pi_cluster.plugins.plugin_utils.in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    module_argument_spec = staticmethod(argument_spec)

    def module_run(self, params):
        problems = run_checks(params)
        outcome = dict(changed=False, problems=problems, checked_hosts=len(params["addresses"]))
        if problems:
            return outcome, "Preflight found %d problem(s); nothing was changed:\n- %s" % (
                len(problems), "\n- ".join(problems))
        return outcome, None
