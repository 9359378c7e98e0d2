#!/usr/bin/env bash
# Create (or reuse) the cached Airflow 3.0.2 virtualenv used by the appdb/Airflow tests and bench.
#
#   scripts/airflow-venv.sh            # build if missing/outdated, print the venv path
#   AIRFLOW_VENV_PYTHON=python3.11 scripts/airflow-venv.sh
#
# Location: ${XDG_CACHE_HOME:-$HOME/.cache}/pi-cluster/airflow-3.0.2-venv
# Idempotent: the venv is keyed by the sha256 of requirements-airflow.txt (stored in
# <venv>/.requirements.sha256). Same hash + working `airflow version` -> nothing is done.
# A build goes into a temporary directory and is moved into place only when complete, so an
# interrupted build never leaves a half-built venv behind. Needs PyPI (pip's configured index).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${repo_root}/requirements-airflow.txt"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/pi-cluster"
venv="${cache_dir}/airflow-3.0.2-venv"
python="${AIRFLOW_VENV_PYTHON:-python3.11}"

want="$(sha256sum "${requirements}" | cut -d' ' -f1)"
stamp="${venv}/.requirements.sha256"

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]] \
    && "${venv}/bin/python" -c 'import airflow' >/dev/null 2>&1; then
    echo "${venv}"
    exit 0
fi

mkdir -p "${cache_dir}"
# Serialise concurrent builders (parallel test sessions, make targets).
exec 9>"${cache_dir}/airflow-venv.lock"
flock 9
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "${venv}"
    exit 0
fi

tmp="$(mktemp -d "${cache_dir}/airflow-venv.build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
echo "airflow-venv: building ${venv} (requirements sha256 ${want:0:12}) ..." >&2
start=$(date +%s)
"${python}" -m venv "${tmp}/venv"
"${tmp}/venv/bin/pip" install --quiet --upgrade pip >&2
"${tmp}/venv/bin/pip" install --quiet -r "${requirements}" >&2
# Smoke check before publishing the venv.
"${tmp}/venv/bin/python" -c 'import airflow, airflow.providers.cncf.kubernetes, airflow.providers.postgres' >&2
echo "${want}" > "${tmp}/venv/.requirements.sha256"
# A venv embeds its own path in scripts: rebuild the entry points for the final location by
# creating it in place after a successful trial would cost a second install, so instead we
# relocate by rewriting the shebangs and the activate scripts.
grep -rlI --null "${tmp}/venv" "${tmp}/venv/bin" | xargs -0 -r sed -i "s#${tmp}/venv#${venv}#g"
rm -rf "${venv}"
mv "${tmp}/venv" "${venv}"
echo "airflow-venv: built in $(( $(date +%s) - start )) s" >&2
echo "${venv}"
