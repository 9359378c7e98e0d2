"""Bad input and faults on the appdb modules (issue 15): a clear error, nothing partial, never a traceback.

Real PostgreSQL 15 (tests/fixtures/postgres.py); every module call goes through the real ansible-playbook
(fixture ``run_module``). Each test names the defect of issue 15 it covers; each failed on main before the fix.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import CLUSTER_CONTRACT_FILE, REPO, appdb_module_args

DEFAULTS = yaml.safe_load(open(os.path.join(str(REPO), "roles", "appdb_config", "defaults", "main.yml")))
MIGRATIONS_DIR = os.path.join(str(REPO), "roles", "appdb_config", "files", "migrations")


def no_traceback(result):
    text = json.dumps(result)
    assert "Traceback" not in text and "module_stderr" not in result, text[-3000:]


def table_exists(pg, db, name):
    return pg.query(db, "SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]


def migrations_run(run_module, pg, db, migrations, **extra):
    return run_module("appdb_migrations", dict(appdb_module_args(pg, db), migrations=migrations, **extra))


def seed_args(pg, db, **overrides):
    args = dict(
        appdb_module_args(pg, db),
        job_defaults=copy.deepcopy(DEFAULTS["appdb_config_job_defaults"]),
        exchange_groups=copy.deepcopy(DEFAULTS["appdb_config_exchange_groups"]),
        dag_configuration=copy.deepcopy(DEFAULTS["appdb_config_dag_configuration"]),
    )
    args.update(overrides)
    return args


def snapshot(pg, db):
    jobs = pg.query(db, "SELECT * FROM financial_screener.dag_configuration ORDER BY dag_id, job_name")
    groups = pg.query(db, "SELECT * FROM financial_screener.exchange_groups ORDER BY group_name")
    return jobs, groups


# -- defect 1: COMMIT / ROLLBACK in a migration -------------------------------------------------------------

# Every keyword is covered by the scanner's tests (test_validators_properties.py); three go through the module.
@pytest.mark.parametrize("statement", ["COMMIT;", "ROLLBACK;", "START TRANSACTION;"])
def test_transaction_control_is_refused_before_anything_runs(run_module, postgres_server, pg_database, statement):
    pg, db = postgres_server, pg_database
    migrations = [
        {"name": "0001_first.sql", "sql": "CREATE TABLE public.first (id int);"},
        {"name": "0002_commits.sql", "sql": "CREATE TABLE public.before_commit (id int);\n%s\n"
                                            "CREATE TABLE public.after_commit (id int);" % statement},
    ]
    result = migrations_run(run_module, pg, db, migrations)
    no_traceback(result)
    assert result.get("failed") is True
    keyword = statement.split()[0].rstrip(";")
    assert "0002_commits.sql line 2: %s" % keyword in result["msg"], result["msg"]
    assert "nothing was run" in result["msg"]
    for table in ("public.first", "public.before_commit", "public.after_commit",
                  "financial_screener.schema_migrations"):
        assert not table_exists(pg, db, table), table
    if statement != "COMMIT;":
        return
    # the next run with the file fixed applies everything: the database is not stuck
    migrations[1]["sql"] = "CREATE TABLE public.before_commit (id int);"
    fixed = migrations_run(run_module, pg, db, migrations)
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["applied"] == ["0001_first.sql", "0002_commits.sql"]


def test_the_word_commit_in_bodies_comments_and_literals_is_fine(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    sql = (
        "-- COMMIT; would end the transaction, ROLLBACK; too\n"
        "/* BEGIN; /* nested */ END; */\n"
        "CREATE TABLE public.notes (body text DEFAULT 'COMMIT; ROLLBACK;');\n"
        "CREATE FUNCTION public.f() RETURNS text LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n  RETURN 'COMMIT';\nEND;\n$body$;\n"
        "CREATE FUNCTION public.g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END;\n"
        "COMMENT ON TABLE public.notes IS $$ends with COMMIT;$$;\n"
    )
    result = migrations_run(run_module, pg, db, [{"name": "0001_words.sql", "sql": sql}])
    no_traceback(result)
    assert not result.get("failed"), result.get("msg")
    assert pg.query(db, "SELECT public.f(), public.g()") == [("COMMIT", 1)]


# -- defect 2: session settings leak between migrations ----------------------------------------------------

SESSION_MIGRATIONS = [
    {"name": "0001_schema.sql", "sql": "CREATE SCHEMA s1;\nSET search_path = s1, public;\nCREATE TABLE t1 (id int);"},
    {"name": "0002_table.sql", "sql": "CREATE TABLE t2 (id int);"},
]


def where_is(pg, db, table):
    return pg.query(db, "SELECT table_schema FROM information_schema.tables WHERE table_name = %s", (table,))


def test_one_call_and_two_calls_give_the_same_schema(run_module, postgres_server, pg_database):
    pg = postgres_server
    one_call, two_calls = pg_database, pg.create_database()
    try:
        result = migrations_run(run_module, pg, one_call, SESSION_MIGRATIONS)
        assert result["applied"] == ["0001_schema.sql", "0002_table.sql"], result.get("msg")
        first = migrations_run(run_module, pg, two_calls, SESSION_MIGRATIONS, target_version=1)
        second = migrations_run(run_module, pg, two_calls, SESSION_MIGRATIONS)
        assert first["applied"] == ["0001_schema.sql"] and second["applied"] == ["0002_table.sql"]
        assert where_is(pg, one_call, "t1") == where_is(pg, two_calls, "t1") == [("s1",)]
        assert where_is(pg, one_call, "t2") == where_is(pg, two_calls, "t2") == [("public",)]
    finally:
        pg.drop_database(two_calls)


# -- defect 3: trailing newline, two groups, localtime ------------------------------------------------------

def test_trailing_newline_and_localtime_are_refused(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    assert not run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR)).get("failed")
    groups = copy.deepcopy(DEFAULTS["appdb_config_exchange_groups"])
    groups.append({"name": "us_again", "timezone": "localtime", "exchanges": ["NYSE\n"]})
    groups.append({"name": "lse2\n", "timezone": "Europe/London\n", "exchanges": ["XLON"]})
    jobs = copy.deepcopy(DEFAULTS["appdb_config_dag_configuration"])
    jobs[0]["memory_request"] = "1Gi\n"
    jobs[1]["job_name"] += "\n"
    result = run_module("appdb_dag_config", seed_args(pg, db, exchange_groups=groups, dag_configuration=jobs))
    no_traceback(result)
    assert result.get("failed") is True
    msg = result["msg"]
    assert "exchange 'NYSE\\n' is not a valid exchange code" in msg
    assert "timezone 'localtime' is not an IANA time zone" in msg
    assert "timezone 'Europe/London\\n' is not an IANA time zone" in msg
    assert "(lse2\n): name must be lower case" in msg
    assert "memory_request '1Gi\\n' is not a Kubernetes quantity" in msg
    assert "job_name must be lower case" in msg
    assert snapshot(pg, db) == ([], [])


# -- defect 5: faults and malformed files --------------------------------------------------------------------

def test_connection_lost_mid_upsert_is_a_message_not_a_traceback(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    assert not run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR)).get("failed")
    assert not run_module("appdb_dag_config", seed_args(pg, db)).get("failed")
    before = snapshot(pg, db)
    # The stand-in for a lost connection: the server ends the module's own session in the middle of the upsert.
    with pg.admin_connection(db) as conn:
        conn.cursor().execute(
            "CREATE FUNCTION public.drop_me() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NEW; END $$;"
            "CREATE TRIGGER drop_me BEFORE INSERT OR UPDATE ON financial_screener.dag_configuration "
            "FOR EACH ROW EXECUTE FUNCTION public.drop_me()")
    args = seed_args(pg, db)
    args["dag_configuration"][0]["memory_request"] = "2Gi"
    result = run_module("appdb_dag_config", args)
    no_traceback(result)
    assert result.get("failed") is True
    assert "connection to PostgreSQL was lost" in result["msg"], result["msg"]
    assert "rolled back: nothing was written" in result["msg"]
    assert snapshot(pg, db) == before


def test_connection_lost_in_a_migration_names_the_cause(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrations = [
        {"name": "0001_ok.sql", "sql": "CREATE TABLE public.ok (id int);"},
        {"name": "0002_dies.sql", "sql": "CREATE TABLE public.half (id int);\n"
                                         "SELECT pg_terminate_backend(pg_backend_pid()), pg_sleep(5);"},
    ]
    result = migrations_run(run_module, pg, db, migrations)
    no_traceback(result)
    assert result.get("failed") is True
    msg = result["msg"]
    assert "0002_dies.sql: the connection to PostgreSQL was lost" in msg, msg
    # the cause, not the "connection already closed" of a rollback on the dead connection
    assert "server closed the connection unexpectedly" in msg and "already closed" not in msg
    assert "nothing of this migration was applied" in msg and "0001_ok.sql" in msg
    assert table_exists(pg, db, "public.ok") and not table_exists(pg, db, "public.half")
    assert pg.query(db, "SELECT version FROM financial_screener.schema_migrations") == [(1,)]


def test_files_that_are_not_utf8_or_not_files(run_module, postgres_server, pg_database, tmp_path):
    pg, db = postgres_server, pg_database
    (tmp_path / "0001_latin1.sql").write_bytes("COMMENT ON SCHEMA public IS 'caf\u00e9';".encode("latin-1"))
    (tmp_path / "0002_dir.sql").mkdir()
    (tmp_path / "0003_dangling.sql").symlink_to(tmp_path / "nowhere")
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=str(tmp_path)))
    no_traceback(result)
    assert result.get("failed") is True
    msg = result["msg"]
    assert "0001_latin1.sql: is not UTF-8 (byte 0xe9 at offset 32)" in msg, msg
    assert "0002_dir.sql: is a directory, not a file" in msg
    assert "0003_dangling.sql: cannot be read" in msg
    assert not table_exists(pg, db, "financial_screener.schema_migrations")


def test_byte_order_mark_is_stripped_and_does_not_change_the_checksum(run_module, postgres_server, pg_database,
                                                                      tmp_path):
    pg, db = postgres_server, pg_database
    (tmp_path / "0001_bom.sql").write_bytes(b"\xef\xbb\xbfCREATE TABLE public.bom (id int);\n")
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=str(tmp_path)))
    no_traceback(result)
    assert not result.get("failed"), result.get("msg")
    assert table_exists(pg, db, "public.bom")
    # the same migration without the BOM (an editor removed it) is the same migration
    again = migrations_run(run_module, pg, db, [{"name": "0001_bom.sql", "sql": "CREATE TABLE public.bom (id int);"}])
    assert not again.get("failed") and again["changed"] is False, again.get("msg")


# -- defect 7: prune with an empty list --------------------------------------------------------------------

def test_prune_with_an_empty_list_is_refused_unless_allowed(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR))
    assert not run_module("appdb_dag_config", seed_args(pg, db)).get("failed")
    before = snapshot(pg, db)
    refused = run_module("appdb_dag_config", dict(appdb_module_args(pg, db), dag_configuration=[], prune=True))
    no_traceback(refused)
    assert refused.get("failed") is True
    assert "prune is true and dag_configuration is empty" in refused["msg"]
    assert "allow_empty_prune: true" in refused["msg"]
    assert snapshot(pg, db) == before
    allowed = run_module("appdb_dag_config", dict(appdb_module_args(pg, db), dag_configuration=[], prune=True,
                                                  allow_empty_prune=True))
    assert not allowed.get("failed"), allowed.get("msg")
    assert allowed["dag_configuration"]["deleted"] == 4
    assert pg.query(db, "SELECT count(*) FROM financial_screener.dag_configuration") == [(0,)]


# -- defect 8: check mode on a new database -------------------------------------------------------------------

def test_check_mode_on_a_new_database_predicts_the_run(run_module, postgres_server, pg_database, tmp_path):
    """The appdb_config role with --check on an empty database: pending migrations and rows to insert."""
    pg, db = postgres_server, pg_database
    play = tmp_path / "role.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "vars_files": [str(CLUSTER_CONTRACT_FILE)],
        "vars": {"ansible_python_interpreter": sys.executable, "appdb_config_host": "127.0.0.1",
                 "appdb_config_port": pg.port, "appdb_config_database": db, "appdb_config_login_user": pg.user,
                 "appdb_config_sslmode": "disable", "vault_appdb_postgres_password": pg.password},
        "tasks": [
            {"name": "Migrations", "ansible.builtin.include_role": {"name": "appdb_config",
                                                                    "tasks_from": "migrations.yml"}},
            {"name": "Rows", "ansible.builtin.include_role": {"name": "appdb_config", "tasks_from": "rows.yml"}},
        ],
    }]))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "--check", str(play)]
    proc = subprocess.run(cmd, cwd=str(REPO), env=run_module.env(), capture_output=True, text=True, timeout=300)
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:]
    stats = out["stats"]["localhost"]
    assert stats["failures"] == 0 and stats["changed"] == 2
    names = [t["task"]["name"] for t in out["plays"][0]["tasks"]]
    reports = [str(t["hosts"]["localhost"].get("msg", "")) for t in out["plays"][0]["tasks"]
               if "Report the" in t["task"]["name"]]
    assert len(reports) == 2, names
    assert "applied now: none" in reports[0]
    assert "'inserted': 4" in reports[1], reports
    assert pg.query(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'financial_screener'") == [(0,)]
    assert pg.password not in proc.stdout


# -- defect 9: target_version, empty directory, empty dag_ids -------------------------------------------------

def test_target_version_does_not_call_applied_files_unknown(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    migrations = [{"name": "000%d_m.sql" % n, "sql": "SELECT %d" % n} for n in (1, 2, 3)]
    migrations_run(run_module, pg, db, migrations)
    result = migrations_run(run_module, pg, db, migrations, target_version=1)
    assert not result.get("failed"), result.get("msg")
    assert result["unknown_applied"] == [] and result["changed"] is False
    assert result["already_applied"] == ["0001_m.sql"]
    migrations.append({"name": "0004_m.sql", "sql": "SELECT 4"})
    limited = migrations_run(run_module, pg, db, migrations, target_version=3)
    assert limited["beyond_target"] == ["0004_m.sql"] and limited["changed"] is False


def test_empty_migration_directory_warns_and_changes_nothing(run_module, postgres_server, pg_database, tmp_path):
    pg, db = postgres_server, pg_database
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=str(tmp_path)))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert any("No migrations given (no *.sql file in %s)" % tmp_path in w for w in result.get("warnings", []))
    assert pg.query(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'financial_screener'") == [(0,)]


def test_dag_status_with_no_dag_ids_is_refused(run_module, postgres_server, pg_database):
    pg, db = postgres_server, pg_database
    result = run_module("airflow_dag_status", dict(pg.module_args(db), dag_ids=[]))
    no_traceback(result)
    assert result.get("failed") is True and "dag_ids is empty" in result["msg"]
