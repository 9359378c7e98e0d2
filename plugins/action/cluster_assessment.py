# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of stratdata.pi_cluster.cluster_assessment (documentation: plugins/modules/cluster_assessment.py).

The assessment reads only the task's arguments (what verify gathered) and writes the report on the control
machine, so it runs in the controller's worker: the module's run_assessment with its argument spec, without
handing the gathered cluster state to a module process.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.modules.cluster_assessment import argument_spec, run_assessment
from ansible_collections.stratdata.pi_cluster.plugins.plugin_utils.in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    module_argument_spec = staticmethod(argument_spec)

    def module_run(self, params):
        return run_assessment(params)
