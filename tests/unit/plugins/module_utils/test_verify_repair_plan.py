"""Repair plan (plugins/module_utils/repair_plan.py) on the recorded broken and healthy cluster states."""

import copy
import json

import pytest
from conftest import REPAIR_NAMES, REPO


from ansible_collections.stratdata.pi_cluster.plugins.module_utils import repair_plan as R  # noqa: E402

STATES = REPO / "tests" / "data" / "cluster_states"


def load(name):
    """Objects of the Airflow namespace as the repair playbook reads them (k8s_info results) + helm values."""
    directory = STATES / name
    state = {}
    for kind in ("pods", "events", "pvcs", "pvs"):
        state[kind] = {"changed": False, "resources": json.loads((directory / (kind + ".json")).read_text())["items"]}
    extra = json.loads((directory / "ansible.json").read_text())
    state["helm_values"] = extra["helm_values"]
    return state, extra["captured_at"]


def plan(state, now, **options):
    return R.plan_repair(state, dict(REPAIR_NAMES, **dict(options, now=now)))


@pytest.fixture
def broken():
    return load("broken")


@pytest.fixture
def healthy():
    return load("healthy")


def test_broken_state_git_sync_plan(broken):
    result = plan(*broken)
    assert result["actions_needed"] and result["upgrade"]
    assert result["blockers"] == []
    assert result["value_changes"] == [
        {"path": "dags.gitSync.enabled", "current": False, "desired": True},
        {"path": "dags.persistence.enabled", "current": True, "desired": False},
    ]
    deleted = {p["name"]: p for p in result["delete_pods"]}
    assert set(deleted) == {"airflow-scheduler-0", "airflow-dag-processor-7c9f8d6b5-x2kqp"}
    assert "stuck in Init:0/1" in deleted["airflow-scheduler-0"]["reason"]
    assert 'Multi-Attach error on volume "pvc-3f6c2a1e-8b7d-4e2f-9a51-0c4d7e9b2a16" (held by airflow-triggerer-0)' in \
        deleted["airflow-scheduler-0"]["reason"]
    # the running triggerer is rolled by its StatefulSet; nobody deletes it by hand
    assert "airflow-triggerer-0" not in deleted
    # the DAG claim is in use: nothing to delete yet, only a note
    assert result["delete_pvcs"] == [] and result["kept_pvcs"] == []
    assert any("becomes orphaned after the upgrade" in n for n in result["notes"])
    assert result["multi_attach_volumes"] == ["pvc-3f6c2a1e-8b7d-4e2f-9a51-0c4d7e9b2a16"]
    summary = "\n".join(result["summary"])
    assert "dags.gitSync.enabled: false -> true" in summary
    assert "delete pod airflow/airflow-scheduler-0 on pi-worker-03 (Init:0/1)" in summary


def test_healthy_state_needs_nothing(healthy):
    for phase in ("pre", "post"):
        result = plan(*healthy, phase=phase, delete_dag_pvc=True)
        assert not result["actions_needed"]
        assert not result["upgrade"]
        assert result["value_changes"] == [] and result["delete_pods"] == [] and result["delete_pvcs"] == []
        assert result["summary"] == ["nothing to do: release airflow/airflow already delivers DAGs by git-sync and no "
                                     "pod is stuck"]


def _after_upgrade(state):
    """The state after a successful repair: pods replaced, the old RWO DAG claim left behind unused."""
    state = copy.deepcopy(state)
    healthy, _now = load("healthy")
    state["pods"] = healthy["pods"]
    state["events"] = {"resources": []}
    state["helm_values"] = healthy["helm_values"]
    return state


def test_orphaned_claim_is_kept_unless_asked(broken):
    state, now = broken
    after = _after_upgrade(state)
    result = plan(after, now, phase="post")
    assert not result["actions_needed"]
    assert result["delete_pvcs"] == []
    assert result["kept_pvcs"][0]["name"] == "airflow-dags"
    assert "repair_delete_dag_pvc=true" in result["kept_pvcs"][0]["hint"]
    result = plan(after, now, phase="post", delete_dag_pvc=True)
    assert result["actions_needed"]
    assert [(p["namespace"], p["name"]) for p in result["delete_pvcs"]] == [("airflow", "airflow-dags")]
    assert "orphaned ReadWriteOnce DAG claim" in result["delete_pvcs"][0]["reason"]
    # once deleted, the next run has nothing to do (idempotent)
    after["pvcs"]["resources"] = [c for c in after["pvcs"]["resources"] if c["metadata"]["name"] != "airflow-dags"]
    assert not plan(after, now, phase="post", delete_dag_pvc=True)["actions_needed"]


def test_post_phase_deletes_pods_that_still_mount_the_old_claim(broken):
    state, now = broken
    state["helm_values"] = load("healthy")[0]["helm_values"]  # upgrade done, pods not replaced yet
    state["events"] = {"resources": []}  # events expired
    result = plan(state, now, phase="post")
    assert not result["upgrade"]
    reasons = {p["name"]: p["reason"] for p in result["delete_pods"]}
    assert "still mounts the old DAG claim" in reasons["airflow-scheduler-0"]
    assert "airflow-triggerer-0" not in reasons


def test_rwx_mode_with_the_rwo_claim_of_the_same_name_is_blocked_unless_asked(broken):
    result = plan(*broken, dags_mode="rwx_pvc")
    assert "named like the RWX claim the chart will create" in result["blockers"][0]
    assert "repair_delete_dag_pvc=true" in result["blockers"][0]
    assert {c["path"]: c["desired"] for c in result["value_changes"]} == {
        "dags.persistence.accessMode": "ReadWriteMany", "dags.persistence.storageClassName": "nfs-client"}
    result = plan(*broken, dags_mode="rwx_pvc", delete_dag_pvc=True)
    assert result["blockers"] == []
    assert [p["name"] for p in result["pre_upgrade_delete_pvcs"]] == ["airflow-dags"]
    # every pod that holds the claim goes, so that the claim can be deleted before the chart re-creates it
    assert {p["name"] for p in result["delete_pods"]} == {"airflow-scheduler-0", "airflow-triggerer-0",
                                                           "airflow-dag-processor-7c9f8d6b5-x2kqp"}


def test_rwx_mode_already_done(broken):
    state, now = broken
    claim = next(c for c in state["pvcs"]["resources"] if c["metadata"]["name"] == "airflow-dags")
    claim["spec"]["accessModes"] = claim["status"]["accessModes"] = ["ReadWriteMany"]
    claim["spec"]["storageClassName"] = "nfs-client"
    state["helm_values"]["dags"]["persistence"].update(accessMode="ReadWriteMany", storageClassName="nfs-client")
    healthy_pods = load("healthy")[0]["pods"]["resources"]
    state["pods"]["resources"] = [p for p in healthy_pods if p["metadata"]["namespace"] == "airflow"]
    state["events"] = {"resources": []}
    result = plan(state, now, dags_mode="rwx_pvc", delete_dag_pvc=True)
    assert not result["actions_needed"], result["summary"]
    assert any("ReadWriteMany and is the one the chart uses: kept" in n for n in result["notes"])


def test_missing_release_blocks(broken):
    state, now = broken
    state["release_found"] = False
    result = plan(state, now)
    assert not result["upgrade"]
    assert "site.yml --tags airflow" in result["blockers"][0]


def test_desired_values_and_unknown_mode():
    assert R.desired_values("git_sync") == {"dags.gitSync.enabled": True, "dags.persistence.enabled": False}
    assert R.desired_values("rwx_pvc", "nfs-client", "airflow-dags-rwx")["dags.persistence.existingClaim"] == \
        "airflow-dags-rwx"
    with pytest.raises(ValueError):
        R.desired_values("both")


def test_chart_defaults_apply_to_unset_values():
    changes = R.value_changes({}, "git_sync")
    assert changes == [{"path": "dags.gitSync.enabled", "current": False, "desired": True}]
