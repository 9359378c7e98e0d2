"""Assessment findings (the package plugins/module_utils/assessment/) on recorded cluster states.

tests/data/cluster_states/<state>/ holds objects shaped exactly like ``kubectl get -o json`` (Lists) plus
ansible.json with what the verify role passes on from its other tasks (DAG status module result,
dag_configuration rows, DAG runs, trigger, UI request). ``broken`` is the state of the original
assessment (RWO DAG volume, Multi-Attach, scheduler stuck in Init:0/1, zero serialized DAGs, Velero hooks
calling pg_start_backup); ``healthy`` is a git-sync cluster after a verified historical load. Every
finding type is driven to its non-ok statuses by editing copies of these recorded objects.
"""

import copy
import json
import re

import pytest
from conftest import ASSESSMENT_NAMES, REPO


from ansible_collections.stratdata.pi_cluster.plugins.module_utils import assessment as A  # noqa: E402

STATES = REPO / "tests" / "data" / "cluster_states"
SNAPSHOTS = REPO / "tests" / "data" / "snapshots"
KUBECTL_FILES = ("pods", "task_pods", "events", "pvcs", "pvs", "statefulsets", "deployments", "backups", "ingresses")
# What the snapshots of the same states add (TLS objects, schedules, alerts; see tests/data/snapshots/build.py).
SNAPSHOT_FILES = ("secrets", "certificates", "clusterissuers", "issuers", "schedules", "alerts")


def load_state(name):
    """(state, now) as the verify role hands them to the module; k8s objects as k8s_info results."""
    directory = STATES / name
    state = {}
    for kind in KUBECTL_FILES:
        path = directory / (kind + ".json")
        if path.exists():
            kubectl_list = json.loads(path.read_text())
            assert kubectl_list["kind"] == "List" and kubectl_list["apiVersion"] == "v1"
            # kubernetes.core.k8s_info returns the items as `resources`
            state[kind] = {"changed": False, "failed": False, "api_found": True, "resources": kubectl_list["items"]}
    for kind in SNAPSHOT_FILES:
        path = SNAPSHOTS / name / (kind + ".json")
        if path.exists():
            data = json.loads(path.read_text())
            state[kind] = {"resources": data["items"]} if isinstance(data, dict) and "items" in data else data
    extra = json.loads((directory / "ansible.json").read_text())
    now = extra.pop("captured_at")
    extra.pop("helm_values")
    state.update(extra)
    return state, now


def run(state, now, **options):
    return A.assess(state, dict(ASSESSMENT_NAMES, **dict(options, now=now)))


def by_id(report):
    return {f["id"]: f for f in report["findings"]}


def component(report, name):
    return next(c for c in report["components"] if c["name"] == name)


def items(state, kind):
    return state[kind]["resources"]


def find(state, kind, name):
    return next(o for o in items(state, kind) if o["metadata"]["name"].startswith(name))


@pytest.fixture
def broken():
    return load_state("broken")


@pytest.fixture
def healthy():
    return load_state("healthy")


# --------------------------------------------------------------------------------------------------
# the recorded states
# --------------------------------------------------------------------------------------------------

def test_normalisation_keeps_well_formed_kubectl_objects_unchanged(broken, healthy):
    """objects() reads every recorded object, and normalising valid kubectl output changes nothing."""
    counted = {}
    for state, _now in (broken, healthy):
        for kind in KUBECTL_FILES:
            if kind not in state:
                continue
            recorded = items(state, kind)
            assert A.objects(state[kind]) == recorded, kind
            counted[kind] = counted.get(kind, 0) + len(recorded)
    # the recorded states hold (broken + healthy): hand-counted from the files
    assert counted == {"pods": 8 + 8, "task_pods": 2, "events": 7 + 1, "pvcs": 5 + 4, "pvs": 5 + 4,
                       "statefulsets": 4 + 4, "deployments": 3 + 3, "backups": 3 + 3, "ingresses": 1 + 1}


def test_broken_state_gives_exactly_the_two_critical_issues_of_the_assessment(broken):
    report = run(*broken)
    assert report["overall_status"] == "critical"
    assert report["critical_ids"] == ["dags.volume", "dags.serialized"]
    findings = by_id(report)
    volume = findings["dags.volume"]
    assert "Multi-Attach" in volume["title"] and "airflow-scheduler-0" in volume["title"]
    evidence = "\n".join(volume["evidence"])
    assert 'Multi-Attach error for volume "pvc-3f6c2a1e-8b7d-4e2f-9a51-0c4d7e9b2a16"' in evidence
    assert "already used by airflow-triggerer-0" in evidence
    assert ("airflow-scheduler-0 on pi-worker-03: Init:0/1 (wait-for-airflow-migrations: PodInitializing) for 51m"
            in evidence)
    assert "ReadWriteOnce" in evidence and "pi-worker-02, pi-worker-03" in evidence
    assert set(volume["blocked_pods"]) == {"airflow/airflow-scheduler-0",
                                           "airflow/airflow-dag-processor-7c9f8d6b5-x2kqp"}
    assert "git-sync" in volume["resolution"] and "repair-dags.yml" in volume["resolution"]
    serialized = findings["dags.serialized"]
    assert serialized["title"] == "No DAGs serialized: none of the 2 expected DAGs is in serialized_dag or the API"
    assert ("historical_load_equities: not in the metadata database (never parsed: file missing from the dags "
            "folder, not matching, or failing to import)") in serialized["evidence"]
    assert "copied into that volume by hand are gone" in serialized["root_cause"]
    for item in (volume, serialized):
        assert item["root_cause"] and item["impact"] and item["resolution"]


def test_broken_state_components_and_checklist(broken):
    report = run(*broken)
    assert component(report, "scheduler")["status"] == "critical"
    assert component(report, "scheduler")["findings"] == ["dags.volume"]
    assert component(report, "dag-processor")["status"] == "critical"
    for name in ("triggerer", "api-server", "PostgreSQL", "statsd"):
        assert component(report, name)["status"] == "ok", name
    checklist = {c["id"]: c for c in report["checklist"]}
    assert checklist["scheduler"]["status"] == "critical" and not checklist["scheduler"]["passed"]
    assert checklist["dags"]["status"] == "critical"
    # blocked by the missing DAGs: not run, never a pass
    for key in ("trigger", "config", "indicators"):
        assert checklist[key]["status"] == "skipped" and "not" in checklist[key]["evidence"]
    assert checklist["backup"]["status"] == "warn"
    assert checklist["ui"]["passed"]


def test_broken_state_symptoms_are_not_counted_twice(broken):
    findings = by_id(run(*broken))
    # the stuck pods and the Multi-Attach events belong to dags.volume, not to the generic checks
    for fid in ("storage.multi_attach", "storage.rwo_shared_nodes", "pods.stuck_init", "pods.not_ready"):
        assert findings[fid]["status"] == "ok", fid
    assert "explained by dags.volume" in " ".join(findings["pods.stuck_init"]["evidence"])


def test_broken_state_velero_hooks_with_pg_start_backup(broken):
    velero = by_id(run(*broken))["velero.backup"]
    assert velero["status"] == "warn"
    assert "velero/daily-backup-20261120020000: PartiallyFailed" in velero["evidence"][0]
    assert "1 of 1 hook(s) failed" in velero["evidence"][0]
    assert "pg_start_backup" in velero["root_cause"]


def test_healthy_state_is_all_green(healthy):
    report = run(*healthy)
    assert report["overall_status"] == "ok", [(f["id"], f["status"], f["title"]) for f in report["findings"]
                                              if f["status"] != "ok"]
    assert all(f["status"] == "ok" for f in report["findings"])
    assert all(c["status"] == "ok" for c in report["components"])
    assert all(c["passed"] for c in report["checklist"])
    assert report["critical_ids"] == []
    findings = by_id(report)
    assert "git-sync sidecars" in " ".join(findings["dags.volume"]["evidence"])
    config = " ".join(findings["dags.config_resources"]["evidence"])
    assert "matches row european_markets" in config and "matches row us_markets" in config


def test_healthy_state_without_trigger_leaves_the_trigger_unticked(healthy):
    state, now = healthy
    state["trigger"] = {"requested": False}
    report = run(state, now)
    assert report["overall_status"] == "ok"
    trigger = by_id(report)["dags.trigger"]
    assert trigger["status"] == "skipped" and "verify_trigger=true" in trigger["evidence"][0]
    assert not {c["id"]: c for c in report["checklist"]}["trigger"]["passed"]
    assert report["summary"] == "Every check passed (1 not run)."


def test_stuck_threshold_is_measured_from_the_pod_condition(broken):
    state, _now = broken
    # 2 minutes after the scheduler pod was created it is starting, not stuck
    report = run(state, "2026-11-20T08:53:02Z")
    scheduler = component(report, "scheduler")
    assert "for 2m" in scheduler["evidence"][0]
    # the Multi-Attach event still makes the DAG volume critical
    assert by_id(report)["dags.volume"]["status"] == "critical"


# --------------------------------------------------------------------------------------------------
# no Kubernetes API
# --------------------------------------------------------------------------------------------------

def test_no_api_is_not_run_and_not_critical():
    report = A.assess({"api": {"available": False, "reason": "pi_cluster_lab is true: the podman lab has no k3s"}},
                      dict(ASSESSMENT_NAMES, now="2026-11-24T00:00:00Z"))
    assert report["overall_status"] == "not_run"
    assert report["critical_ids"] == []
    assert [f["id"] for f in report["findings"]] == ["cluster.api"]
    assert all(c["status"] == "skipped" for c in report["components"])
    assert not any(c["passed"] for c in report["checklist"])
    assert report["summary"] == "Cluster checks not run: pi_cluster_lab is true: the podman lab has no k3s."
    markdown = A.render_markdown(report)
    assert "NOT RUN" in markdown and "- [x]" not in markdown


def test_no_api_when_the_api_is_required_is_critical():
    report = A.assess({"api": {"available": False, "reason": "/etc/rancher/k3s/k3s.yaml not found"}},
                      dict(ASSESSMENT_NAMES, now="2026-11-24T00:00:00Z", api_required=True))
    assert report["overall_status"] == "critical"
    assert report["critical_ids"] == ["cluster.api"]
    assert "k3s" in by_id(report)["cluster.api"]["resolution"]


# --------------------------------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------------------------------

def _stuck(pod, reason="PodInitializing", phase="Pending", since=None, init_running=False):
    """Turn a running pod into one waiting in Init (as the kubelet reports it)."""
    status = pod["status"]
    since = since or status["startTime"]
    status["phase"] = phase
    inits = pod["spec"].get("initContainers", [])
    status["initContainerStatuses"] = [
        {"image": c["image"], "imageID": "", "lastState": {}, "name": c["name"], "ready": False, "restartCount": 0,
         "started": init_running and i == 0,
         "state": {"running": {"startedAt": since}} if init_running and i == 0 else {"waiting": {"reason": reason}}}
        for i, c in enumerate(inits)]
    status["containerStatuses"] = [
        {"image": c["image"], "imageID": "", "lastState": {}, "name": c["name"], "ready": False, "restartCount": 0,
         "started": False, "state": {"waiting": {"reason": "PodInitializing"}}} for c in pod["spec"]["containers"]]
    for cond in status["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady", "Initialized", "PodReadyToStartContainers"):
            cond["status"] = "False"
            cond["lastTransitionTime"] = since
    status.pop("podIP", None)
    status.pop("podIPs", None)
    return pod


def _waiting_main(pod, reason, restarts=7):
    for cstat in pod["status"]["containerStatuses"]:
        cstat.update(ready=False, started=False, restartCount=restarts, state={"waiting": {
            "message": "back-off 5m0s restarting failed container", "reason": reason}})
    for cond in pod["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond["status"] = "False"
            cond["lastTransitionTime"] = "2026-11-23T08:00:00Z"
    return pod


def test_dag_volume_rwo_without_collision_is_a_warning(broken):
    state, now = broken
    for name in ("airflow-scheduler-0", "airflow-dag-processor"):
        pod = find(state, "pods", name)
        pod["spec"]["nodeName"] = "pi-worker-02"
        for cstat in pod["status"]["containerStatuses"]:
            cstat.update(ready=True, started=True, state={"running": {"startedAt": "2026-11-20T09:00:00Z"}})
        pod["status"]["initContainerStatuses"] = []
        pod["status"]["phase"] = "Running"
        for cond in pod["status"]["conditions"]:
            cond["status"] = "True"
    state["events"]["resources"] = [e for e in items(state, "events") if e["reason"] != "FailedAttachVolume"]
    volume = by_id(run(state, now))["dags.volume"]
    assert volume["status"] == "warn"
    assert "no collision right now" in volume["title"]
    assert "same node" in volume["root_cause"]


def test_dag_volume_on_rwx_is_ok(broken):
    state, now = broken
    claim = find(state, "pvcs", "airflow-dags")
    claim["spec"]["accessModes"] = claim["status"]["accessModes"] = ["ReadWriteMany"]
    claim["spec"]["storageClassName"] = "nfs-client"
    state["events"]["resources"] = [e for e in items(state, "events") if e["reason"] != "FailedAttachVolume"]
    findings = by_id(run(state, now))
    assert findings["dags.volume"]["status"] == "ok"
    assert "ReadWriteMany" in findings["dags.volume"]["evidence"][0]
    # the two pods are still in Init: now that no volume explains it, they are their own finding
    assert findings["pods.stuck_init"]["status"] == "critical"
    assert "airflow-scheduler-0" in findings["pods.stuck_init"]["title"]


def _multi_attach_event(pod, volume, message=None):
    return {
        "apiVersion": "v1", "count": 12, "eventTime": None, "firstTimestamp": "2026-11-23T09:40:00Z",
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                           "namespace": pod["metadata"]["namespace"], "resourceVersion": "4200001",
                           "uid": pod["metadata"]["uid"]},
        "kind": "Event", "lastTimestamp": "2026-11-23T10:14:00Z",
        "message": message or ('Multi-Attach error for volume "%s" Volume is already exclusively attached to one node '
                               "and can't be attached to another" % volume),
        "metadata": {"creationTimestamp": "2026-11-23T09:40:00Z", "name": pod["metadata"]["name"] + ".18a0b1c2d3e4f5a6",
                     "namespace": pod["metadata"]["namespace"], "resourceVersion": "4200002",
                     "uid": "0b7e8f61-1a2b-4c3d-9e8f-7a6b5c4d3e2f"},
        "reason": "FailedAttachVolume", "reportingComponent": "attachdetach-controller", "reportingInstance": "",
        "source": {"component": "attachdetach-controller"}, "type": "Warning"}


def test_multi_attach_on_another_volume_is_critical_while_the_pod_waits(healthy):
    state, now = healthy
    appdb = find(state, "pods", "postgresql-primary-0")
    claim = find(state, "pvcs", "data-postgresql-primary-0")
    _stuck(appdb, reason="PodInitializing", since="2026-11-23T09:40:00Z")
    appdb["spec"]["nodeName"] = "pi-worker-05"
    state["events"]["resources"].append(_multi_attach_event(appdb, claim["spec"]["volumeName"]))
    report = run(state, now)
    findings = by_id(report)
    multi = findings["storage.multi_attach"]
    assert multi["status"] == "critical"
    assert "postgresql-primary-0" in multi["title"]
    assert "(claim databases/data-postgresql-primary-0)" in multi["evidence"][0]
    assert findings["dags.volume"]["status"] == "ok"
    assert component(report, "PostgreSQL")["status"] == "critical"
    assert component(report, "PostgreSQL")["findings"] == ["storage.multi_attach"]


def test_multi_attach_event_of_a_pod_that_recovered_is_a_warning(healthy):
    state, now = healthy
    appdb = find(state, "pods", "postgresql-primary-0")
    claim = find(state, "pvcs", "data-postgresql-primary-0")
    state["events"]["resources"].append(_multi_attach_event(appdb, claim["spec"]["volumeName"]))
    multi = by_id(run(state, now))["storage.multi_attach"]
    assert multi["status"] == "warn"
    assert "(pod now ready or gone)" in multi["evidence"][0]


def test_rwo_claim_used_on_two_nodes_is_critical(healthy):
    state, now = healthy
    scheduler = find(state, "pods", "airflow-scheduler-0")
    extra = copy.deepcopy(find(state, "pods", "airflow-run-airflow-migrations"))
    extra["metadata"]["name"] = "airflow-log-export-6d5c4-bx8qw"
    extra["metadata"]["uid"] = "7c2d9e41-5f6a-4b8c-9d0e-1f2a3b4c5d6e"
    extra["metadata"]["labels"] = {"app": "log-export"}
    extra["metadata"].pop("ownerReferences")
    extra["spec"]["nodeName"] = "pi-worker-05"
    extra["spec"]["volumes"].append({"name": "logs",
                                     "persistentVolumeClaim": {"claimName": "logs-airflow-scheduler-0"}})
    extra["status"].update(phase="Pending", startTime="2026-11-23T09:50:00Z")
    extra["status"]["containerStatuses"] = [{
        "image": "docker.io/apache/airflow:3.0.2", "imageID": "", "lastState": {}, "name": "run-airflow-migrations",
        "ready": False, "restartCount": 0, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}]
    extra["status"]["conditions"] = [
        {"lastProbeTime": None, "lastTransitionTime": "2026-11-23T09:50:00Z", "status": "False", "type": "Ready",
         "reason": "ContainersNotReady", "message": "containers with unready status: [run-airflow-migrations]"},
        {"lastProbeTime": None, "lastTransitionTime": "2026-11-23T09:50:00Z", "status": "True", "type": "PodScheduled"}]
    state["pods"]["resources"].append(extra)
    findings = by_id(run(state, now))
    shared = findings["storage.rwo_shared_nodes"]
    assert shared["status"] == "critical"
    assert "airflow/logs-airflow-scheduler-0 is mounted by pods on 2 nodes" in shared["evidence"][0]
    assert scheduler["metadata"]["name"] in shared["evidence"][0]
    # explained once
    assert findings["pods.not_ready"]["status"] == "ok"


def test_pending_pvc_needed_by_a_pod_is_critical_and_unused_one_a_warning(healthy):
    state, now = healthy
    claim = find(state, "pvcs", "data-postgresql-primary-0")
    claim["spec"].pop("volumeName")
    claim["status"] = {"phase": "Pending"}
    _stuck(find(state, "pods", "postgresql-primary-0"), since="2026-11-23T09:00:00Z")
    find(state, "pods", "postgresql-primary-0")["status"]["phase"] = "Pending"
    state["events"]["resources"].append({
        "apiVersion": "v1", "count": 40, "eventTime": None, "firstTimestamp": "2026-11-23T09:00:00Z",
        "involvedObject": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "data-postgresql-primary-0",
                           "namespace": "databases", "resourceVersion": "4200100", "uid": claim["metadata"]["uid"]},
        "kind": "Event", "lastTimestamp": "2026-11-23T10:14:00Z",
        "message": "failed to provision volume with StorageClass \"longhorn\": rpc error: code = Internal desc = "
                   "insufficient storage",
        "metadata": {"creationTimestamp": "2026-11-23T09:00:00Z", "name": "data-postgresql-primary-0.18a0b1c2d3e4f5a7",
                     "namespace": "databases", "resourceVersion": "4200101",
                     "uid": "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"},
        "reason": "ProvisioningFailed", "reportingComponent": "driver.longhorn.io_csi-provisioner",
        "reportingInstance": "", "source": {"component": "driver.longhorn.io_csi-provisioner"}, "type": "Warning"})
    unused = copy.deepcopy(claim)
    unused["metadata"].update(name="scratch-data", uid="2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b")
    state["pvcs"]["resources"].append(unused)
    findings = by_id(run(state, now))
    unbound = findings["storage.pvc_unbound"]
    assert unbound["status"] == "critical"
    text = "\n".join(unbound["evidence"])
    assert "databases/data-postgresql-primary-0 is Pending" in text and "insufficient storage" in text
    assert "needed by postgresql-primary-0" in text
    assert "databases/scratch-data is Pending" in text
    assert findings["pods.stuck_init"]["status"] == "ok"

    state["pvcs"]["resources"] = [c for c in items(state, "pvcs")
                                  if c["metadata"]["name"] != "data-postgresql-primary-0"]
    for vol in find(state, "pods", "postgresql-primary-0")["spec"]["volumes"]:
        vol.pop("persistentVolumeClaim", None)
    assert by_id(run(state, now))["storage.pvc_unbound"]["status"] == "warn"


# --------------------------------------------------------------------------------------------------
# pods and components
# --------------------------------------------------------------------------------------------------

def test_pod_stuck_in_init_without_volume_problem(healthy):
    state, now = healthy
    api = find(state, "pods", "airflow-api-server")
    _stuck(api, since="2026-11-23T09:30:00Z", init_running=True)
    report = run(state, now)
    stuck = by_id(report)["pods.stuck_init"]
    assert stuck["status"] == "critical"
    assert stuck["title"] == "Pods stuck in Init: airflow-api-server-58b6d7c9f-r4tpk"
    assert "Init:0/1" in stuck["evidence"][0] and "[api-server]" in stuck["evidence"][0]
    assert "wait-for-airflow-migrations" in stuck["root_cause"]
    assert component(report, "api-server")["findings"] == ["pods.stuck_init"]
    assert report["critical_ids"] == ["pods.stuck_init"]


def test_pod_in_init_for_a_short_time_is_starting(healthy):
    state, now = healthy
    _stuck(find(state, "pods", "airflow-api-server"), since="2026-11-23T10:14:00Z", init_running=True)
    report = run(state, now)
    assert by_id(report)["pods.stuck_init"]["status"] == "ok"
    assert component(report, "api-server")["status"] == "warn"


def test_crash_looping_pods(healthy):
    state, now = healthy
    _waiting_main(find(state, "pods", "airflow-statsd"), "CrashLoopBackOff")
    not_ready = by_id(run(state, now))["pods.not_ready"]
    assert not_ready["status"] == "warn"  # statsd only costs metrics
    assert "CrashLoopBackOff" in not_ready["evidence"][0]
    _waiting_main(find(state, "pods", "airflow-triggerer-0"), "ImagePullBackOff")
    report = run(state, now)
    assert by_id(report)["pods.not_ready"]["status"] == "critical"
    assert component(report, "triggerer")["status"] == "critical"
    assert component(report, "statsd")["status"] == "warn"


def test_missing_components(healthy):
    state, now = healthy
    state["pods"]["resources"] = [p for p in items(state, "pods")
                                  if not p["metadata"]["name"].startswith("airflow-statsd")]
    missing = by_id(run(state, now))["components.missing"]
    assert missing["status"] == "warn"
    assert missing["evidence"] == ["statsd: no pod matches component=statsd in namespace airflow "
                                   "(Deployment airflow/airflow-statsd: 1/1 ready)"]
    state["pods"]["resources"] = [p for p in items(state, "pods") if p["metadata"]["name"] != "airflow-scheduler-0"]
    scheduler_sts = find(state, "statefulsets", "airflow-scheduler")
    scheduler_sts["spec"]["replicas"] = 0
    scheduler_sts["status"] = {"availableReplicas": 0, "collisionCount": 0, "observedGeneration": 9, "replicas": 0,
                               "currentRevision": "airflow-scheduler-5f7c9d8b6c",
                               "updateRevision": "airflow-scheduler-5f7c9d8b6c"}
    report = run(state, now)
    missing = by_id(report)["components.missing"]
    assert missing["status"] == "critical"
    assert missing["evidence"][0] == ("scheduler: no pod matches component=scheduler in namespace airflow "
                                      "(StatefulSet airflow/airflow-scheduler: 0/0 ready (scaled to 0))")
    assert missing["evidence"][1].startswith("statsd: ")
    assert component(report, "scheduler")["findings"] == ["components.missing"]
    # the metadata database is optional (external database); the appdb is not
    state["pods"]["resources"] = [p for p in items(state, "pods") if p["metadata"]["name"] != "airflow-postgresql-0"]
    assert component(run(state, now), "PostgreSQL")["status"] == "ok"
    state["pods"]["resources"] = [p for p in items(state, "pods") if p["metadata"]["namespace"] != "databases"]
    report = run(state, now)
    assert component(report, "PostgreSQL")["status"] == "critical"
    assert "no application database pod in namespace databases" in component(report, "PostgreSQL")["evidence"]


def test_task_and_job_pods_are_not_components(healthy):
    report = run(*healthy)
    # the KubernetesPodOperator pods and the finished migration job are left out of pod checks
    assert "7 of 7 pod(s) ready" in by_id(report)["pods.not_ready"]["evidence"][0]


# --------------------------------------------------------------------------------------------------
# DAGs
# --------------------------------------------------------------------------------------------------

def test_dag_status_module_failure_is_critical(healthy):
    state, now = healthy
    state["dag_status"] = {"changed": False, "failed": False, "failed_when_result": False,
                           "msg": "Unable to connect to PostgreSQL postgres@10.43.12.7:5432/postgres: "
                                  "connection refused"}
    serialized = by_id(run(state, now))["dags.serialized"]
    assert serialized["status"] == "critical"
    assert serialized["title"] == "DAG status could not be read"
    assert "connection refused" in serialized["evidence"][0]
    state["dag_status"] = {"skipped": True,
                           "skip_reason": "Service airflow/airflow-postgresql of the metadata database not found"}
    assert "not found" in by_id(run(state, now))["dags.serialized"]["evidence"][0]


def test_one_dag_missing_and_import_errors(healthy):
    state, now = healthy
    status = state["dag_status"]
    problems = ["not in the metadata database (never parsed: file missing from the dags folder, not matching, or "
                "failing to import)", "not listed by GET /api/v2/dags"]
    status["dags"]["calculate_indicators"].update(found=False, serialized=False, serialized_versions=0,
                                                  api_visible=False, problems=problems, ok=False)
    status["missing"] = ["calculate_indicators"]
    status["api_invisible"] = ["calculate_indicators"]
    status["import_errors"] = [{"filename": "/opt/airflow/dags/repo/dags/calculate_indicators.py",
                                "bundle_name": "dags-folder", "timestamp": "2026-11-23T10:14:31+00:00",
                                "stacktrace": "Traceback (most recent call last):\n  ...\n"
                                              "ModuleNotFoundError: No module named 'talib'"}]
    findings = by_id(run(state, now))
    serialized = findings["dags.serialized"]
    assert serialized["status"] == "critical"
    assert serialized["title"] == "Expected DAGs missing: calculate_indicators"
    assert "import error /opt/airflow/dags/repo/dags/calculate_indicators.py: ModuleNotFoundError: No module named " \
           "'talib'" in serialized["evidence"]
    assert "calculate_indicators: not listed by GET /api/v2/dags" in serialized["evidence"]
    assert "fail to import" in serialized["root_cause"]
    assert findings["dags.indicators_after_load"]["status"] == "skipped"
    # all present, but another file does not import: a warning
    state, now = load_state("healthy")
    state["dag_status"]["import_errors"] = [{"filename": "/opt/airflow/dags/repo/dags/experimental.py",
                                             "bundle_name": "dags-folder", "timestamp": "2026-11-23T10:14:31+00:00",
                                             "stacktrace": "  File ...\nSyntaxError: invalid syntax"}]
    serialized = by_id(run(state, now))["dags.serialized"]
    assert serialized["status"] == "warn"
    assert "1 file(s) fail to import" in serialized["title"]
    assert "import error /opt/airflow/dags/repo/dags/experimental.py: SyntaxError: invalid syntax" in \
        serialized["evidence"]


def test_dag_in_database_but_not_in_api(healthy):
    state, now = healthy
    state["dag_status"]["dags"]["historical_load_equities"].update(api_visible=False, ok=False,
                                                                   problems=["not listed by GET /api/v2/dags"])
    state["dag_status"]["api_invisible"] = ["historical_load_equities"]
    serialized = by_id(run(state, now))["dags.serialized"]
    assert serialized["status"] == "critical"
    assert "missing from the API (/api/v2/dags): historical_load_equities" in serialized["evidence"]


def test_stale_or_paused_dags(healthy):
    state, now = healthy
    state["dag_status"]["dags"]["calculate_indicators"].update(is_stale=True, ok=False, problems=[
        "stale: /opt/airflow/dags/repo/dags/calculate_indicators.py no longer defines it (file removed or DAG "
        "renamed)"])
    state["dag_status"]["stale"] = ["calculate_indicators"]
    assert by_id(run(state, now))["dags.serialized"]["status"] == "critical"
    state, now = load_state("healthy")
    state["dag_status"]["paused"] = ["calculate_indicators"]
    serialized = by_id(run(state, now))["dags.serialized"]
    assert serialized["status"] == "ok" and "paused: calculate_indicators" in serialized["evidence"]


@pytest.mark.parametrize("trigger,status,words", [
    ({"requested": True, "unpause_status": 200, "trigger_status": 200, "dag_run_id": "manual__x",
      "final_state": "failed"}, "critical", "failed"),
    ({"requested": True, "unpause_status": 200, "trigger_status": 200, "dag_run_id": "manual__x",
      "final_state": "running"}, "warn", "did not finish"),
    ({"requested": True, "unpause_status": 403, "trigger_status": None, "dag_run_id": None, "final_state": None,
      "error": "Forbidden"}, "critical", "could not be unpaused"),
    ({"requested": True, "unpause_status": None, "trigger_status": None, "dag_run_id": None, "final_state": None,
      "error": "no API token (api-server Service or /auth/token failed)"}, "critical", "could not be unpaused"),
])
def test_trigger_results(healthy, trigger, status, words):
    state, now = healthy
    state["trigger"] = trigger
    result = by_id(run(state, now))["dags.trigger"]
    assert result["status"] == status
    assert words in result["title"]


def test_config_resources_mismatch(healthy):
    state, now = healthy
    pod = find(state, "task_pods", "historical-load-equities-load-exchange-group-0b3460c3")
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "250m", "memory": "512Mi"}}
    config = by_id(run(state, now))["dags.config_resources"]
    assert config["status"] == "critical"
    assert "requests.cpu is 250m, expected 500m" in " ".join(config["evidence"])
    assert "hard-coded" in config["root_cause"]


def test_config_resources_null_limit_means_no_limit(healthy):
    state, now = healthy
    pod = find(state, "task_pods", "historical-load-equities-load-exchange-group-0b3460c3")
    pod["spec"]["containers"][0]["resources"]["limits"] = {"memory": "4Gi"}
    config = by_id(run(state, now))["dags.config_resources"]
    assert config["status"] == "critical"
    assert "limits.memory is 4Gi, expected none (NULL in dag_configuration)" in " ".join(config["evidence"])


def test_config_resources_pod_naming_its_job_is_compared_with_that_row(healthy):
    state, now = healthy
    pod = find(state, "task_pods", "historical-load-equities-load-exchange-group-e83b711b")
    pod["metadata"]["labels"]["job_name"] = "lse"  # lse has no limits; the pod has some
    config = by_id(run(state, now))["dags.config_resources"]
    assert config["status"] == "critical"
    assert "closest row lse" in " ".join(config["evidence"])
    pod["metadata"]["labels"]["job_name"] = "us_markets"
    assert by_id(run(state, now))["dags.config_resources"]["status"] == "ok"


def test_config_query_failures_and_missing_rows(healthy):
    state, now = healthy
    state["dag_config"] = {"failed": True, "query_result": [],
                           "msg": 'Cannot execute SQL: relation "financial_screener.dag_configuration" does not exist'}
    config = by_id(run(state, now))["dags.config_resources"]
    assert config["status"] == "critical" and "appdb_config not applied" in config["root_cause"]
    state["dag_config"] = {"failed": False, "msg": "", "query_result": []}
    config = by_id(run(state, now))["dags.config_resources"]
    assert config["status"] == "critical" and config["title"].startswith("No enabled dag_configuration row")
    state["dag_config"] = {"skipped": True, "skip_reason": "Service databases/postgresql-primary not found"}
    assert by_id(run(state, now))["dags.config_resources"]["status"] == "skipped"


def test_config_without_task_pods_is_not_verified(healthy):
    state, now = healthy
    state.pop("task_pods")
    config = by_id(run(state, now))["dags.config_resources"]
    assert config["status"] == "skipped"
    assert "verify_trigger=true" in config["evidence"][-1]


def test_indicators_after_load(healthy):
    state, now = healthy
    runs = state["dag_runs"]
    runs["calculate_indicators"]["dag_runs"][0]["state"] = "failed"
    result = by_id(run(state, now))["dags.indicators_after_load"]
    assert result["status"] == "critical" and "failed" in result["title"]
    runs["calculate_indicators"]["dag_runs"] = runs["calculate_indicators"]["dag_runs"][1:]
    result = by_id(run(state, now))["dags.indicators_after_load"]
    assert result["status"] == "warn" and "has not run after" in result["title"]
    for item in runs["historical_load_equities"]["dag_runs"]:
        item["state"] = "failed"
    result = by_id(run(state, now))["dags.indicators_after_load"]
    assert result["status"] == "warn" and "has not completed yet" in result["title"]
    state["dag_runs"] = {"historical_load_equities": {"detail": "Unauthorized"}, "calculate_indicators": {}}
    assert by_id(run(state, now))["dags.indicators_after_load"]["status"] == "skipped"


# --------------------------------------------------------------------------------------------------
# Velero and UI
# --------------------------------------------------------------------------------------------------

def test_velero_variants(healthy):
    state, now = healthy
    backups = items(state, "backups")
    newest = find(state, "backups", "velero-daily-20261123020000")

    state["backups"] = {"resources": [], "failed": False}
    assert by_id(run(state, now))["velero.backup"]["status"] == "critical"

    state["backups"] = {"resources": backups}
    newest["status"]["phase"] = "Failed"
    newest["status"]["failureReason"] = "error getting backup store: access denied"
    velero = by_id(run(state, now))["velero.backup"]
    assert velero["status"] == "critical" and "access denied" in velero["evidence"][0]
    newest["status"]["phase"] = "InProgress"
    # while tonight's backup runs, yesterday's (24h56m old) is the newest finished one
    velero = by_id(run(state, "2026-11-23T02:03:00Z"))["velero.backup"]
    assert velero["status"] == "ok"
    assert any("newest backup still running" in e for e in velero["evidence"])

    newest["status"]["phase"] = "Completed"
    velero = by_id(run(state, "2026-11-25T10:15:00Z"))["velero.backup"]
    assert velero["status"] == "warn" and "older than 26h" in velero["root_cause"]

    for backup in backups:
        backup["spec"]["includedNamespaces"] = ["airflow"]
    velero = by_id(run(state, now))["velero.backup"]
    assert velero["status"] == "critical" and "no backup includes namespace databases" in velero["evidence"]

    for backup in backups:
        backup["spec"]["includedNamespaces"] = ["*"]
        backup["spec"]["excludedResources"] = ["persistentvolumeclaims"]
    velero = by_id(run(state, now))["velero.backup"]
    assert velero["status"] == "critical" and "PVCs EXCLUDED" in velero["evidence"][0]

    for backup in backups:
        backup["spec"].pop("excludedResources")
        backup["spec"]["defaultVolumesToFsBackup"] = False
        backup["spec"]["snapshotVolumes"] = False
    velero = by_id(run(state, now))["velero.backup"]
    assert velero["status"] == "warn" and "snapshotVolumes=false" in velero["evidence"][0]


def test_ui_variants(healthy):
    state, now = healthy
    state["ui"] = {"changed": False, "failed": False, "failed_when_result": False, "status": -1,
                   "url": "https://airflow.stratdata.org/",
                   "msg": "Request failed: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                          "self-signed certificate (_ssl.c:992)>"}
    ui = by_id(run(state, now))["ui.ingress"]
    assert ui["status"] == "critical" and "certificate" in ui["title"]
    state["ui"] = {"changed": False, "failed": False, "status": -1, "url": "https://airflow.stratdata.org/",
                   "msg": "Request failed: <urlopen error [Errno 111] Connection refused>"}
    ui = by_id(run(state, now))["ui.ingress"]
    assert ui["status"] == "critical" and "does not answer" in ui["title"]
    state["ui"] = {"changed": False, "failed": False, "status": 404, "url": "https://airflow.stratdata.org/",
                   "msg": "Status code was 404 and not [200]: HTTP Error 404: Not Found"}
    assert by_id(run(state, now))["ui.ingress"]["status"] == "critical"
    state, now = load_state("healthy")
    state["ingresses"] = {"resources": []}
    ui = by_id(run(state, now))["ui.ingress"]
    assert ui["status"] == "warn" and ui["evidence"][0] == "no Ingress with host airflow.stratdata.org"
    state.pop("ui")
    assert by_id(run(state, now))["ui.ingress"]["status"] == "skipped"


def test_every_finding_type_is_reported_in_a_fixed_order(broken, healthy):
    expected = ["cluster.api", "dags.volume", "storage.multi_attach", "storage.rwo_shared_nodes",
                "storage.pvc_unbound", "pods.stuck_init", "pods.not_ready", "components.missing", "dags.serialized",
                "dags.trigger", "dags.config_resources", "dags.indicators_after_load", "velero.backup", "ui.ingress",
                "ingress.tls", "alerts.firing", "snapshot.collection"]
    for state, now in (broken, healthy):
        assert [f["id"] for f in run(state, now)["findings"]] == expected


# --------------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------------

def test_markdown_of_the_broken_state(broken):
    report = run(*broken)
    markdown = A.render_markdown(report, context={"Kube host": "pi-master"})
    assert markdown.startswith("# pi-cluster assessment\n")
    assert "- Kube host: pi-master" in markdown
    assert "**Overall status: \u274c CRITICAL**" in markdown
    assert "| Component | Status | Evidence |" in markdown
    assert "| scheduler | \u274c | airflow-scheduler-0 on pi-worker-03: Init:0/1" in markdown
    assert "| triggerer | \u2705 |" in markdown
    critical = markdown.split("## Critical issues")[1].split("## Warnings")[0]
    assert ("### 1. DAG volume airflow/airflow-dags is ReadWriteOnce: Multi-Attach blocks airflow-scheduler-0"
            in critical)
    assert ("### 2. No DAGs serialized: none of the 2 expected DAGs is in serialized_dag or the API "
            "(`dags.serialized`)") in critical
    assert critical.count("**Root cause:**") == 2
    assert critical.count("**Impact:**") == 2
    assert critical.count("**Resolution:**") == 2
    assert "### 3." not in critical
    checklist = markdown.split("## Testing checklist")[1].split("## All findings")[0]
    assert "- [ ] \u274c Scheduler running with all containers ready" in checklist
    assert "- [x] \u2705 UI answers on the ingress host airflow.stratdata.org with valid TLS" in checklist
    assert checklist.count("- [") == 7


def test_markdown_of_the_healthy_state_is_all_green(healthy):
    markdown = A.render_markdown(run(*healthy))
    assert "**Overall status: \u2705 OK**" in markdown
    assert "\u274c" not in markdown and "\u26a0" not in markdown and "\u23ed" not in markdown
    assert "## Critical issues\n\nNone.\n" in markdown
    assert "## Warnings" not in markdown
    rows = [line for line in markdown.split("## Components")[1].split("## Critical")[0].splitlines()
            if line.startswith("| ") and not line.startswith("| Component") and not line.startswith("| ---")]
    assert len(rows) == 6 and all(" | \u2705 | " in row for row in rows)
    assert markdown.count("- [x] \u2705 ") == 7


def test_json_twin_round_trips(broken, healthy):
    for state, now in (broken, healthy):
        report = run(state, now)
        text = A.render_json(report)
        # two-space indent, keys sorted, one trailing newline, non-ASCII written as is
        assert text.startswith('{\n  "alerts": ') and text.endswith("\n}\n")
        top = re.findall(r'^  "([a-z_]+)": ', text, re.M)
        assert top == ["alerts", "alerts_collected", "checklist", "components", "counts", "critical_ids",
                       "findings", "generated_at", "not_collected", "not_run_reason", "options", "overall_status",
                       "schema_version", "source", "summary"]
        loaded = json.loads(text)
        assert loaded["schema_version"] == 1
        assert loaded["generated_at"] == now
        assert set(loaded) >= {"overall_status", "summary", "counts", "critical_ids", "components", "findings",
                               "checklist"}
        for item in loaded["findings"]:
            assert set(item) >= {"id", "title", "status", "evidence", "root_cause", "impact", "resolution"}
            assert item["status"] in ("ok", "warn", "critical", "skipped")
    broken_text = A.render_json(run(*broken))
    assert "\u2014 see dags.volume" in broken_text and "\\u2014" not in broken_text
    assert json.loads(broken_text)["counts"] == {"ok": 10, "warn": 1, "critical": 2, "skipped": 4}


def test_markdown_escapes_table_cells():
    report = A.assess({"api": {"available": False, "reason": "a|b\nc"}},
                      dict(ASSESSMENT_NAMES, now="2026-11-24T00:00:00Z"))
    table_line = next(line for line in A.render_markdown(report).splitlines() if line.startswith("| `cluster.api`"))
    assert "a\\|b c" in table_line
