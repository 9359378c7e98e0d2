# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DAG findings: serialized DAGs, the trigger, dag_configuration resources of task pods, and
calculate_indicators after the load."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CRITICAL,
    OK,
    SKIPPED,
    WARN,
    _as_int,
    _dict,
    _short,
    _unique,
    describe_pod,
    finding,
    format_time,
    labels_of,
    meta,
    objects,
    parse_time,
    quantities_equal,
    ref,
)

# DAG status ----------------------------------------------------------------------------------------

def _as_list(value):
    if value is None or isinstance(value, dict):
        return []
    if isinstance(value, (list, tuple, set)):
        return [v for v in value if isinstance(v, str)]
    return [value]


def normalize_dag_status(result, expected):
    """Read the registered result of stratdata.pi_cluster.airflow_dag_status.

    That module returns ``dags`` (per expected dag_id: found, serialized, is_stale, is_paused, api_visible,
    problems, ok), the lists ``missing`` (not in table dag), ``not_serialized``, ``stale``, ``paused``,
    ``api_invisible``, ``import_errors`` ([{filename, bundle_name, timestamp, stacktrace}]), ``api_checked``
    and, when it fails, ``msg``. Registered with ``failed_when: false`` a failure keeps everything but
    ``failed``. A connection error leaves only ``msg``: then nothing is known.

    Returns dict: checked (bool), error (str|None), missing_serialized, missing_api (sorted lists of expected
    ids), in_api (set, or None when the API was not asked), problems (["dag: problem"]), import_errors
    (["file: last line"]), serialized_count (int|None, only if the module reports one), paused (list).
    """
    if not result or not isinstance(result, dict):
        return {"checked": False, "error": "the DAG status check did not run" if not result else
                "the DAG status result is not an object: %s" % _short(result)}
    if result.get("skipped"):
        return {"checked": False, "error": "the DAG status check was skipped: %s" % result.get(
            "skip_reason", result.get("msg", "no reason given"))}
    details = {}
    raw = result.get("dags")
    if isinstance(raw, dict):
        for dag_id, item in raw.items():
            details[dag_id] = dict(item if isinstance(item, dict) else {}, dag_id=dag_id)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("dag_id"), str) and item["dag_id"]:
                details[item["dag_id"]] = item
            elif isinstance(item, str):
                details[item] = {"dag_id": item, "serialized": True}
    not_serialized = set()
    not_in_api = set()
    api_known = bool(result.get("api_checked"))
    for dag_id, item in details.items():
        if item.get("found") is False or item.get("serialized") is False or item.get("is_stale"):
            not_serialized.add(dag_id)
        api_flag = item.get("api_visible", item.get("in_api"))
        if api_flag is not None:
            api_known = True
            if not api_flag:
                not_in_api.add(dag_id)
    for key in ("missing", "not_serialized", "stale", "missing_serialized"):
        not_serialized.update(_as_list(result.get(key)))
    for key in ("api_invisible", "missing_in_api"):
        if key in result:
            api_known = api_known or bool(result.get("api_checked", True))
        not_in_api.update(_as_list(result.get(key)))
    errors = []
    raw_errors = result.get("import_errors") or []
    if isinstance(raw_errors, dict):
        raw_errors = [{"filename": k, "stacktrace": v} for k, v in raw_errors.items()]
    for item in raw_errors:
        if isinstance(item, dict):
            trace = str(item.get("stacktrace") or item.get("stack_trace") or item.get("error") or "").strip()
            last = trace.splitlines()[-1] if trace else ""
            errors.append("%s: %s" % (item.get("filename") or "?", last))
        else:
            errors.append(str(item))
    problems = []
    for dag_id in expected:
        for problem in _as_list((details.get(dag_id) or {}).get("problems")):
            problems.append("%s: %s" % (dag_id, problem))
    count = result.get("serialized_dag_count")
    known = bool(details) or bool(not_serialized) or bool(not_in_api) or count is not None
    if not known:
        # a connection or query error: registered with failed_when: false, only msg is left
        return {"checked": False, "error": str(result.get("msg") or "the DAG status check returned no DAG "
                                                                     "information")}
    missing_serialized = sorted(d for d in expected if d in not_serialized or (details and d not in details))
    missing_api = sorted(d for d in expected if api_known and d in not_in_api)
    return {
        "checked": True,
        "error": None,
        "missing_serialized": missing_serialized,
        "missing_api": missing_api,
        "in_api": ({d for d in expected if d not in not_in_api} if api_known else None),
        "problems": problems,
        "import_errors": errors,
        "serialized_count": count,
        "paused": sorted(d for d in expected if d in _as_list(result.get("paused"))),
        "msg": result.get("msg"),
    }


def check_dags_serialized(ctx, dag_state):
    fid = "dags.serialized"
    expected = list(ctx.options["expected_dag_ids"])
    if not dag_state["checked"]:
        return finding(
            fid, "DAG status could not be read", CRITICAL, [dag_state["error"]],
            root_cause="The metadata database or the Airflow API did not answer the DAG status check.",
            impact="Nothing is known about the DAGs; the UI most likely shows none either.",
            resolution="Check the api-server and the metadata PostgreSQL pods, then re-run "
                       "`ansible-playbook playbooks/verify.yml`.",
        )
    evidence = []
    if dag_state["serialized_count"] is not None:
        evidence.append("serialized_dag rows: %s" % dag_state["serialized_count"])
    evidence.append("expected DAGs: %s" % ", ".join(expected))
    if dag_state["missing_serialized"]:
        evidence.append("missing from serialized_dag: %s" % ", ".join(dag_state["missing_serialized"]))
    if dag_state["missing_api"]:
        evidence.append("missing from the API (/api/v2/dags): %s" % ", ".join(dag_state["missing_api"]))
    if dag_state["in_api"] is None:
        evidence.append("API not checked by the DAG status module")
    evidence.extend(dag_state["problems"])
    for error in dag_state["import_errors"]:
        evidence.append("import error %s" % error)
    if dag_state["paused"]:
        evidence.append("paused: %s" % ", ".join(dag_state["paused"]))
    if not dag_state["missing_serialized"] and not dag_state["missing_api"]:
        ok_line = "all expected DAGs serialized%s" % (" and listed by the API" if dag_state["in_api"] is not None
                                                      else "")
        evidence.insert(0, ok_line)
        if dag_state["import_errors"]:
            return finding(
                fid, "Expected DAGs present, but %d file(s) fail to import" % len(dag_state["import_errors"]), WARN,
                evidence,
                root_cause="Some DAG files raise on import (see the import errors).",
                impact="DAGs defined in those files are missing or stale.",
                resolution="Fix the DAG files in git; the dag-processor picks them up on the next sync.",
            )
        return finding(fid, "Expected DAGs are serialized and listed by the API", OK, evidence)
    volume = ctx.findings.get("dags.volume")
    nothing = dag_state["serialized_count"] == 0 or set(dag_state["missing_serialized"]) == set(expected)
    processors = [p for p in ctx.pods if (ctx.component_of.get(p["ref"]) or {}).get("name") == "dag-processor"]
    processor_down = not any(p["ready"] for p in processors)
    volume_bad = bool(volume) and volume["status"] in (CRITICAL, WARN)
    if dag_state["import_errors"]:
        cause = ("The dag-processor found the files but they fail to import (see the import errors), so they are "
                 "not serialized.")
    elif processor_down:
        cause = "The dag-processor is not running (%s), so nothing is parsed or serialized." % (
            "; ".join(describe_pod(p) for p in processors) or "no dag-processor pod")
        if volume_bad:
            cause += (" It waits for the ReadWriteOnce DAG volume (see dags.volume); and the DAG files that had been "
                      "copied into that volume by hand are gone, so even a running dag-processor would find an "
                      "empty folder: DAGs must come from git (git-sync) or be copied by the airflow role.")
    elif _processors_without_dags(processors):
        blind = _processors_without_dags(processors)
        cause = ("The dag-processor is running but its DAG files are missing: %s has no DAG volume and no git-sync "
                 "container, so it parses an empty folder." % ", ".join(p["name"] for p in blind))
        evidence.append("dag-processor running but DAG files missing: %s mounts no DAG volume and runs no git-sync"
                        % ", ".join(p["name"] for p in blind))
    elif volume_bad and nothing:
        cause = ("The dag-processor serializes nothing because the DAG folder it reads is empty: the DAG files were "
                 "copied by hand into the ReadWriteOnce DAG volume (not delivered from git) and vanished when the "
                 "volume/pods were re-created.")
    elif nothing:
        cause = ("The dag-processor serializes nothing: the DAG folder is empty (git-sync not configured or failing, "
                 "or the DAG volume empty).")
    else:
        cause = "Some expected DAG files are missing from the DAG folder, or the dag-processor has not parsed them."
    if _processors_without_dags(processors) and not dag_state["import_errors"] and not processor_down:
        title = "No DAGs serialized: dag-processor running but DAG files missing"
    elif dag_state["serialized_count"] == 0:
        title = "No DAGs serialized: serialized_dag has 0 rows"
    elif set(dag_state["missing_serialized"]) == set(expected):
        title = "No DAGs serialized: none of the %d expected DAGs is in serialized_dag or the API" % len(expected)
    else:
        title = "Expected DAGs missing: %s" % ", ".join(_unique(dag_state["missing_serialized"] +
                                                                 dag_state["missing_api"]))
    return finding(
        fid, title, CRITICAL, evidence,
        root_cause=cause,
        impact="The UI and the API show no DAGs (the api-server reads serialized_dag only); nothing can be unpaused, "
               "triggered or scheduled.",
        resolution=("Deliver DAGs from git (git-sync) or an RWX volume filled by the airflow role, never by hand: "
                    "`ansible-playbook playbooks/repair-dags.yml -e repair_apply=true`; then check "
                    "`kubectl -n airflow logs deploy/airflow-dag-processor` and the import errors."),
    )


def _processors_without_dags(processors):
    """Ready dag-processor pods that mount no DAG volume and run no git-sync: they parse an empty folder."""
    return [p for p in processors if p["ready"] and "dags" not in p["claims"].values()
            and not any("dags" in claim for claim in p["claims"])
            and not any("git-sync" in (name or "") for name in p["container_names"] + p["init_names"])]


def _dag_missing(ctx, dag_state, dag_id):
    return dag_state["checked"] and dag_id in dag_state["missing_serialized"]


def check_trigger(ctx, dag_state):
    fid = "dags.trigger"
    dag_id = ctx.options["config_dag_id"]
    trigger = _dict(ctx.state.get("trigger"))
    if _dag_missing(ctx, dag_state, dag_id):
        return finding(fid, "Trigger of %s not possible" % dag_id, SKIPPED,
                       ["blocked: %s is not serialized (see dags.serialized)" % dag_id])
    if not trigger.get("requested"):
        return finding(fid, "Trigger of %s not requested" % dag_id, SKIPPED,
                       ["not run: pass -e verify_trigger=true to unpause and trigger %s and wait for it" % dag_id])
    evidence = []
    for key, label in (("unpause_status", "PATCH is_paused=false"), ("trigger_status", "POST dagRuns")):
        if trigger.get(key) is not None:
            evidence.append("%s: HTTP %s" % (label, trigger[key]))
    if trigger.get("dag_run_id"):
        evidence.append("run %s final state: %s" % (trigger["dag_run_id"], trigger.get("final_state") or "unknown"))
    if trigger.get("error"):
        evidence.append("error: %s" % trigger["error"])
    state = trigger.get("final_state")
    failed_http = any(trigger.get(k) is not None and not 200 <= (_as_int(trigger[k]) or 0) < 300
                      for k in ("unpause_status", "trigger_status"))
    if failed_http or (trigger.get("error") and not trigger.get("dag_run_id")):
        return finding(
            fid, "%s could not be unpaused/triggered" % dag_id, CRITICAL, evidence,
            root_cause="The REST API refused the request (authentication, permissions or the DAG is unknown to it).",
            impact="The DAG cannot be started from the API or the UI.",
            resolution="Check the admin credentials (vault_airflow_admin_password) and the api-server logs.",
        )
    if state == "success":
        return finding(fid, "%s unpaused, triggered and succeeded" % dag_id, OK, evidence)
    if state == "failed":
        return finding(
            fid, "Triggered run of %s failed" % dag_id, CRITICAL, evidence,
            root_cause="A task of the run failed (see the task logs in the UI).",
            impact="The historical load does not complete; calculate_indicators has no fresh data.",
            resolution="Open the run in the UI, read the failed task's log, fix and re-trigger.",
        )
    return finding(
        fid, "Triggered run of %s did not finish in time (state %s)" % (dag_id, state or "unknown"), WARN, evidence,
        root_cause="The run is still queued or running when the wait ended (long load, no free slot, or pods "
                   "pending).",
        impact="Success is not proven yet.",
        resolution="Raise verify_trigger_wait_seconds or watch the run in the UI.",
    )


# dag_configuration ---------------------------------------------------------------------------------
# financial_screener.dag_configuration (roles/appdb_config, migration 0001): one row per (dag_id, job_name)
# with cpu_request, memory_request (NOT NULL), cpu_limit, memory_limit (NULL = no limit set), enabled.
# historical_load_equities maps one KubernetesPodOperator pod per enabled row at run time. The verify role
# reads the rows with stratdata.pi_cluster.appdb_dag_config_info (see _config_rows).

ROW_RESOURCE_COLUMNS = (
    ("requests", "cpu", "cpu_request"),
    ("requests", "memory", "memory_request"),
    ("limits", "cpu", "cpu_limit"),
    ("limits", "memory", "memory_limit"),
)


# Pod labels that may name the row (job_name) a mapped pod was built from.
JOB_LABELS = ("job_name", "job-name", "stratdata.org/job-name", "financial_screener/job_name")


def row_resources(row):
    """{requests: {...}, limits: {...}} from one dag_configuration row (only the columns that are set)."""
    result = {"requests": {}, "limits": {}}
    for section, resource, column in ROW_RESOURCE_COLUMNS:
        if row.get(column) not in (None, ""):
            result[section][resource] = row[column]
    return result


def expected_resources(rows, dag_id, job_name=None):
    """Expected resources per enabled row of a DAG: list of (job_name, resources)."""
    found = []
    for row in rows or []:
        if not isinstance(row, dict) or row.get("dag_id") != dag_id or row.get("enabled") is False:
            continue
        if job_name is not None and row.get("job_name") != job_name:
            continue
        found.append((row.get("job_name"), row_resources(row)))
    return found


def pod_job_name(pod):
    for source in (labels_of(pod), meta(pod, "annotations") or {}):
        for key in JOB_LABELS:
            if source.get(key):
                return source[key]
    return None


def pod_resources(pod, container_name="base"):
    containers = (pod.get("spec") or {}).get("containers") or []
    chosen = next((c for c in containers if c.get("name") == container_name), containers[0] if containers else {})
    resources = chosen.get("resources") or {}
    return chosen.get("name"), {"requests": dict(resources.get("requests") or {}),
                                "limits": dict(resources.get("limits") or {})}


def compare_resources(expected, actual):
    """Compare the four fields of a dag_configuration row with a container's resources.

    A NULL column (absent from ``expected``) means "not set": the container must not have it either.
    """
    problems = []
    for section, resource, _column in ROW_RESOURCE_COLUMNS:
        want = (expected.get(section) or {}).get(resource)
        have = (actual.get(section) or {}).get(resource)
        if want is None and have is None:
            continue
        if want is None:
            problems.append("%s.%s is %s, expected none (NULL in dag_configuration)" % (section, resource, have))
        elif have is None:
            problems.append("%s.%s missing (expected %s)" % (section, resource, want))
        elif not quantities_equal(want, have):
            problems.append("%s.%s is %s, expected %s" % (section, resource, have, want))
    return problems


def _fmt_resources(res):
    parts = []
    for section in ("requests", "limits"):
        for key, value in sorted((res.get(section) or {}).items()):
            parts.append("%s.%s=%s" % (section, key, value))
    return ", ".join(parts) or "none"


def match_pod_to_rows(pod, rows, dag_id):
    """Compare a task pod's container resources with the dag_configuration row(s) it may come from.

    Returns (matched_job_name or None, problems list, description). A pod that names its job (label or
    annotation job_name) is compared with that row only; otherwise it must match one enabled row.
    """
    container, have = pod_resources(pod)
    job = pod_job_name(pod)
    candidates = expected_resources(rows, dag_id, job)
    described = "pod %s (task %s%s, container %s): %s" % (
        ref(pod), labels_of(pod).get("task_id", "?"),
        ", map_index %s" % labels_of(pod)["map_index"] if "map_index" in labels_of(pod) else "",
        container, _fmt_resources(have))
    if not candidates:
        return None, ["no enabled dag_configuration row%s" % (" for job %s" % job if job else "")], described
    best = None
    for job_name, want in candidates:
        problems = compare_resources(want, have)
        if not problems:
            return job_name, [], described + " \u2014 matches row %s" % job_name
        if best is None or len(problems) < len(best[1]):
            best = (job_name, problems)
    return None, ["closest row %s: %s" % (best[0], "; ".join(best[1]))], described


def check_config_resources(ctx, dag_state):
    fid = "dags.config_resources"
    dag_id = ctx.options["config_dag_id"]
    config = ctx.state.get("dag_config")
    if _dag_missing(ctx, dag_state, dag_id):
        blocked = ["blocked: %s is not serialized (see dags.serialized), so no pod of it can run" % dag_id]
        if config and not config.get("failed") and not config.get("skipped"):
            blocked.append("%d dag_configuration row(s) read" % len(_config_rows(config)))
        return finding(fid, "Configuration of %s not verifiable" % dag_id, SKIPPED, blocked)
    if not config or config.get("skipped"):
        return finding(fid, "dag_configuration not queried", SKIPPED,
                       ["not run: %s" % ((config or {}).get("skip_reason") or "the appdb query did not run")])
    if config.get("failed"):
        msg = str(config.get("msg") or "query failed")
        return finding(
            fid, "financial_screener.dag_configuration could not be read", CRITICAL, ["query error: %s" % msg],
            # "relation ... does not exist" (PostgreSQL) / "Tables ... do not exist" (appdb_dag_config_info)
            root_cause=("The table does not exist (appdb_config not applied)"
                        if "does not exist" in msg or "do not exist" in msg else
                        "The application database did not answer the query."),
            impact="DAGs cannot read their configuration; tasks fall back to defaults or fail.",
            resolution="`ansible-playbook site.yml --tags appdb_config`; check the application database's primary pod "
                       "in namespace %s." % ctx.options["databases_namespace"],
        )
    rows = [r for r in _config_rows(config) if r.get("dag_id") == dag_id]
    enabled = expected_resources(rows, dag_id)
    evidence = ["%d dag_configuration row(s) for %s, %d enabled: %s" % (
        len(rows), dag_id, len(enabled), "; ".join("%s %s" % (job, _fmt_resources(res)) for job, res in enabled)
        or "-")]
    if not enabled:
        return finding(
            fid, "No enabled dag_configuration row for %s" % dag_id, CRITICAL, evidence,
            root_cause="financial_screener.dag_configuration has no enabled row for the DAG (rows not applied, or "
                       "all disabled).",
            impact="The DAG maps no job: the historical load does nothing, or runs with hard-coded defaults.",
            resolution="`ansible-playbook site.yml --tags appdb_config` to apply the configuration rows.",
        )
    pods = []
    seen = set()
    for pod in objects(ctx.state.get("task_pods")) + objects(ctx.state.get("pods")):
        if labels_of(pod).get("dag_id") == dag_id and ref(pod) not in seen:
            seen.add(ref(pod))
            pods.append(pod)
    if not pods:
        evidence.append("no pod labelled dag_id=%s observed (KubernetesPodOperator pods are deleted when they "
                        "finish; run with -e verify_trigger=true to catch them while the run is going)" % dag_id)
        return finding(fid, "No pod of %s to compare with dag_configuration" % dag_id, SKIPPED, evidence)
    mismatched = []
    for pod in pods:
        _job, problems, described = match_pod_to_rows(pod, rows, dag_id)
        if problems:
            described += " \u2014 " + "; ".join(problems)
            mismatched.append(meta(pod, "name"))
        evidence.append(described)
    if mismatched:
        return finding(
            fid, "Pods of %s do not carry the resources from dag_configuration" % dag_id, CRITICAL, evidence,
            root_cause="The DAG builds its pod resources from hard-coded values or stale configuration instead of "
                       "the dag_configuration rows.",
            impact="Tasks run with the wrong requests/limits (OOM kills or starved nodes on the Pis).",
            resolution="Make the DAG read financial_screener.dag_configuration at run time (container_resources "
                       "from the rows) and re-deploy the DAGs; change sizing with `--tags appdb_config`.",
        )
    return finding(fid, "Pods of %s carry the resources from dag_configuration" % dag_id, OK, evidence)


def _config_rows(config):
    """The dag_configuration rows of the recorded read: ``query_result`` is what roles/verify/tasks/dags.yml
    puts there (the ``dag_configuration`` return of stratdata.pi_cluster.appdb_dag_config_info); ``rows`` and
    community.postgresql's shapes are accepted for older snapshots."""
    rows = config.get("query_result")
    if rows is None:
        rows = config.get("rows")
    if not isinstance(rows, list):
        return []
    if rows and isinstance(rows[0], list):
        # community.postgresql returns query_all_results (a list per statement) when several statements ran.
        rows = [r for group in rows if isinstance(group, list) for r in group]
    return [r for r in rows if isinstance(r, dict)]


# DAG runs ------------------------------------------------------------------------------------------

def _runs(value):
    if value is None:
        return None
    if isinstance(value, list):
        return [run for run in value if isinstance(run, dict)]
    if isinstance(value, dict):
        if value.get("failed") and "json" not in value:
            return None
        body = value.get("json", value)
        if isinstance(body, dict) and isinstance(body.get("dag_runs"), list):
            return [run for run in body["dag_runs"] if isinstance(run, dict)]
    return None


def check_indicators_after_load(ctx, dag_state):
    fid = "dags.indicators_after_load"
    load_id = ctx.options["config_dag_id"]
    ind_id = ctx.options["indicators_dag_id"]
    for dag_id in (load_id, ind_id):
        if _dag_missing(ctx, dag_state, dag_id):
            return finding(fid, "%s after %s not verifiable" % (ind_id, load_id), SKIPPED,
                           ["blocked: %s is not serialized (see dags.serialized)" % dag_id])
    runs_state = _dict(ctx.state.get("dag_runs"))
    load_runs = _runs(runs_state.get(load_id))
    ind_runs = _runs(runs_state.get(ind_id))
    if load_runs is None or ind_runs is None:
        return finding(fid, "DAG runs could not be read", SKIPPED,
                       ["not run: the DAG runs of %s/%s were not read from the API" % (load_id, ind_id)])
    done = [r for r in load_runs if r.get("state") == "success" and parse_time(r.get("end_date"))]
    if not done:
        states = ", ".join("%s=%s" % (r.get("dag_run_id"), r.get("state")) for r in load_runs[:3]) or "no runs"
        return finding(
            fid, "%s has not completed yet" % load_id, WARN, ["%s runs: %s" % (load_id, states)],
            root_cause="The historical load has never finished successfully.",
            impact="calculate_indicators has no complete price history to work on.",
            resolution="Trigger %s (verify with -e verify_trigger=true) and watch it in the UI." % load_id)
    last_load = max(done, key=lambda r: parse_time(r["end_date"]))
    load_end = parse_time(last_load["end_date"])
    evidence = ["last successful %s run %s ended %s" % (load_id, last_load.get("dag_run_id"), format_time(load_end))]
    # The asset event is emitted inside the load run (run_after of the asset-triggered run = its time), and the
    # scheduler may create and start that run in the loop that marks the load finished: "after the load" is
    # compared with the load's start, not its end (seen on a live Airflow 3.0.2,
    # tests/integration/playbooks/test_datapath.py).
    load_start = parse_time(last_load.get("start_date")) or load_end
    after = [r for r in ind_runs if (parse_time(r.get("run_after")) or parse_time(r.get("start_date")) or
                                     parse_time(r.get("logical_date")) or load_end) >= load_start]
    if not after:
        evidence.append("no %s run started after it (%d run(s) in total)" % (ind_id, len(ind_runs)))
        return finding(
            fid, "%s has not run after the historical load" % ind_id, WARN, evidence,
            root_cause="calculate_indicators is not triggered by the load (dataset/asset or TriggerDagRunOperator) "
                       "or is paused.",
            impact="Indicators are computed from incomplete data.",
            resolution="Unpause %s and check its schedule/asset trigger." % ind_id,
        )
    newest = max(after, key=lambda r: parse_time(r.get("start_date")) or load_end)
    evidence.append("%s run %s started %s: %s" % (ind_id, newest.get("dag_run_id"), format_time(
        newest.get("start_date")), newest.get("state")))
    if any(r.get("state") == "success" for r in after):
        return finding(fid, "%s ran after the historical load" % ind_id, OK, evidence)
    if newest.get("state") == "failed":
        return finding(
            fid, "%s failed after the historical load" % ind_id, CRITICAL, evidence,
            root_cause="A task of calculate_indicators failed (see its log in the UI).",
            impact="No indicators for the loaded history.",
            resolution="Read the failed task's log, fix, clear the run.",
        )
    return finding(fid, "%s is still running after the historical load" % ind_id, WARN, evidence,
                   root_cause="The run has not finished yet.", impact="Success not proven yet.",
                   resolution="Re-run verify when the run is done.")
