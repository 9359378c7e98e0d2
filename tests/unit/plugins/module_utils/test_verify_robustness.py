"""The assessment never raises on malformed input (issue 15), and says what it could not read.

- the four shapes the adversarial suite found (``kind: null``, ``ownerReferences: [null]``,
  ``status: "Running"``, a non-numeric HTTP status), each with the finding it must still give;
- Hypothesis: recorded objects with any field replaced by arbitrary JSON, and arbitrary JSON in every state
  key, go through the normalisation and the whole assessment without an exception.
"""

import copy
import json

from conftest import ASSESSMENT_NAMES, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


from ansible_collections.stratdata.pi_cluster.plugins.module_utils import assessment as A  # noqa: E402

STATES = REPO / "tests" / "data" / "cluster_states"
KINDS = ("pods", "events", "pvcs", "pvs", "statefulsets", "deployments", "backups", "ingresses")
NOW = "2026-11-20T09:42:17Z"


def recorded(state, kind):
    path = STATES / state / (kind + ".json")
    return json.loads(path.read_text())["items"] if path.exists() else []


def broken_state():
    state = {kind: {"resources": recorded("broken", kind)} for kind in KINDS}
    extra = json.loads((STATES / "broken" / "ansible.json").read_text())
    for key in ("api", "dag_status", "dag_config", "dag_runs", "trigger", "ui"):
        state[key] = extra[key]
    return state


def by_id(report):
    return {f["id"]: f for f in report["findings"]}


# --------------------------------------------------------------------------------------------------
# the four shapes of issue 15
# --------------------------------------------------------------------------------------------------

def test_kind_null_is_still_read_as_an_object():
    state = broken_state()
    scheduler = next(p for p in state["pods"]["resources"] if p["metadata"]["name"] == "airflow-scheduler-0")
    scheduler["kind"] = None
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    # the scheduler pod is still seen (stuck in Init behind the Multi-Attach)
    assert report["critical_ids"] == ["dags.volume", "dags.serialized"]
    assert "airflow/airflow-scheduler-0" in by_id(report)["dags.volume"]["blocked_pods"]


def test_owner_references_null_entry():
    state = broken_state()
    for pod in state["pods"]["resources"]:
        pod["metadata"]["ownerReferences"] = [None]
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    assert report["critical_ids"] == ["dags.volume", "dags.serialized"]


def test_status_as_a_string_is_a_pod_without_status():
    state = broken_state()
    api_server = next(p for p in state["pods"]["resources"] if p["metadata"]["name"].startswith("airflow-api-server"))
    api_server["status"] = "Running"
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    row = next(c for c in report["components"] if c["name"] == "api-server")
    # a pod whose status is not an object is not proven running: the component is not ok
    assert row["status"] == "critical"
    assert any(e.startswith("airflow-api-server-6d4b9c7f8-9zq4m on pi-worker-04: Unknown") for e in row["evidence"])


def test_non_numeric_http_status_of_the_ui_and_the_trigger():
    state = broken_state()
    state["ui"] = {"status": "two hundred", "msg": "garbled", "url": "https://airflow.stratdata.org/"}
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    ui = by_id(report)["ui.ingress"]
    assert ui["status"] == "critical" and ui["title"] == "UI on airflow.stratdata.org does not answer"
    assert "HTTP two hundred" in " ".join(ui["evidence"])
    healthy = json.loads((STATES / "healthy" / "ansible.json").read_text())
    state["dag_status"] = healthy["dag_status"]
    state["trigger"] = {"requested": True, "unpause_status": "OK", "trigger_status": None}
    trigger = by_id(A.assess(state, dict(ASSESSMENT_NAMES, now=NOW)))["dags.trigger"]
    assert trigger["status"] == "critical" and trigger["title"].endswith("could not be unpaused/triggered")


def test_results_of_the_wrong_type_are_absent_not_fatal():
    state = broken_state()
    for key in ("dag_status", "dag_config", "dag_runs", "trigger", "ui"):
        state[key] = "garbage"
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    findings = by_id(report)
    assert findings["dags.serialized"]["evidence"] == ["the DAG status check did not run"]
    assert findings["ui.ingress"]["status"] == "skipped"


# --------------------------------------------------------------------------------------------------
# property: nothing JSON-shaped raises
# --------------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)

RECORDED = [obj for state in ("broken", "healthy") for kind in KINDS + ("task_pods",) for obj in
            recorded(state, kind)]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


PATHS = [(index, path) for index, obj in enumerate(RECORDED) for path in _paths(obj) if path]


def _mutate(index_path_values):
    objs = {}
    for (index, path), value in index_path_values:
        obj = objs.setdefault(index, copy.deepcopy(RECORDED[index]))
        target = obj
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    return list(objs.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=6))
def test_mutated_recorded_objects_never_raise(mutations):
    mutated = _mutate(mutations)
    normalised = A.objects(mutated)
    assert all(isinstance(obj, dict) for obj in normalised)
    state = {"pods": mutated, "events": mutated, "pvcs": mutated, "pvs": mutated, "statefulsets": mutated,
             "deployments": mutated, "backups": mutated, "ingresses": mutated, "task_pods": mutated,
             "secrets": mutated, "certificates": mutated, "clusterissuers": mutated, "schedules": mutated}
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    assert report["overall_status"] in ("ok", "warn", "critical")
    A.render_markdown(report)
    A.render_json(report)


STATE_KEYS = ("api", "pods", "events", "pvcs", "pvs", "statefulsets", "deployments", "backups", "ingresses",
              "task_pods", "dag_status", "dag_config", "dag_runs", "trigger", "ui", "alerts", "secrets",
              "certificates", "clusterissuers", "schedules")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(STATE_KEYS), JSON, max_size=8))
def test_arbitrary_json_in_every_state_key_never_raises(state):
    report = A.assess(state, dict(ASSESSMENT_NAMES, now=NOW))
    assert report["overall_status"] in ("ok", "warn", "critical", "not_run")
    A.render_markdown(report)
