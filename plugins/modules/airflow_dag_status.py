#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: airflow_dag_status
short_description: Check that Airflow 3 has parsed the expected DAGs, without import errors
description:
  - Reads the Airflow 3 metadata database and checks, for every DAG id in O(dag_ids), that it is known
    (table C(dag)), not stale (C(dag.is_stale), set when its file was removed or no longer defines it) and
    serialized (at least one row in C(serialized_dag); Airflow 3 keeps one per DAG version).
  - Reports the import errors of the DAG files (table C(import_error), file name and stack trace) and
    fails on them (O(fail_on_import_errors)).
  - Optionally also asks the REST API v2 at O(api_url) (JWT from C(POST /auth/token), then C(GET /api/v2/dags))
    whether each DAG is visible and not stale there.
  - With O(retries) and O(delay) it waits for the dag-processor to (re)parse the files.
  - Fails with one message listing every missing, stale, unserialized or API-invisible DAG and why, and
    the files with import errors. Returns per-DAG details in every case.
  - Read-only; it runs normally in check mode.
version_added: "1.0.0"
options:
  dag_ids:
    description:
      - DAG ids that must be present. Must not be empty (an empty list is refused, it would check nothing).
    type: list
    elements: str
    required: true
  database:
    description:
      - Airflow metadata database.
    type: str
    default: airflow
    aliases: [db, login_db]
  bundle_name:
    description:
      - Only consider DAGs and import errors of this DAG bundle (Airflow 3 C(bundle_name), e.g. C(dags-folder)).
    type: str
  fail_on_import_errors:
    description:
      - Fail when any import error is recorded (of the bundle, when O(bundle_name) is set).
    type: bool
    default: true
  require_unpaused:
    description:
      - Also fail when an expected DAG is paused. By default the paused state is only reported.
    type: bool
    default: false
  retries:
    description:
      - Extra attempts after a failed check, to wait for the dag-processor.
    type: int
    default: 0
  delay:
    description:
      - Seconds between attempts.
    type: int
    default: 5
  api_url:
    description:
      - Base URL of the Airflow API server (e.g. C(http://airflow-api-server.airflow:8080)). When set, the
        DAGs must also be visible (and not stale) through C(GET /api/v2/dags).
    type: str
  api_username:
    description:
      - User for C(POST /auth/token).
    type: str
    default: admin
  api_password:
    description:
      - Password for C(POST /auth/token). Never logged.
    type: str
  validate_certs:
    description:
      - Verify the API server's TLS certificate.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds per HTTP request.
    type: int
    default: 30
extends_documentation_fragment:
  - stratdata.pi_cluster.postgres
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same checks in check mode.
  diff_mode:
    support: none
seealso:
  - name: Airflow 3 REST API
    description: Reference of the stable REST API v2.
    link: https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html
author:
  - StratData platform team (@stratdata)
"""

EXAMPLES = r"""
- name: Wait until the reference DAGs are parsed without import errors
  stratdata.pi_cluster.airflow_dag_status:
    login_host: "{{ airflow_db_host }}"
    login_user: airflow
    login_password: "{{ vault_airflow_metadata_db_password }}"
    database: airflow
    dag_ids: [data_collection, historical_load_equities, calculate_indicators]
    retries: 12
    delay: 10
  no_log: true

- name: Same check through the REST API as well
  stratdata.pi_cluster.airflow_dag_status:
    login_host: "{{ airflow_db_host }}"
    login_password: "{{ vault_airflow_metadata_db_password }}"
    dag_ids: [historical_load_equities]
    api_url: "http://{{ airflow_api_cluster_ip }}:8080"
    api_username: admin
    api_password: "{{ vault_airflow_admin_password }}"
  no_log: true
"""

RETURN = r"""
dags:
  description: Per expected DAG id, what was found.
  returned: always
  type: dict
  sample:
    historical_load_equities:
      found: true
      serialized: true
      serialized_versions: 1
      is_stale: false
      is_paused: true
      fileloc: /opt/airflow/dags/repo/historical_load_equities.py
      bundle_name: dags-folder
      last_parsed_time: "2026-01-01T10:00:00+00:00"
      has_import_errors: false
      api_visible: null
      ok: true
      problems: []
missing:
  description: Expected DAG ids not found in the metadata database.
  returned: always
  type: list
  elements: str
stale:
  description: Expected DAG ids marked stale.
  returned: always
  type: list
  elements: str
not_serialized:
  description: Expected DAG ids without a serialized_dag row.
  returned: always
  type: list
  elements: str
api_invisible:
  description: Expected DAG ids not listed by C(GET /api/v2/dags) (empty when O(api_url) is not set).
  returned: always
  type: list
  elements: str
paused:
  description: Expected DAG ids that are paused.
  returned: always
  type: list
  elements: str
import_errors:
  description: Import errors recorded by the dag-processor.
  returned: always
  type: list
  elements: dict
  sample:
    - filename: /opt/airflow/dags/broken.py
      bundle_name: dags-folder
      timestamp: "2026-01-01T10:00:00+00:00"
      stacktrace: "Traceback (most recent call last): ..."
api_checked:
  description: Whether the REST API was queried.
  returned: always
  type: bool
attempts:
  description: Number of attempts made.
  returned: always
  type: int
queries:
  description: The SQL queries of the last attempt.
  returned: always
  type: list
  elements: str
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.pg_connection import (
    QueryLog,
    connect,
    db_error_message,
    pg_argument_spec,
    psycopg2,
    scrub,
)


def argument_spec():
    spec = pg_argument_spec(default_database="airflow")
    spec.update(
        dag_ids=dict(type="list", elements="str", required=True),
        bundle_name=dict(type="str"),
        fail_on_import_errors=dict(type="bool", default=True),
        require_unpaused=dict(type="bool", default=False),
        retries=dict(type="int", default=0),
        delay=dict(type="int", default=5),
        api_url=dict(type="str"),
        api_username=dict(type="str", default="admin"),
        api_password=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        api_timeout=dict(type="int", default=30),
    )
    return spec


def iso(value):
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def read_metadata(log, dag_ids, bundle_name):
    """One consistent read of dag, serialized_dag and import_error."""
    bundle_sql, bundle_args = ("", ())
    if bundle_name:
        bundle_sql, bundle_args = (" AND bundle_name = %s", (bundle_name,))
    log.execute(
        "SELECT dag_id, is_paused, is_stale, fileloc, bundle_name, last_parsed_time, has_import_errors "
        "FROM dag WHERE dag_id = ANY(%s)" + bundle_sql,
        (list(dag_ids),) + bundle_args,
    )
    dags = dict((row[0], row) for row in log.cursor.fetchall())
    log.execute(
        "SELECT dag_id, count(*), max(last_updated) FROM serialized_dag WHERE dag_id = ANY(%s) GROUP BY dag_id",
        (list(dag_ids),),
    )
    serialized = dict((row[0], (row[1], row[2])) for row in log.cursor.fetchall())
    log.execute(
        "SELECT filename, bundle_name, timestamp, stacktrace FROM import_error"
        + (" WHERE bundle_name = %s" if bundle_name else "") + " ORDER BY filename",
        bundle_args or None,
    )
    import_errors = [
        dict(filename=row[0], bundle_name=row[1], timestamp=iso(row[2]), stacktrace=row[3])
        for row in log.cursor.fetchall()
    ]
    return dags, serialized, import_errors


def api_dags(module):
    """{dag_id: is_stale} of every DAG the REST API v2 lists (stale ones included)."""
    params = module.params
    base = params["api_url"].rstrip("/")
    password = params.get("api_password")
    common = dict(validate_certs=params["validate_certs"], timeout=params["api_timeout"])
    try:
        response = open_url(
            base + "/auth/token",
            method="POST",
            data=json.dumps(dict(username=params["api_username"], password=password or "")),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            **common
        )
        token = json.loads(response.read())["access_token"]
    except Exception as exc:  # HTTPError, URLError, bad JSON
        code = getattr(exc, "code", None)
        reason = "HTTP %s" % code if code else scrub(exc, password)
        if code in (401, 403):
            reason += " (check api_username/api_password)"
        raise RuntimeError("POST %s/auth/token failed: %s" % (base, reason)) from None
    found, offset, limit = {}, 0, 100
    while True:
        url = "%s/api/v2/dags?exclude_stale=false&limit=%d&offset=%d" % (base, limit, offset)
        try:
            response = open_url(url, headers={"Authorization": "Bearer %s" % token, "Accept": "application/json"},
                                **common)
            page = json.loads(response.read())
        except Exception as exc:
            code = getattr(exc, "code", None)
            detail = "HTTP %s" % code if code else scrub(exc, password)
            raise RuntimeError("GET %s failed: %s" % (url, detail)) from None
        for dag in page.get("dags", []):
            found[dag["dag_id"]] = bool(dag.get("is_stale"))
        offset += limit
        if offset >= page.get("total_entries", 0) or not page.get("dags"):
            return found


def evaluate(module, dags, serialized, import_errors, api):
    params = module.params
    result = dict(dags={}, missing=[], stale=[], not_serialized=[], paused=[], api_invisible=[])
    problems = []
    for dag_id in params["dag_ids"]:
        row = dags.get(dag_id)
        count, last = serialized.get(dag_id, (0, None))
        entry = dict(found=row is not None, serialized=count > 0, serialized_versions=count,
                     serialized_last_updated=iso(last), is_stale=None, is_paused=None, fileloc=None,
                     bundle_name=None, last_parsed_time=None, has_import_errors=None, api_visible=None,
                     problems=[])
        if row is None:
            entry["problems"].append("not in the metadata database (never parsed: file missing from the dags "
                                     "folder, not matching, or failing to import)")
            result["missing"].append(dag_id)
        else:
            entry.update(is_paused=row[1], is_stale=row[2], fileloc=row[3], bundle_name=row[4],
                         last_parsed_time=iso(row[5]), has_import_errors=row[6])
            if row[2]:
                entry["problems"].append("stale: %s no longer defines it (file removed or DAG renamed)" % row[3])
                result["stale"].append(dag_id)
            if row[1]:
                result["paused"].append(dag_id)
                if params["require_unpaused"]:
                    entry["problems"].append("paused")
        if row is not None and count == 0:
            entry["problems"].append("not serialized (the dag-processor has not stored it)")
            result["not_serialized"].append(dag_id)
        if api is not None:
            entry["api_visible"] = dag_id in api and not api[dag_id]
            if dag_id not in api:
                entry["problems"].append("not listed by GET /api/v2/dags")
                result["api_invisible"].append(dag_id)
            elif api[dag_id] and dag_id not in result["stale"]:
                entry["problems"].append("stale according to the REST API")
                result["stale"].append(dag_id)
        entry["ok"] = not entry["problems"]
        result["dags"][dag_id] = entry
        problems.extend("%s: %s" % (dag_id, p) for p in entry["problems"])
    if import_errors and params["fail_on_import_errors"]:
        for error in import_errors:
            last_line = (error["stacktrace"] or "").strip().splitlines()[-1:] or [""]
            problems.append("import error in %s: %s" % (error["filename"], last_line[0]))
    return result, problems


def run_module():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["retries"] < 0 or params["delay"] < 0:
        module.fail_json(msg="retries and delay must not be negative")
    if params["api_url"] and not params["api_password"]:
        module.fail_json(msg="api_password is required with api_url")
    if not params["dag_ids"]:
        # An empty list would check nothing and report success: a mistyped variable must not look healthy.
        module.fail_json(msg="dag_ids is empty: name at least one DAG id to check")

    conn = connect(module, autocommit=True)  # read-only; autocommit = a fresh snapshot per statement
    attempts, result, problems = 0, {}, []
    log = None
    try:
        while True:
            attempts += 1
            log = QueryLog(conn.cursor())
            try:
                dags, serialized, import_errors = read_metadata(log, params["dag_ids"], params["bundle_name"])
            except psycopg2.Error as exc:
                module.fail_json(msg="Cannot read the Airflow metadata database %s (is it an Airflow 3 schema?): %s"
                                 % (params["database"], db_error_message(exc, module)), attempts=attempts)
            api = None
            if params["api_url"]:
                try:
                    api = api_dags(module)
                except RuntimeError as exc:
                    if attempts > params["retries"]:
                        module.fail_json(msg=str(exc), attempts=attempts)
                    time.sleep(params["delay"])
                    continue
            result, problems = evaluate(module, dags, serialized, import_errors, api)
            result.update(import_errors=import_errors, api_checked=api is not None)
            if not problems or attempts > params["retries"]:
                break
            time.sleep(params["delay"])
    finally:
        conn.close()

    result.update(changed=False, attempts=attempts, queries=log.queries if log else [])
    if problems:
        module.fail_json(
            msg="Airflow DAG check failed after %d attempt(s): %s" % (attempts, "; ".join(problems)), **result
        )
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
