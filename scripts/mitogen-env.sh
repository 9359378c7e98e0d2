#!/usr/bin/env bash
# Print the environment that runs Ansible under Mitogen (a measured option, see README "Benchmarks"):
#   eval "$(bash scripts/mitogen-env.sh)" && ansible-playbook site.yml         # mitogen_linear
#   eval "$(bash scripts/mitogen-env.sh free)" && ansible-playbook site.yml    # mitogen_free
# Mitogen 0.3.29+ supports ansible-core 2.19; it is pinned in requirements-dev.txt.
set -euo pipefail
strategy="${1:-linear}"
case "${strategy}" in
    linear|free|host_pinned) ;;
    *) echo "mitogen-env: strategy must be linear, free or host_pinned, not '${strategy}'" >&2; exit 2 ;;
esac
venv="${PI_CLUSTER_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/venv}"
py="${venv}/bin/python"; [[ -x "${py}" ]] || py=python3
dir="$("${py}" -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))')" || {
    echo "mitogen-env: ansible_mitogen not importable by ${py} (make venv)" >&2; exit 1; }
echo "export ANSIBLE_STRATEGY_PLUGINS=${dir}/plugins/strategy"
echo "export ANSIBLE_STRATEGY=mitogen_${strategy}"
