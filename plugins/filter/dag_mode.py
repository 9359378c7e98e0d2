# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter dag_chart_values: the DAG delivery mode mapped to the Airflow chart's ``dags`` values.

The mapping lives in plugins/module_utils/dag_mode.py (also used by the repair plan and preflight).
Documented in dag_chart_values.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.stratdata.pi_cluster.plugins.module_utils import dag_mode


def dag_chart_values(mode, rwx_storage_class=None, rwx_size=None, rwx_claim=None,
                     access_mode=dag_mode.DAG_VOLUME_ACCESS_MODE):
    try:
        return dag_mode.dag_chart_values(mode, rwx_storage_class, rwx_size, rwx_claim, access_mode)
    except ValueError as exc:
        raise AnsibleFilterError("dag_chart_values: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {"dag_chart_values": dag_chart_values}
