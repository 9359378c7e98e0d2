"""Failed releases heal: the decision over `helm history -o json` (plugins/module_utils/helm_release_state.py)
and the helm_release_state module through the real ansible-playbook.

The histories are in the exact shape Helm 3 prints with `helm history RELEASE -o json` (cmd/helm/history.go,
``releaseInfo``: revision, updated, status, chart, app_version, description; oldest first), with the
descriptions Helm itself writes ("Install complete", "Upgrade complete", `Release "x" failed: ...`,
`Upgrade "x" failed: ...`, "Initial install underway", "Preparing upgrade", "Rollback to N").
The module is also run against a STAND-IN helm binary (a shell script printing such recorded output,
the outermost boundary: there is no Kubernetes API here).
"""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from conftest import REPO

sys.path.insert(0, os.path.join(str(REPO), "collections"))
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.helm_release_state import (  # noqa: E402
    HistoryError,
    decide,
)


def rev(revision, status, description, chart="velero-11.4.0", app_version="1.17.1"):
    return {"revision": revision, "updated": "2026-11-30T10:%02d:00.123456789Z" % revision, "status": status,
            "chart": chart, "app_version": app_version, "description": description}


DEPLOYED = [rev(1, "superseded", "Install complete"), rev(2, "deployed", "Upgrade complete")]
FIRST_INSTALL_TIMED_OUT = [rev(1, "failed", 'Release "velero" failed: context deadline exceeded')]
UPGRADE_FAILED = [rev(1, "deployed", "Install complete"),
                  rev(2, "failed", 'Upgrade "velero" failed: context deadline exceeded', chart="velero-11.5.0")]
UPGRADE_FAILED_AFTER_ROLLBACK = [rev(1, "superseded", "Install complete"), rev(2, "superseded", "Upgrade complete"),
                                 rev(3, "deployed", "Rollback to 1"),
                                 rev(4, "failed", 'Upgrade "velero" failed: timed out waiting for the condition')]
PENDING_INSTALL = [rev(1, "pending-install", "Initial install underway")]
PENDING_UPGRADE = [rev(1, "superseded", "Install complete"), rev(2, "deployed", "Upgrade complete"),
                   rev(3, "pending-upgrade", "Preparing upgrade")]
PENDING_ROLLBACK = [rev(1, "deployed", "Install complete"), rev(2, "failed", 'Upgrade "velero" failed: x'),
                    rev(3, "pending-rollback", "Rollback to 1")]


@pytest.mark.parametrize("history, action, rollback, atomic, words", [
    ([], "install", None, False, ["is not installed: installing it"]),
    (None, "install", None, False, ["is not installed"]),
    (DEPLOYED, "upgrade", None, False, ["is deployed at revision 2: upgrading"]),
    (FIRST_INSTALL_TIMED_OUT, "reinstall", None, False,
     ["failed its first install", "context deadline exceeded", "uninstalling it, then installing it again"]),
    (UPGRADE_FAILED, "rollback", 1, True,
     ["is failed at revision 2", "velero-11.5.0", "rolling back to revision 1", "upgrading atomically"]),
    (UPGRADE_FAILED_AFTER_ROLLBACK, "rollback", 3, True, ["rolling back to revision 3"]),
    (PENDING_INSTALL, "reinstall", None, False,
     ["stuck in pending-install", "Initial install underway", "uninstalling it, then installing it again"]),
    (PENDING_UPGRADE, "rollback", 2, True, ["stuck in pending-upgrade", "rolling back to revision 2"]),
    (PENDING_ROLLBACK, "rollback", 1, True, ["stuck in pending-rollback", "rolling back to revision 1"]),
    ([rev(1, "deployed", "Install complete"), rev(2, "uninstalling", "Deletion in progress")], "reinstall", None,
     False, ["is uninstalling", "installing it again"]),
    ([rev(1, "uninstalled", "Uninstallation complete")], "reinstall", None, False, ["is uninstalled"]),
    ([rev(1, "unknown", "")], "fail", None, False, ["status unknown", "helm history velero -n velero"]),
], ids=["absent", "none", "deployed", "first-install-failed", "upgrade-failed", "failed-after-rollback",
        "pending-install", "pending-upgrade", "pending-rollback", "uninstalling", "uninstalled", "unknown"])
def test_decision_and_message(history, action, rollback, atomic, words):
    result = decide("velero", "velero", history)
    assert result["decision"] == action
    assert result["rollback_revision"] == rollback
    assert result["atomic"] is atomic
    assert result["message"].startswith("Helm release velero/velero ")
    for word in words:
        assert word in result["message"], result["message"]


def test_history_order_does_not_matter():
    assert decide("velero", "velero", list(reversed(UPGRADE_FAILED)))["rollback_revision"] == 1


def test_revision_as_string_is_accepted():
    history = [dict(rev(1, "deployed", "Install complete"), revision="1")]
    assert decide("velero", "velero", history)["revision"] == 1


@pytest.mark.parametrize("history, words", [
    ({"revision": 1}, "must be a list"),
    (["deployed"], "is not an object"),
    ([{"status": "deployed"}], "no integer revision"),
    ([{"revision": 1}], "has no status"),
])
def test_bad_history_is_a_clear_error(history, words):
    with pytest.raises(HistoryError, match=words):
        decide("velero", "velero", history)


# -- the module through the real ansible-playbook ----------------------------------------------------------

def stand_in_helm(tmp_path, stdout, stderr="", rc=0):
    """STAND-IN for the helm binary (no Kubernetes API here): prints recorded output, records its argv."""
    (tmp_path / "out.json").write_text(stdout)
    (tmp_path / "err.txt").write_text(stderr)
    path = tmp_path / "helm"
    path.write_text("#!/bin/sh\necho \"$@\" > %s/argv.txt\ncat %s/out.json\ncat %s/err.txt >&2\nexit %d\n"
                    % (tmp_path, tmp_path, tmp_path, rc))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.ansible
def test_module_reads_helm_history_and_decides(run_module, tmp_path):
    helm = stand_in_helm(tmp_path, json.dumps(UPGRADE_FAILED))
    result = run_module("helm_release_state", dict(release="velero", namespace="velero", binary_path=helm,
                                                   kubeconfig="/etc/rancher/k3s/k3s.yaml"), check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert (result["decision"], result["rollback_revision"], result["atomic"]) == ("rollback", 1, True)
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[:2] == ["history", "velero"] and "--output" in argv and "json" in argv
    assert argv[argv.index("--kubeconfig") + 1] == "/etc/rancher/k3s/k3s.yaml"


@pytest.mark.ansible
def test_module_release_not_found_means_install(run_module, tmp_path):
    helm = stand_in_helm(tmp_path, "", "Error: release: not found\n", rc=1)
    result = run_module("helm_release_state", dict(release="airflow", namespace="airflow", binary_path=helm))
    assert not result.get("failed"), result.get("msg")
    assert result["decision"] == "install"
    assert result["message"] == "Helm release airflow/airflow is not installed: installing it."


@pytest.mark.ansible
def test_module_other_helm_error_fails_clearly(run_module, tmp_path):
    helm = stand_in_helm(tmp_path, "", "Error: Kubernetes cluster unreachable\n", rc=1)
    result = run_module("helm_release_state", dict(release="airflow", namespace="airflow", binary_path=helm))
    assert result.get("failed")
    assert "helm history airflow -n airflow failed (rc=1): Error: Kubernetes cluster unreachable" in result["msg"]


@pytest.mark.ansible
def test_module_bad_history_fails_without_traceback(run_module):
    result = run_module("helm_release_state", dict(release="x", namespace="y", history=[{"status": "deployed"}]))
    assert result.get("failed")
    assert result["msg"].startswith("Cannot read the history of Helm release y/x:")
    assert "Traceback" not in result.get("module_stderr", "")
