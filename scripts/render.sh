#!/usr/bin/env bash
# Render the Helm values and plain manifests of the cluster layers into build/rendered
# (offline, Secret data REDACTED), through the roles' own tasks/render.yml.
#
#   make render                      # DAGS_MODE=git_sync (default)
#   make render DAGS_MODE=rwx_pvc
#   RENDER_DIR=/tmp/out RENDER_VAULT=tests/data/test-vault.yml scripts/render.sh
#
# The inventory's vault.yml is decrypted with $ANSIBLE_VAULT_PASSWORD_FILE when set, else with
# lab/vault-password.txt; the vault values are then overridden by the test vault (extra vars),
# so no real secret is used even for the Secret objects (which are redacted anyway).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
mode="${DAGS_MODE:-git_sync}"
out="${RENDER_DIR:-${repo}/build/rendered}"
vault="${RENDER_VAULT:-${repo}/tests/data/test-vault.yml}"
case "${mode}" in git_sync|rwx_pvc) ;; *) echo "render: DAGS_MODE must be git_sync or rwx_pvc, not ${mode}" >&2; exit 2;; esac
args=()
if [[ -z "${ANSIBLE_VAULT_PASSWORD_FILE:-}" && -f lab/vault-password.txt ]]; then
  args+=(--vault-password-file lab/vault-password.txt)
fi
rm -rf "${out}"
mkdir -p "${out}"
out="$(cd "${out}" && pwd)"
export ANSIBLE_CONFIG="${repo}/ansible.cfg"
ansible-playbook playbooks/render.yml "${args[@]}" -e "@${vault}" \
  -e "pi_cluster_dags_mode=${mode}" -e "pi_cluster_render_dir=${out}" "$@"
echo "render: ${mode} -> ${out}"
ls -1 "${out}"
