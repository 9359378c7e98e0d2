"""Helpers of the assessment: kubectl STATUS column, quantities, DAG status shapes, Velero and row counts,
and the two filters of the restore drill (loaded the way Ansible loads them)."""

import importlib.util

import pytest


from ansible_collections.stratdata.pi_cluster.plugins.module_utils import assessment as A  # noqa: E402
from conftest import REPO


def _pod(init_statuses=None, statuses=None, phase="Running", init_specs=None, deleting=False, containers=1):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "airflow", "uid": "u"},
           "spec": {"nodeName": "pi-worker-02", "containers": [{"name": "c%d" % i} for i in range(containers)],
                    "initContainers": init_specs or [{"name": "i%d" % i} for i in range(len(init_statuses or []))]},
           "status": {"phase": phase, "initContainerStatuses": init_statuses or [],
                      "containerStatuses": statuses or []}}
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z"
    return pod


def _c(name, state, ready=False, started=False):
    return {"name": name, "ready": ready, "started": started, "restartCount": 0, "state": state}


@pytest.mark.parametrize("pod,expected", [
    (_pod([_c("i0", {"waiting": {"reason": "PodInitializing"}})],
          [_c("c0", {"waiting": {"reason": "PodInitializing"}})], "Pending"), "Init:0/1"),
    (_pod([_c("i0", {"terminated": {"exitCode": 0, "reason": "Completed"}}), _c("i1", {"running": {}}, started=True)],
          [], "Pending"), "Init:1/2"),
    (_pod([_c("i0", {"waiting": {"reason": "CrashLoopBackOff"}})], [], "Pending"), "Init:CrashLoopBackOff"),
    (_pod([_c("i0", {"terminated": {"exitCode": 1, "reason": "Error"}})], [], "Pending"), "Init:Error"),
    (_pod([_c("i0", {"terminated": {"exitCode": 137}})], [], "Pending"), "Init:ExitCode:137"),
    (_pod([], [_c("c0", {"waiting": {"reason": "CrashLoopBackOff"}})]), "CrashLoopBackOff"),
    (_pod([], [_c("c0", {"waiting": {"reason": "ImagePullBackOff"}})], "Pending"), "ImagePullBackOff"),
    (_pod([], [_c("c0", {"running": {}}, ready=True, started=True)]), "Running"),
    (_pod([], [_c("c0", {"terminated": {"exitCode": 0, "reason": "Completed"}})], "Succeeded"), "Completed"),
    (_pod([], [_c("c0", {"running": {}}, ready=True, started=True)], deleting=True), "Terminating"),
    (_pod([], [], "Pending"), "Pending"),
    # native sidecar (restartPolicy Always) that started counts as initialised
    (_pod([_c("i0", {"running": {}}, started=True)], [_c("c0", {"running": {}}, ready=True, started=True)],
          init_specs=[{"name": "i0", "restartPolicy": "Always"}]), "Running"),
])
def test_kubectl_status_column(pod, expected):
    assert A.pod_display_status(pod) == expected


@pytest.mark.parametrize("left,right,equal", [
    ("500m", "0.5", True), ("1", "1000m", True), ("1Gi", "1024Mi", True), ("1G", "1000M", True),
    ("1Gi", "1G", False), ("2", 2, True), ("1e3", "1k", True), ("128974848", "129e6", False),
    ("123Mi", "128974848", True), ("100m", "0.1", True), ("abc", "abc", True), ("abc", "abd", False),
])
def test_quantities(left, right, equal):
    assert A.quantities_equal(left, right) is equal


def test_parse_quantity_rejects_garbage():
    assert A.parse_quantity("12 apples") is None
    assert A.parse_quantity(None) is None
    assert A.parse_quantity(True) is None


def test_objects_accepts_every_shape():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}
    assert A.objects({"apiVersion": "v1", "kind": "List", "items": [pod], "metadata": {}}) == [pod]
    assert A.objects({"resources": [pod], "changed": False}) == [pod]
    assert A.objects({"results": [{"resources": [pod]}, {"resources": [pod]}, {"skipped": True}]}) == [pod, pod]
    assert A.objects([pod, {"resources": [pod]}]) == [pod, pod]
    assert A.objects(None) == [] and A.objects("text") == []


def _dag(found=True, serialized=True, stale=False, api=True, problems=()):
    return {"found": found, "serialized": serialized, "serialized_versions": int(serialized), "is_stale": stale,
            "is_paused": False, "api_visible": api, "problems": list(problems), "ok": not problems}


@pytest.mark.parametrize("result,expected", [
    # the shape of stratdata.pi_cluster.airflow_dag_status
    ({"dags": {"a": _dag(), "b": _dag(found=False, serialized=False, api=False, problems=["not in the metadata"])},
      "missing": ["b"], "stale": [], "not_serialized": [], "api_invisible": ["b"], "api_checked": True},
     (["b"], ["b"], {"a"})),
    ({"dags": {"a": _dag(stale=True, problems=["stale"]), "b": _dag()}, "missing": [], "stale": ["a"],
      "not_serialized": [], "api_invisible": [], "api_checked": True}, (["a"], [], {"a", "b"})),
    ({"dags": {"a": _dag(serialized=False, api=None), "b": _dag(api=None)}, "missing": [], "stale": [],
      "not_serialized": ["a"], "api_invisible": [], "api_checked": False}, (["a"], [], None)),
    # a plain list of serialized dag ids, no API information
    ({"dags": ["a", "b"], "import_errors": []}, ([], [], None)),
])
def test_dag_status_shapes(result, expected):
    state = A.normalize_dag_status(result, ["a", "b"])
    assert state["checked"]
    assert (state["missing_serialized"], state["missing_api"], state["in_api"]) == expected


def test_dag_status_without_information_is_an_error():
    assert not A.normalize_dag_status({"msg": "timeout"}, ["a"])["checked"]
    assert not A.normalize_dag_status(None, ["a"])["checked"]
    assert A.normalize_dag_status({"skipped": True, "skip_reason": "why"}, ["a"])["error"].endswith("why")


def test_multi_attach_event_messages():
    events = [
        {"reason": "FailedAttachVolume", "involvedObject": {"name": "p1", "namespace": "airflow"}, "count": 3,
         "message": 'Multi-Attach error for volume "pvc-1" Volume is already used by pod(s) a-0, b-1'},
        {"reason": "FailedAttachVolume", "involvedObject": {"name": "p2", "namespace": "airflow"},
         "message": 'Multi-Attach error for volume "pvc-2" Volume is already exclusively attached to one node and '
                    "can't be attached to another"},
        {"reason": "FailedAttachVolume", "involvedObject": {"name": "p3", "namespace": "airflow"},
         "message": "AttachVolume.Attach failed for volume \"pvc-3\" : rpc error: code = DeadlineExceeded"},
    ]
    parsed = A.multi_attach_events(events)
    assert [(e["pod"], e["volume"], e["holders"]) for e in parsed] == [("p1", "pvc-1", ["a-0", "b-1"]),
                                                                       ("p2", "pvc-2", [])]


def _backup(name, start, phase, namespaces=None, excluded=None):
    return {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "namespace": "velero"},
            "spec": {"includedNamespaces": namespaces or [], "excludedNamespaces": excluded or []},
            "status": {"phase": phase, "startTimestamp": start}}


def test_newest_backup_selection():
    backups = {"resources": [
        _backup("all-old", "2026-11-20T02:00:00Z", "Completed"),
        _backup("db-new", "2026-11-22T02:00:00Z", "Completed", ["databases"]),
        _backup("all-running", "2026-11-23T02:00:00Z", "InProgress", ["*"]),
        _backup("airflow-only", "2026-11-23T01:00:00Z", "Completed", ["airflow"]),
        _backup("all-but-db", "2026-11-23T01:30:00Z", "Completed", [], ["databases"]),
    ]}
    assert A.newest_backup(backups, "databases", ["Completed"])["metadata"]["name"] == "db-new"
    assert A.newest_backup(backups, "databases")["metadata"]["name"] == "all-running"
    assert A.newest_backup(backups, "airflow", ["Completed"])["metadata"]["name"] == "all-but-db"
    assert A.newest_backup(backups, "kube-system", ["Failed"]) is None


def test_row_count_comparison():
    live = [{"table_name": "dag_configuration", "row_count": 4}, {"table_name": "exchange_groups", "row_count": 4},
            {"table_name": "schema_migrations", "row_count": 2}, {"table_name": "prices", "row_count": 1200}]
    same = [dict(r) for r in live]
    result = A.compare_row_counts(live, same)
    assert result["ok"] and result["problems"] == [] and result["live_total"] == result["restored_total"] == 1210
    grown = [dict(r) for r in live]
    grown[3]["row_count"] = 1100  # rows written since the backup
    assert A.compare_row_counts(live, grown)["ok"]
    assert not A.compare_row_counts(live, grown, strict=True)["ok"]
    assert {t["table"]: t["verdict"] for t in A.compare_row_counts(live, grown)["tables"]}["prices"] == \
        "live grew since backup"
    broken = [r for r in same if r["table_name"] != "prices"] + [{"table_name": "exchange_groups", "row_count": 0}]
    broken = [r for r in broken if not (r["table_name"] == "exchange_groups" and r["row_count"] == 4)]
    result = A.compare_row_counts(live, broken)
    assert not result["ok"]
    assert "prices: missing in the restored database (live has 1200 rows)" in result["problems"]
    assert "exchange_groups: restored table is empty, live has 4 rows" in result["problems"]
    more = [dict(r) for r in live]
    more[0]["row_count"] = 9
    assert "dag_configuration: restored 9 rows > live 4 rows" in A.compare_row_counts(live, more)["problems"]
    assert not A.compare_row_counts([], [])["ok"]
    assert A.compare_row_counts({"a": 1}, {"a": 1})["ok"]


def _load_filter_module():
    spec = importlib.util.spec_from_file_location("pi_cluster_assessment_filters",
                                                  REPO / "plugins" / "filter" / "assessment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()


def test_filters():
    filters = _load_filter_module()
    assert set(filters) == {"velero_newest_backup", "appdb_row_count_diff"}
    backups = [_backup("b1", "2026-11-22T02:00:00Z", "Completed", ["databases"]),
               _backup("b2", "2026-11-23T02:00:00Z", "PartiallyFailed", ["databases"])]
    assert filters["velero_newest_backup"](backups, "databases")["metadata"]["name"] == "b1"
    assert filters["velero_newest_backup"](backups, "databases", ["PartiallyFailed"])["metadata"]["name"] == "b2"
    assert filters["velero_newest_backup"](backups, "airflow") is None
    assert filters["appdb_row_count_diff"]([{"table_name": "t", "row_count": 2}],
                                           [{"table_name": "t", "row_count": 1}], True)["ok"] is False
