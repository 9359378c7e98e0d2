"""appdb_dag_config_info (the read-only client verify uses) against a REAL PostgreSQL 15.

Every call goes through the real ansible-playbook (fixture ``run_module``); the tables are created by the
real appdb_migrations and filled by the real appdb_dag_config with the appdb_config role's defaults.
"""

from __future__ import annotations

import copy
import json
import os
import uuid

import yaml
from conftest import REPO, appdb_module_args

MIGRATIONS_DIR = os.path.join(REPO, "roles", "appdb_config", "files", "migrations")
DEFAULTS = yaml.safe_load(open(os.path.join(REPO, "roles", "appdb_config", "defaults", "main.yml")))
DAG = "historical_load_equities"


def seeded(run_module, pg, db):
    """Migrate and seed the database as the appdb_config role does (its default rows plus one other DAG)."""
    migrated = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR))
    assert not migrated.get("failed"), migrated.get("msg")
    rows = copy.deepcopy(DEFAULTS["appdb_config_dag_configuration"])
    rows.append({"dag_id": "calculate_indicators", "job_name": "all", "exchanges": ["NYSE"], "enabled": False})
    seeded = run_module("appdb_dag_config", dict(
        appdb_module_args(pg, db), job_defaults=copy.deepcopy(DEFAULTS["appdb_config_job_defaults"]),
        exchange_groups=copy.deepcopy(DEFAULTS["appdb_config_exchange_groups"]), dag_configuration=rows))
    assert not seeded.get("failed"), seeded.get("msg")
    return rows


def snapshot(pg, db):
    return (pg.query(db, "SELECT * FROM financial_screener.dag_configuration ORDER BY dag_id, job_name"),
            pg.query(db, "SELECT * FROM financial_screener.exchange_groups ORDER BY group_name"))


def test_rows_and_groups_filter_and_check_mode(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    declared = seeded(run_module, pg, db)
    before = snapshot(pg, db)

    everything = run_module("appdb_dag_config_info", appdb_module_args(pg, db))
    assert not everything.get("failed"), everything.get("msg")
    assert everything["changed"] is False
    jobs = everything["dag_configuration"]
    assert [(r["dag_id"], r["job_name"]) for r in jobs] == sorted((r["dag_id"], r["job_name"]) for r in declared)
    # each row as the database holds it, defaults applied, NULL limits as None, timestamps as ISO strings
    in_db = pg.query(db, "SELECT dag_id, job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, "
                         "batch_size, enabled, updated_at FROM financial_screener.dag_configuration "
                         "ORDER BY dag_id, job_name")
    assert [[r[k] for k in ("dag_id", "job_name", "exchanges", "cpu_request", "memory_request", "cpu_limit",
                            "memory_limit", "batch_size", "enabled", "updated_at")] for r in jobs] == \
        [list(row[:9]) + [row[9].isoformat()] for row in in_db]
    assert any(r["cpu_limit"] is None for r in jobs)
    assert {g["name"]: (g["timezone"], g["exchanges"]) for g in everything["exchange_groups"]} == \
        {g["name"]: (g["timezone"], g["exchanges"]) for g in DEFAULTS["appdb_config_exchange_groups"]}
    names = [g["name"] for g in everything["exchange_groups"]]
    assert names == sorted(names)

    one = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), dag_id=DAG))
    assert not one.get("failed"), one.get("msg")
    assert [r["job_name"] for r in one["dag_configuration"]] == sorted(
        r["job_name"] for r in declared if r["dag_id"] == DAG)
    assert {r["dag_id"] for r in one["dag_configuration"]} == {DAG}
    assert one["exchange_groups"] == everything["exchange_groups"]
    assert any(DAG in q for q in one["queries"])

    unknown = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), dag_id="no_such_dag"))
    assert not unknown.get("failed") and unknown["dag_configuration"] == []

    check = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), dag_id=DAG), check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is False
    assert check["dag_configuration"] == one["dag_configuration"]
    assert snapshot(pg, db) == before  # read-only, updated_at included
    for result in (everything, one, unknown, check):
        assert pg.password not in json.dumps(result)


def test_missing_tables_say_what_to_run(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    result = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), dag_id=DAG))
    assert result.get("failed") is True
    assert result["msg"].startswith(
        "Tables financial_screener.dag_configuration and financial_screener.exchange_groups do not exist in "
        "database %s (appdb_config not applied)" % db), result["msg"]
    assert result["missing_tables"] == ["dag_configuration", "exchange_groups"]
    assert "--tags appdb_config" in result["msg"]
    assert "dag_configuration" not in result  # verify tells a failed read by the missing rows
    assert "Traceback" not in json.dumps(result)

    seeded(run_module, pg, db)
    pg.query(db, "DROP TABLE financial_screener.dag_configuration")
    one = run_module("appdb_dag_config_info", appdb_module_args(pg, db))
    assert one.get("failed") is True and one["missing_tables"] == ["dag_configuration"]
    assert one["msg"].startswith("Table financial_screener.dag_configuration does not exist in database %s" % db)


def test_wrong_password_and_no_permission_are_clear(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    seeded(run_module, pg, db)
    wrong = "pi-cluster-TEST-ONLY-wrong-password"
    denied = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), login_password=wrong))
    assert denied.get("failed") is True
    assert "authentication failed for user %s" % pg.user in denied["msg"]
    assert "dag_configuration" not in denied
    assert wrong not in json.dumps(denied) and pg.password not in json.dumps(denied)

    # a role that may log in but was granted nothing on the schema (e.g. a reader created by hand)
    reader = "reader_" + uuid.uuid4().hex[:8]
    reader_password = uuid.uuid4().hex  # random, for this test only
    with pg.admin_connection() as conn, conn.cursor() as cur:
        cur.execute("CREATE ROLE %s LOGIN PASSWORD %%s" % reader, (reader_password,))
    try:
        refused = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), login_user=reader,
                                                           login_password=reader_password))
    finally:
        with pg.admin_connection(db) as conn, conn.cursor() as cur:
            cur.execute("DROP OWNED BY %s" % reader)
            cur.execute("DROP ROLE %s" % reader)
    assert refused.get("failed") is True
    assert refused["msg"].startswith("Role %s may not read financial_screener.{dag_configuration,exchange_groups} "
                                     "in database %s: [42501] permission denied for schema financial_screener"
                                     % (reader, db)), refused["msg"]
    assert "grant USAGE on the schema" in refused["msg"]
    assert reader_password not in json.dumps(refused) and "Traceback" not in json.dumps(refused)


def test_bad_schema_name_fails_before_connecting(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    for schema in ('x"; DROP TABLE y; --', "financial_screener\n"):
        result = run_module("appdb_dag_config_info", dict(appdb_module_args(pg, db), schema=schema))
        assert result.get("failed") is True and "must be a lower-case SQL identifier" in result["msg"], schema
        assert result["queries"] == []
