# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base of the action plugins that run a module's own code in the controller's worker.

For a module that only reads its arguments (and at most writes on the control machine), an action plugin of
the same name runs that code here, with the module's argument spec: no Python process and no module payload
per run. The module file keeps the documentation and stays runnable on its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.action import ActionBase


class InProcessModuleAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    @staticmethod
    def module_argument_spec():
        """The module's argument_spec()."""
        raise NotImplementedError

    def module_run(self, params):
        """(result dict, error message or None) for the validated parameters."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super(InProcessModuleAction, self).run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=self.module_argument_spec())
        # plain JSON types, as the module receives them (templated values can carry YAML dates, tagged
        # strings and lazy containers)
        params = json.loads(json.dumps(params, cls=AnsibleJSONEncoder))
        outcome, error = self.module_run(params)
        result.update(outcome)
        if error:
            result.update(failed=True, msg=error)
        return result
