#!/usr/bin/env bash
# Mutation check of the lab's testinfra suite: for each role, converge a fresh lab WITHOUT that role
# (--skip-tags ROLE), run the testinfra tests, and record which tests fail. A role whose absence
# fails no test is not tested by the suite. Slow (one fresh lab per role): not part of CI.
#
#   bash tests/lab/mutation_check.sh [ROLE...]     (default: base_os storage_prereqs nfs_server k3s_agent)
#
# Prints a Markdown table (role left out -> failed tests) and writes it to .cache/mutation/table.md;
# exits 1 when a role's absence failed no test. Removes the lab at the end. A partial lab (LAB_HOSTS)
# needs MUTATION_CONVERGE_ARGS='-e {"pi_cluster_topology": {...}}' matching its hosts.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${REPO_ROOT}"
VENV="${PI_CLUSTER_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/venv}"
export PATH="${VENV}/bin:${PATH}"
export ANSIBLE_CONFIG="${REPO_ROOT}/ansible.cfg" ANSIBLE_VAULT_PASSWORD_FILE="${REPO_ROOT}/lab/vault-password.txt"
OUT="${REPO_ROOT}/.cache/mutation"
mkdir -p "${OUT}"
(($#)) || set -- base_os storage_prereqs nfs_server k3s_agent

table="${OUT}/table.md"
printf '| role left out | testinfra tests that failed |\n| --- | --- |\n' >"${table}"
undetected=()
trap 'bash lab/lab.sh down >/dev/null 2>&1 || true' EXIT
for role in "$@"; do
    t0=${SECONDS}
    bash lab/lab.sh down >/dev/null 2>&1
    bash lab/lab.sh up 2>"${OUT}/${role}-up.log"
    # shellcheck disable=SC2086  # MUTATION_CONVERGE_ARGS: extra ansible-playbook arguments, word-split
    bash lab/lab.sh converge --skip-tags "${role}" ${MUTATION_CONVERGE_ARGS:-} >"${OUT}/${role}-converge.log" 2>&1 \
        || { tail -20 "${OUT}/${role}-converge.log"; echo "converge without ${role} failed" >&2; exit 2; }
    pytest -p no:cacheprovider -q -rf --hosts="ansible://all" --ansible-inventory=inventory/lab/hosts.yml \
        --connection=ansible molecule/default/tests >"${OUT}/${role}-tests.log" 2>&1 || true
    # "FAILED path::test_name[ansible://host]": test names with the hosts they failed on
    failed="$(sed -n 's/^FAILED [^:]*::\([^[ ]*\)\[ansible:\/\/\([^]]*\)\].*/\1 \2/p' "${OUT}/${role}-tests.log" \
        | awk '{h[$1] = h[$1] (h[$1] ? "," : "") $2} END {for (t in h) print t " (" h[t] ")"}' | sort | paste -sd';' - | sed 's/;/; /g')"
    [[ -n "${failed}" ]] || undetected+=("${role}")
    printf '| %s | %s |\n' "${role}" "${failed:-NONE}" >>"${table}"
    echo "mutation ${role}: $((SECONDS - t0)) s: ${failed:-no test failed}"
done
cat "${table}"
((${#undetected[@]} == 0)) || { echo "no test fails without: ${undetected[*]}" >&2; exit 1; }
