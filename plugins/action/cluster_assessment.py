# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of stratdata.pi_cluster.cluster_assessment (documentation: plugins/modules/cluster_assessment.py).

The assessment reads only the task's arguments (what verify gathered) and writes the report on the control
machine, so it runs here, in the controller's worker, with the module's own argument spec and code
(run_assessment): no Python process and no transfer of the gathered cluster state to a module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.action import ActionBase
from ansible_collections.stratdata.pi_cluster.plugins.modules.cluster_assessment import argument_spec, run_assessment


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=argument_spec())
        # plain JSON types, as the module would receive them (the gathered state may carry YAML dates, tagged
        # strings and lazy containers)
        params = json.loads(json.dumps(params, cls=AnsibleJSONEncoder))
        assessment, error = run_assessment(params)
        if error:
            return dict(result, failed=True, msg=error)
        result.update(assessment)
        return result
