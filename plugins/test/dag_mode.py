# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test dag_mode: is a value one of the DAG delivery modes (plugins/module_utils/dag_mode.py, DAG_MODES).

Documented in dag_mode.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.dag_mode import DAG_MODES


def dag_mode(value):
    return value in DAG_MODES


class TestModule(object):
    def tests(self):
        return {"dag_mode": dag_mode}
