# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the verify / restore-drill playbooks (logic in plugins/module_utils/assessment/).

Documented in velero_newest_backup.yml and appdb_row_count_diff.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment import (
    compare_row_counts,
    newest_backup,
)


def velero_newest_backup(backups, namespace, phases=None):
    if not namespace:
        raise AnsibleFilterError("velero_newest_backup needs a namespace")
    return newest_backup(backups, namespace, list(phases) if phases else ["Completed"])


def appdb_row_count_diff(live, restored, strict=False):
    """Compare row counts of the live and the restored database (see assessment.compare_row_counts)."""
    return compare_row_counts(live, restored, strict=bool(strict))


class FilterModule(object):
    def filters(self):
        return {
            "velero_newest_backup": velero_newest_backup,
            "appdb_row_count_diff": appdb_row_count_diff,
        }
