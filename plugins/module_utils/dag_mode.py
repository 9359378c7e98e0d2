# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one mapping from the DAG delivery mode (pi_cluster_dags_mode) to the Airflow chart's ``dags`` values.

Used by the airflow role's values template (filter ``stratdata.pi_cluster.dag_chart_values``), by the repair
plan (``repair_plan.desired_values``), by preflight and by the airflow role's checks (test
``stratdata.pi_cluster.dag_mode``). The allowed modes are written here and nowhere else.

  git_sync  DAGs pulled from git by git-sync sidecars; no DAG volume.
  rwx_pvc   a ReadWriteMany volume on the RWX StorageClass; no git-sync. Never ReadWriteOnce: the DAG volume
            is mounted by several pods on different nodes (ReadWriteOnce -> Multi-Attach errors).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DAG_MODES = ("git_sync", "rwx_pvc")
# The only access mode a DAG volume may have.
DAG_VOLUME_ACCESS_MODE = "ReadWriteMany"


def check_mode(mode):
    """Return ``mode`` when it is a DAG delivery mode, else raise ValueError naming the allowed ones."""
    if mode not in DAG_MODES:
        raise ValueError("pi_cluster_dags_mode must be one of %s, not %r" % (", ".join(DAG_MODES), mode))
    return mode


def dag_chart_values(mode, rwx_storage_class=None, rwx_size=None, rwx_claim=None,
                     access_mode=DAG_VOLUME_ACCESS_MODE):
    """The chart's ``dags`` values a mode decides, nested as in values.yaml.

    git_sync -> {"persistence": {"enabled": False}, "gitSync": {"enabled": True}}
    rwx_pvc  -> {"persistence": {"enabled": True, "accessMode": "ReadWriteMany", "storageClassName": ...,
                 ["size": ...], ["existingClaim": ...]}, "gitSync": {"enabled": False}}
    The git-sync repository settings and the volume size are the caller's (they do not depend on the mode).
    """
    check_mode(mode)
    if mode == "git_sync":
        return {"persistence": {"enabled": False}, "gitSync": {"enabled": True}}
    if access_mode != DAG_VOLUME_ACCESS_MODE:
        raise ValueError("the DAG volume must be %s, not %r: it is mounted by several pods on different nodes "
                         "(ReadWriteOnce -> Multi-Attach errors)" % (DAG_VOLUME_ACCESS_MODE, access_mode))
    if not rwx_storage_class:
        raise ValueError("pi_cluster_dags_mode rwx_pvc needs the ReadWriteMany storage class "
                         "(pi_cluster_rwx_storage_class)")
    persistence = {"enabled": True, "accessMode": access_mode, "storageClassName": rwx_storage_class}
    if rwx_size:
        persistence["size"] = rwx_size
    if rwx_claim:
        persistence["existingClaim"] = rwx_claim
    return {"persistence": persistence, "gitSync": {"enabled": False}}


def flatten(values, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1} (dotted paths, as the repair plan compares values)."""
    flat = {}
    for key, value in values.items():
        path = prefix + key
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat
