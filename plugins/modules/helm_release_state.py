#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: helm_release_state
short_description: Read a Helm release's history and decide how to install it (heal failed and pending releases)
version_added: "0.2.0"
description:
  - Runs C(helm history RELEASE --namespace NS --output json) and decides what the install step must do
    first, because kubernetes.core.helm compares only values and chart, never the release status.
  - C(install) when the release does not exist; C(upgrade) when its newest revision is deployed;
    C(rollback) (to the last revision that deployed, then an atomic upgrade) when it is failed after a
    good revision or stuck in pending-upgrade/pending-rollback; C(reinstall) (uninstall, then install)
    when its first install failed, it is stuck in pending-install, or it is being/was uninstalled;
    C(fail) for a status it does not know.
  - Read-only; never changes anything (the role's tasks act on the decision).
options:
  release:
    description: Release name.
    type: str
    required: true
  namespace:
    description: Namespace of the release.
    type: str
    required: true
  kubeconfig:
    description: Kubeconfig file passed to helm; the default is helm's own lookup.
    type: path
  binary_path:
    description: The helm binary (a name on PATH or a path).
    type: path
    default: helm
  history:
    description:
      - Use this parsed C(helm history -o json) list instead of running helm (a recorded history, for tests and
        for support bundles). C([]) means "not found".
    type: list
    elements: dict
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    details: Read-only; there is nothing to show as a difference.
notes:
  - The decision itself is C(plugins/module_utils/helm_release_state.py), unit-tested over real history shapes.
author:
  - pi-cluster contributors
"""

EXAMPLES = r"""
- name: Decide how to install the velero release
  stratdata.pi_cluster.helm_release_state:
    release: velero
    namespace: velero
    kubeconfig: /etc/rancher/k3s/k3s.yaml
    binary_path: /usr/local/bin/helm
  register: velero_state

- name: Say what is done
  ansible.builtin.debug:
    msg: "{{ velero_state.message }}"
"""

RETURN = r"""
decision:
  description: C(install), C(upgrade), C(rollback), C(reinstall) or C(fail).
  returned: always
  type: str
  sample: rollback
message:
  description: One line that says what is done and why.
  returned: always
  type: str
  sample: "Helm release velero/velero is failed at revision 2 (failed, ...): rolling back to revision 1, ..."
status:
  description: Status of the newest revision (C(null) when not installed).
  returned: always
  type: str
  sample: failed
revision:
  description: Newest revision number (C(null) when not installed).
  returned: always
  type: int
  sample: 2
rollback_revision:
  description: Revision to roll back to (decision C(rollback)), else C(null).
  returned: always
  type: int
  sample: 1
atomic:
  description: Whether the following upgrade must be atomic.
  returned: always
  type: bool
  sample: true
history:
  description: The history read, oldest first.
  returned: always
  type: list
  elements: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.helm_release_state import (
    HistoryError,
    decide,
    normalise,
)

NOT_FOUND = "release: not found"


def read_history(module):
    params = module.params
    cmd = [params["binary_path"], "history", params["release"], "--namespace", params["namespace"],
           "--output", "json", "--max", "256"]
    if params["kubeconfig"]:
        cmd += ["--kubeconfig", params["kubeconfig"]]
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        if NOT_FOUND in err or NOT_FOUND in out:
            return []
        module.fail_json(msg="helm history %s -n %s failed (rc=%d): %s"
                         % (params["release"], params["namespace"], rc, (err or out).strip()), cmd=cmd)
    try:
        return json.loads(out or "[]")
    except ValueError as exc:
        module.fail_json(msg="helm history -o json printed something that is not JSON (%s): %s"
                         % (exc, out[:300]), cmd=cmd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            release=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            kubeconfig=dict(type="path"),
            binary_path=dict(type="path", default="helm"),
            history=dict(type="list", elements="dict"),
        ),
        supports_check_mode=True,
    )
    history = module.params["history"]
    if history is None:
        history = read_history(module)
    try:
        entries = normalise(history)
        result = decide(module.params["release"], module.params["namespace"], entries)
    except HistoryError as exc:
        module.fail_json(msg="Cannot read the history of Helm release %s/%s: %s"
                         % (module.params["namespace"], module.params["release"], exc))
    module.exit_json(changed=False, history=entries, **result)


if __name__ == "__main__":
    main()
