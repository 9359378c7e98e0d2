#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: airflow_repair_plan
short_description: Plan the repair of Airflow DAG delivery (ReadWriteOnce DAG volume, stuck pods)
version_added: "0.1.0"
description:
  - Decides, from the gathered pods, events, PVCs and the release's user-supplied Helm values, how to take
    the Airflow release to git-sync or a ReadWriteMany DAG volume (I(dags_mode)), which Helm values change,
    which stuck pods to delete and which orphaned ReadWriteOnce DAG claims to delete (only with
    I(delete_dag_pvc)).
  - Pure computation; never talks to the cluster and always returns C(changed=false). The repair playbook
    carries the plan out when asked to (C(-e repair_apply=true)).
  - A healthy cluster gives an empty plan (C(actions_needed=false)).
options:
  pods:
    description: Pods of I(namespace) (k8s_info result, kubectl List or list).
    type: raw
  events:
    description: Events of I(namespace).
    type: raw
  pvcs:
    description: PersistentVolumeClaims of I(namespace).
    type: raw
  pvs:
    description: PersistentVolumes (to map Multi-Attach volume names to claims).
    type: raw
  helm_values:
    description: User-supplied values of the release (kubernetes.core.helm_info C(status.values)).
    type: dict
    default: {}
  release_found:
    description: Whether the Helm release exists.
    type: bool
    default: true
  dags_mode:
    description: Target DAG delivery (the cluster contract's C(pi_cluster_dags_mode)).
    type: str
    choices: [git_sync, rwx_pvc]
    required: true
  namespace:
    description: Namespace of the Airflow release (C(pi_cluster_airflow_namespace)).
    type: str
    required: true
  release:
    description: Name of the Airflow Helm release (C(pi_cluster_airflow_release)).
    type: str
    required: true
  rwx_storage_class:
    description: ReadWriteMany storage class used in C(rwx_pvc) mode (C(pi_cluster_rwx_storage_class)).
    type: str
    required: true
  rwx_claim:
    description:
      - Existing claim name the chart uses in C(rwx_pvc) mode (C(dags.persistence.existingClaim)); defaults to
        C(<release>-dags).
    type: str
  delete_dag_pvc:
    description:
      - Delete orphaned ReadWriteOnce DAG claims (and, in C(rwx_pvc) mode, a ReadWriteOnce claim that has the RWX
        claim's name).
    type: bool
    default: false
  stuck_after_seconds:
    description: A pod not ready for less than this is starting, not stuck.
    type: int
    default: 300
  phase:
    description:
      - C(pre) before the upgrade, C(post) after it (then pods still mounting the old claim and not ready are
        deleted too).
    type: str
    choices: [pre, post]
    default: pre
  now:
    description: Reference time (ISO 8601), for tests.
    type: str
author:
  - StratData platform team
extends_documentation_fragment:
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; the plan is the same in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Plan the DAG repair
  stratdata.pi_cluster.airflow_repair_plan:
    pods: "{{ repair_pods }}"
    events: "{{ repair_events }}"
    pvcs: "{{ repair_pvcs }}"
    helm_values: "{{ repair_release.status['values'] | default({}) }}"
    dags_mode: "{{ pi_cluster_dags_mode }}"
  register: repair_plan
"""

RETURN = r"""
actions_needed:
  description: Whether anything would be done.
  returned: always
  type: bool
upgrade:
  description: Whether the release must be upgraded (some value changes).
  returned: always
  type: bool
value_changes:
  description: Values that change (path, current, desired).
  returned: always
  type: list
  elements: dict
  sample: [{path: dags.gitSync.enabled, current: false, desired: true}]
delete_pods:
  description: Pods to delete (namespace, name, node, status, reason).
  returned: always
  type: list
  elements: dict
delete_pvcs:
  description: Orphaned DAG claims to delete (only with delete_dag_pvc).
  returned: always
  type: list
  elements: dict
pre_upgrade_delete_pvcs:
  description: Claims that must be deleted before the upgrade (rwx_pvc name clash; only with delete_dag_pvc).
  returned: always
  type: list
  elements: dict
kept_pvcs:
  description: Orphaned DAG claims that are kept because delete_dag_pvc is false.
  returned: always
  type: list
  elements: dict
blockers:
  description: Reasons the repair cannot proceed as asked.
  returned: always
  type: list
  elements: str
summary:
  description: Human-readable lines of the plan.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.dag_mode import DAG_MODES
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.repair_plan import plan_repair


def argument_spec():
    return dict(
        pods=dict(type="raw"),
        events=dict(type="raw"),
        pvcs=dict(type="raw"),
        pvs=dict(type="raw"),
        helm_values=dict(type="dict", default={}),
        release_found=dict(type="bool", default=True),
        dags_mode=dict(type="str", required=True, choices=list(DAG_MODES)),
        namespace=dict(type="str", required=True),
        release=dict(type="str", required=True),
        rwx_storage_class=dict(type="str", required=True),
        rwx_claim=dict(type="str"),
        delete_dag_pvc=dict(type="bool", default=False),
        stuck_after_seconds=dict(type="int", default=300),
        phase=dict(type="str", default="pre", choices=["pre", "post"]),
        now=dict(type="str"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    state = dict(pods=params["pods"], events=params["events"], pvcs=params["pvcs"], pvs=params["pvs"],
                 helm_values=params["helm_values"] or {}, release_found=params["release_found"])
    options = dict((key, params[key]) for key in ("dags_mode", "namespace", "release", "rwx_storage_class",
                                                   "rwx_claim", "delete_dag_pvc", "stuck_after_seconds", "phase",
                                                   "now"))
    plan = plan_repair(state, options)
    module.exit_json(changed=False, **plan)


if __name__ == "__main__":
    main()
