"""appdb_migrations, appdb_dag_config and the appdb_config role against a REAL PostgreSQL 15.

Every module call goes through the real ansible-playbook (fixture ``run_module``); every claim about the
database is proved by querying it. Fixtures: postgres_server / pg_database (tests/fixtures/postgres.py).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading

import pytest
import yaml
from conftest import CLUSTER_CONTRACT_FILE, REPO, appdb_module_args

MIGRATIONS_DIR = os.path.join(REPO, "roles", "appdb_config", "files", "migrations")
DEFAULTS = yaml.safe_load(open(os.path.join(REPO, "roles", "appdb_config", "defaults", "main.yml")))

from ansible_collections.stratdata.pi_cluster.plugins.modules.appdb_dag_config import parse_quantity  # noqa: E402


def migrate(run_module, pg, db, **extra):
    return run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR, **extra))


def seed_args(pg, db, **overrides):
    args = dict(
        appdb_module_args(pg, db),
        job_defaults=copy.deepcopy(DEFAULTS["appdb_config_job_defaults"]),
        exchange_groups=copy.deepcopy(DEFAULTS["appdb_config_exchange_groups"]),
        dag_configuration=copy.deepcopy(DEFAULTS["appdb_config_dag_configuration"]),
    )
    args.update(overrides)
    return args


def table_exists(pg, db, name):
    return pg.query(db, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]


def snapshot(pg, db):
    """Every row of both tables, updated_at included (proves 'nothing written')."""
    jobs = pg.query(db, "SELECT * FROM financial_screener.dag_configuration ORDER BY dag_id, job_name")
    groups = pg.query(db, "SELECT * FROM financial_screener.exchange_groups ORDER BY group_name")
    return jobs, groups


# -- appdb_migrations --------------------------------------------------------------------------------------

def test_migrations_check_mode_then_apply_then_idempotent(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    check = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR), check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is True
    assert check["applied"] == []
    assert check["pending"] == ["0001_initial_schema.sql", "0002_updated_at_triggers.sql",
                                "0003_grant_app_user_read.sql"]
    assert check["ledger_created"] is True
    assert "0001_initial_schema.sql" in check["diff"]["after"] and check["diff"]["before"] == ""
    # check mode changed nothing: not even the schema exists
    assert pg.query(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'financial_screener'")[0][0] == 0

    first = migrate(run_module, pg, db)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is True
    assert first["applied"] == ["0001_initial_schema.sql", "0002_updated_at_triggers.sql",
                                "0003_grant_app_user_read.sql"]
    assert first["current_version"] == 3
    for table in ("dag_configuration", "exchange_groups", "schema_migrations"):
        assert table_exists(pg, db, "financial_screener." + table)
    ledger = pg.query(db, "SELECT version, name, length(checksum) FROM financial_screener.schema_migrations "
                          "ORDER BY version")
    assert ledger == [(1, "0001_initial_schema.sql", 64), (2, "0002_updated_at_triggers.sql", 64),
                      (3, "0003_grant_app_user_read.sql", 64)]
    assert any("pg_advisory_xact_lock" in q for q in first["queries"])

    second = migrate(run_module, pg, db)
    assert not second.get("failed"), second.get("msg")
    assert second["changed"] is False
    assert second["applied"] == [] and second["pending"] == []
    assert second["already_applied"] == first["applied"]

    # check mode with nothing pending: not changed
    third = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR), check=True)
    assert third["changed"] is False


def test_migrations_as_data_match_files_checksums(run_module, postgres_server, pg_database):
    """The role passes the files as data (file lookup strips the final newline): same checksums, no re-apply."""
    pg, db = postgres_server, pg_database
    assert migrate(run_module, pg, db)["changed"] is True
    as_data = []
    for name in sorted(os.listdir(MIGRATIONS_DIR)):
        with open(os.path.join(MIGRATIONS_DIR, name)) as handle:
            as_data.append({"name": name, "sql": handle.read().rstrip("\n")})
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=as_data))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False


def test_migration_failing_halfway_leaves_nothing_behind(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrations = [
        {"name": "0001_good.sql", "sql": "CREATE SCHEMA IF NOT EXISTS financial_screener;\n"
                                         "CREATE TABLE financial_screener.good (id int);"},
        {"name": "0002_breaks_halfway.sql", "sql": "CREATE TABLE financial_screener.half (id int);\n"
                                                   "INSERT INTO financial_screener.half VALUES (1);\n"
                                                   "SELECT 1 / 0;\n"
                                                   "CREATE TABLE financial_screener.never (id int);"},
        {"name": "0003_after.sql", "sql": "CREATE TABLE financial_screener.after (id int);"},
    ]
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=migrations))
    assert result.get("failed") is True
    assert "0002_breaks_halfway.sql" in result["msg"]
    assert "division by zero" in result["msg"]
    assert result["applied"] == ["0001_good.sql"]
    assert table_exists(pg, db, "financial_screener.good")
    assert not table_exists(pg, db, "financial_screener.half")  # first statement of 0002 rolled back
    assert not table_exists(pg, db, "financial_screener.never")
    assert not table_exists(pg, db, "financial_screener.after")  # nothing after the failure
    assert pg.query(db, "SELECT version FROM financial_screener.schema_migrations") == [(1,)]

    # fixed file -> the run continues where it stopped
    migrations[1]["sql"] = "CREATE TABLE financial_screener.half (id int);"
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=migrations))
    assert not result.get("failed"), result.get("msg")
    assert result["applied"] == ["0002_breaks_halfway.sql", "0003_after.sql"]


def test_changed_applied_migration_fails_and_is_never_reapplied(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrations = [{"name": "0001_t.sql", "sql": "CREATE TABLE public.t (id int);"}]
    assert run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=migrations))["changed"] is True
    before = pg.query(db, "SELECT version, checksum, applied_at FROM financial_screener.schema_migrations")

    edited = [{"name": "0001_t.sql", "sql": "CREATE TABLE public.t (id bigint);"},
              {"name": "0002_u.sql", "sql": "CREATE TABLE public.u (id int);"}]
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=edited))
    assert result.get("failed") is True
    assert "0001_t.sql" in result["msg"] and "changed since" in result["msg"]
    assert pg.query(db, "SELECT version, checksum, applied_at FROM financial_screener.schema_migrations") == before
    assert not table_exists(pg, db, "public.u")  # nothing applied after detecting the change
    assert pg.query(db, "SELECT data_type FROM information_schema.columns WHERE table_name = 't'") == [("integer",)]

    check = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=edited), check=True)
    assert check.get("failed") is True and "0001_t.sql" in check["msg"]


def test_invalid_migration_names_and_out_of_order(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    bad = run_module("appdb_migrations", dict(appdb_module_args(pg, db),
                                              migrations=[{"name": "init.sql", "sql": "SELECT 1"}]))
    assert bad.get("failed") and "init.sql" in bad["msg"]
    run_module("appdb_migrations", dict(appdb_module_args(pg, db),
                                        migrations=[{"name": "0002_b.sql", "sql": "SELECT 1"}]))
    late = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=[
        {"name": "0001_a.sql", "sql": "SELECT 1"}, {"name": "0002_b.sql", "sql": "SELECT 1"}]))
    assert late.get("failed") and "0001_a.sql" in late["msg"] and "older" in late["msg"]


def test_concurrent_runs_serialise_on_the_advisory_lock(run_module, postgres_server, pg_database):
    """Two simultaneous runs: each migration is applied exactly once, neither run fails."""
    pg, db = postgres_server, pg_database
    migrations = [
        {"name": "0001_slow.sql", "sql": "SELECT pg_sleep(1.5); CREATE TABLE public.slow (id int);"},
        {"name": "0002_next.sql", "sql": "CREATE TABLE public.next (id int);"},
    ]
    results = [None, None]

    def worker(index):
        results[index] = run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=migrations))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        assert not result.get("failed"), result.get("msg")
    applied = results[0]["applied"] + results[1]["applied"]
    assert sorted(applied) == ["0001_slow.sql", "0002_next.sql"]
    assert pg.query(db, "SELECT version FROM financial_screener.schema_migrations ORDER BY 1") == [(1,), (2,)]


# -- appdb_dag_config ----------------------------------------------------------------------------------

def test_dag_config_defaults_check_mode_apply_idempotent(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    assert not migrate(run_module, pg, db).get("failed")

    check = run_module("appdb_dag_config", seed_args(pg, db), check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is True
    assert check["dag_configuration"] == {"inserted": 4, "updated": 0, "unchanged": 0, "deleted": 0}
    assert check["exchange_groups"] == {"inserted": 4, "updated": 0, "unchanged": 0, "deleted": 0}
    assert "historical_load_equities/us_markets" in check["diff"]["after"]
    assert snapshot(pg, db) == ([], [])  # check mode wrote nothing

    first = run_module("appdb_dag_config", seed_args(pg, db))
    assert not first.get("failed"), first.get("msg")
    assert (first["changed"], first["inserted"], first["updated"], first["deleted"]) == (True, 8, 0, 0)
    rows = pg.query(db, "SELECT job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, "
                        "batch_size, enabled FROM financial_screener.dag_configuration "
                        "WHERE dag_id = 'historical_load_equities' ORDER BY job_name")
    assert rows == [
        ("european_markets", ["Euronext", "BME", "SIX"], "500m", "1Gi", None, None, 500, True),
        ("german_markets", ["Frankfurt", "XETRA"], "500m", "1Gi", None, None, 500, True),
        ("lse", ["LSE"], "500m", "1Gi", None, None, 500, True),
        ("us_markets", ["NYSE", "NASDAQ"], "500m", "1Gi", None, None, 500, True),
    ]
    groups = pg.query(db, "SELECT group_name, timezone FROM financial_screener.exchange_groups ORDER BY 1")
    assert groups == [("european_markets", "Europe/Paris"), ("german_markets", "Europe/Berlin"),
                      ("lse", "Europe/London"), ("us_markets", "America/New_York")]
    assert any("ON CONFLICT" in q for q in first["queries"])

    before = snapshot(pg, db)
    second = run_module("appdb_dag_config", seed_args(pg, db))
    assert not second.get("failed"), second.get("msg")
    assert (second["changed"], second["unchanged"], second["inserted"], second["updated"]) == (False, 8, 0, 0)
    assert snapshot(pg, db) == before  # not even updated_at moved


def test_dag_config_bad_rows_fail_and_change_nothing(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrate(run_module, pg, db)
    assert run_module("appdb_dag_config", seed_args(pg, db))["changed"] is True
    before = snapshot(pg, db)

    args = seed_args(pg, db)
    args["dag_configuration"][0]["cpu_request"] = "lots"
    args["dag_configuration"][1]["exchanges"] = ["LSE", "MOON"]
    args["exchange_groups"][2]["timezone"] = "Mars/Base"
    args["dag_configuration"][2]["memory_request"] = "2Gi"  # a valid change that must NOT be written either
    args["dag_configuration"].append({"dag_id": "historical_load_equities", "job_name": "asia",
                                      "exchanges": ["NYSE"], "batch_size": 0})
    result = run_module("appdb_dag_config", args)
    assert result.get("failed") is True
    msg = result["msg"]
    assert "'lots' is not a Kubernetes quantity" in msg
    assert "MOON" in msg and "not in any exchange group" in msg
    assert "'Mars/Base' is not an IANA time zone" in msg
    assert "batch_size 0 must be a positive integer" in msg
    assert "nothing written" in msg
    assert result.get("inserted", 0) == 0 and result.get("updated", 0) == 0
    assert snapshot(pg, db) == before

    # also in check mode
    check = run_module("appdb_dag_config", args, check=True)
    assert check.get("failed") is True
    assert snapshot(pg, db) == before


def test_pruning_a_group_still_used_by_kept_rows_fails(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrate(run_module, pg, db)
    run_module("appdb_dag_config", seed_args(pg, db))
    before = snapshot(pg, db)
    groups = [g for g in DEFAULTS["appdb_config_exchange_groups"] if g["name"] != "lse"]
    args = dict(appdb_module_args(pg, db), exchange_groups=groups, prune=True)  # dag_configuration not managed
    result = run_module("appdb_dag_config", args)
    assert result.get("failed") is True
    assert "existing row historical_load_equities/lse (not declared, kept): exchange(s) LSE" in result["msg"]
    assert snapshot(pg, db) == before


def test_dag_config_update_insert_prune_with_diff(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrate(run_module, pg, db)
    run_module("appdb_dag_config", seed_args(pg, db))
    args = seed_args(pg, db)
    args["dag_configuration"] = [r for r in args["dag_configuration"] if r["job_name"] != "european_markets"]
    args["dag_configuration"][0].update(cpu_limit="2", memory_limit="4Gi", memory_request="1536Mi")
    args["dag_configuration"].append({"dag_id": "calculate_indicators", "job_name": "all", "exchanges": ["LSE"],
                                      "batch_size": 1000, "enabled": False})

    without_prune = run_module("appdb_dag_config", args, check=True)
    assert without_prune["dag_configuration"] == {"inserted": 1, "updated": 1, "unchanged": 2, "deleted": 0}

    result = run_module("appdb_dag_config", dict(args, prune=True), diff=True)
    assert not result.get("failed"), result.get("msg")
    assert result["dag_configuration"] == {"inserted": 1, "updated": 1, "unchanged": 2, "deleted": 1}
    assert result["exchange_groups"] == {"inserted": 0, "updated": 0, "unchanged": 4, "deleted": 0}
    assert '"memory_request": "1Gi"' in result["diff"]["before"]
    assert '"memory_request": "1536Mi"' in result["diff"]["after"]
    assert "european_markets" in result["diff"]["before"] and "european_markets" not in result["diff"]["after"]
    rows = pg.query(db, "SELECT dag_id, job_name, cpu_limit, memory_limit, memory_request, enabled "
                        "FROM financial_screener.dag_configuration ORDER BY 1, 2")
    assert rows == [
        ("calculate_indicators", "all", None, None, "1Gi", False),
        ("historical_load_equities", "german_markets", None, None, "1Gi", True),
        ("historical_load_equities", "lse", None, None, "1Gi", True),
        ("historical_load_equities", "us_markets", "2", "4Gi", "1536Mi", True),
    ]
    # the migration's trigger / the upsert moved updated_at of the updated row only
    stamps = dict(pg.query(db, "SELECT job_name, updated_at FROM financial_screener.dag_configuration"))
    assert stamps["us_markets"] > stamps["lse"]


def test_dag_config_requires_migrated_schema_and_good_password(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    missing = run_module("appdb_dag_config", seed_args(pg, db))
    assert missing.get("failed") and "appdb_migrations first" in missing["msg"]

    wrong = "pi-cluster-TEST-ONLY-wrong-password"
    denied = run_module("appdb_dag_config", seed_args(pg, db, login_password=wrong))
    assert denied.get("failed") and "authentication failed for user pitest" in denied["msg"]
    assert wrong not in json.dumps(denied)
    assert pg.password not in json.dumps(denied)


@pytest.mark.parametrize("text,value", [
    ("500m", "0.5"), ("1", "1"), ("1.5", "1.5"), ("1Gi", str(2 ** 30)), ("512Mi", str(512 * 2 ** 20)),
    ("1e3", "1000"), ("1E3", "1000"), ("1E", str(10 ** 18)), ("+2k", "2000"), (".5", "0.5"), ("5.", "5"),
    ("0", "0"), ("1.5Gi", str(int(1.5 * 2 ** 30))), ("2e-3", "0.002"),
])
def test_quantity_grammar_accepts(text, value):
    from decimal import Decimal

    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["lots", "", "1GiB", "1gi", "1 Gi", "Gi", "1.2.3", "--1", "1e", "1e1.5", "0x10",
                                  "1Ki1", "m", "1mi"])
def test_quantity_grammar_rejects(text):
    assert parse_quantity(text) is None


# -- the role ------------------------------------------------------------------------------------------

ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {contract}
  vars:
    ansible_python_interpreter: {python}
    appdb_config_host: 127.0.0.1
    appdb_config_port: {port}
    appdb_config_database: {db}
    appdb_config_login_user: pitest
    appdb_config_sslmode: disable
    vault_appdb_postgres_password: {password}
  tasks:
    - name: Migrations
      ansible.builtin.include_role:
        name: appdb_config
        tasks_from: migrations.yml
    - name: Rows
      ansible.builtin.include_role:
        name: appdb_config
        tasks_from: rows.yml
"""


def _role_run(pg, db, tmp_path, run_module, extra_vars=None):
    play = tmp_path / "role.yml"
    play.write_text(ROLE_PLAY.format(python=sys.executable, port=pg.port, db=db, password=pg.password,
                                     contract=CLUSTER_CONTRACT_FILE))
    env = run_module.env()
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           str(play)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = json.loads(proc.stdout)
    return proc, out, out["stats"]["localhost"]


def test_role_applies_migrations_and_rows_idempotently(run_module, postgres_server, pg_database, tmp_path):
    pg, db = postgres_server, pg_database
    proc, out, stats = _role_run(pg, db, tmp_path, run_module)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert stats["failures"] == 0 and stats["changed"] == 2
    assert pg.query(db, "SELECT count(*) FROM financial_screener.dag_configuration")[0][0] == 4
    assert pg.query(db, "SELECT count(*) FROM financial_screener.schema_migrations")[0][0] == 3
    assert pg.password not in proc.stdout  # no_log on the tasks that carry it

    proc, out, stats = _role_run(pg, db, tmp_path, run_module)
    assert proc.returncode == 0
    assert stats["changed"] == 0 and stats["failures"] == 0

    # a bad override fails with the module's message (shown despite no_log), nothing written
    before = snapshot(pg, db)
    groups = copy.deepcopy(DEFAULTS["appdb_config_exchange_groups"])
    groups[0]["timezone"] = "Mars/Base"
    proc, out, stats = _role_run(pg, db, tmp_path, run_module, {"appdb_config_exchange_groups": groups})
    assert proc.returncode != 0 and stats["failures"] == 1
    assert "'Mars/Base' is not an IANA time zone" in proc.stdout
    assert pg.password not in proc.stdout
    assert snapshot(pg, db) == before
