#!/usr/bin/env bash
# Fault test on the podman lab: one host dies in the middle of a converge.
#
#   bash tests/lab/fault_test.sh          (make fault-test)
#
# 1. lab/lab.sh up (no-op when the lab runs, e.g. right after `molecule test --destroy never`)
# 2. site.yml starts; as soon as its output shows FAULT_TRIGGER (default: the first base_os task,
#    i.e. the os layer has begun on the hosts) the container FAULT_HOST is stopped (podman stop)
# 3. the run must end with FAULT_HOST unreachable (or failed) and the six others failed=0
#    unreachable=0 in the PLAY RECAP: the other hosts finish the whole site
# 4. lab/lab.sh up starts FAULT_HOST again; a second run must pass on all seven hosts with
#    changed=0 on the six others (FAULT_HOST catches up with whatever it missed)
#
# Environment: FAULT_HOST (pi-worker-05), FAULT_TRIGGER (extended regex on the output),
# FAULT_TIMEOUT (s to wait for the trigger, 600), FAULT_KEEP_LAB=1 keeps a lab this script
# created (by default it removes it again; a lab that already ran is always kept).
# Logs: .cache/fault-test/run1.log, run2.log.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${REPO_ROOT}"
export CONTAINERS_CONF="${REPO_ROOT}/lab/containers.conf"
VICTIM="${FAULT_HOST:-pi-worker-05}"
TRIGGER="${FAULT_TRIGGER:-^TASK \[base_os : }"
TIMEOUT="${FAULT_TIMEOUT:-600}"
LOG_DIR="${REPO_ROOT}/.cache/fault-test"
VENV="${PI_CLUSTER_VENV:-${XDG_CACHE_HOME:-${HOME}/.cache}/pi-cluster/venv}"
PY="${VENV}/bin/python"
[[ -x "${PY}" ]] || PY=python3
mkdir -p "${LOG_DIR}"
# plain, parseable output whatever ansible.cfg says
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_STDOUT_CALLBACK=default

say() { printf '[fault %(%H:%M:%S)T] %s\n' -1 "$*"; }

lab_was_up=false
[[ -s inventory/lab/hosts.yml ]] && podman container exists "${VICTIM}" && lab_was_up=true
bash lab/lab.sh up
hosts="$(bash lab/lab.sh status | cut -f1 | paste -sd' ')"
say "lab hosts: ${hosts}; victim ${VICTIM}; trigger /${TRIGGER}/"

cleanup() {
    if [[ "${lab_was_up}" == false && "${FAULT_KEEP_LAB:-0}" != 1 ]]; then
        bash lab/lab.sh down || true
    fi
}
trap cleanup EXIT

# --- run 1: stop the victim once the trigger shows up -------------------------------------------
run1="${LOG_DIR}/run1.log"
t0=${SECONDS}
bash lab/lab.sh converge >"${run1}" 2>&1 &
converge_pid=$!
triggered=false
while kill -0 "${converge_pid}" 2>/dev/null; do
    if grep -Eq "${TRIGGER}" "${run1}"; then
        triggered=true
        break
    fi
    if ((SECONDS - t0 > TIMEOUT)); then
        kill "${converge_pid}" || true
        say "FAIL: trigger /${TRIGGER}/ not seen within ${TIMEOUT} s (log ${run1})"
        exit 1
    fi
    sleep 0.2
done
if [[ "${triggered}" != true ]]; then
    wait "${converge_pid}" || true
    tail -30 "${run1}"
    say "FAIL: the converge ended before the trigger /${TRIGGER}/ (log ${run1})"
    exit 1
fi
say "trigger seen after $((SECONDS - t0)) s: $(grep -Em1 "${TRIGGER}" "${run1}" | cut -c1-100)"
# podman 4.3 may report "container state improper" when the container stops right at the timeout
podman stop -t 2 "${VICTIM}" >/dev/null 2>&1 || true
[[ "$(podman inspect -f '{{.State.Running}}' "${VICTIM}")" == false ]] || { say "FAIL: ${VICTIM} still runs"; exit 1; }
say "stopped ${VICTIM} after $((SECONDS - t0)) s"
rc1=0
wait "${converge_pid}" || rc1=$?
say "run 1 ended after $((SECONDS - t0)) s with rc=${rc1} (4 = some host unreachable)"
if ! "${PY}" tests/lab/recap.py "${run1}" --check-fault "${VICTIM}" --hosts "${hosts}"; then
    tail -40 "${run1}"
    say "FAIL: run 1 (log ${run1})"
    exit 1
fi
if ((rc1 != 2 && rc1 != 4)); then
    say "FAIL: run 1 exit code ${rc1}, expected 4 (unreachable) or 2 (failed) (log ${run1})"
    exit 1
fi

# --- run 2: victim back, everything converges, the six others unchanged ------------------------
bash lab/lab.sh up
run2="${LOG_DIR}/run2.log"
t0=${SECONDS}
rc2=0
bash lab/lab.sh converge >"${run2}" 2>&1 || rc2=$?
say "run 2 ended after $((SECONDS - t0)) s with rc=${rc2}"
if ((rc2 != 0)) || ! "${PY}" tests/lab/recap.py "${run2}" --check-rerun "${VICTIM}" --hosts "${hosts}"; then
    grep -E '^(changed|fatal|failed):' "${run2}" | grep -v "\[${VICTIM}\]" | head -20 || true
    tail -40 "${run2}"
    say "FAIL: run 2 (log ${run2})"
    exit 1
fi
say "PASS: ${VICTIM} stopped mid-converge was reported unreachable, the other hosts finished;" \
    "after a restart the re-run converged it with changed=0 on the others"
