# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/snapshot.yml and the verify role (logic in plugins/module_utils/snapshot.py).

Documented in kubectl_list.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.snapshot import kubectl_list as _kubectl_list


def kubectl_list(resources, kind=None, api_version=None):
    if resources is not None and not isinstance(resources, list):
        raise AnsibleFilterError("kubectl_list expects a list of objects (k8s_info resources), got %s"
                                 % type(resources).__name__)
    return _kubectl_list(resources or [], kind, api_version)


class FilterModule(object):
    def filters(self):
        return {"kubectl_list": kubectl_list}
