"""The restore drill's dump handling and comparison on a REAL PostgreSQL 15 with the real pg_dump/pg_restore.

The live database gets the project's migrations, the default configuration rows (through the real
appdb_migrations / appdb_dag_config modules) and a data table; the real pg_dump writes the custom-format
dump exactly as the Velero pre-backup hook does; stratdata.pi_cluster.appdb_restore_drill then restores it
into a scratch database on the same server and compares (through the real ansible-playbook).
"""

from __future__ import annotations

import copy
import os
import subprocess
import uuid

import pytest
import yaml
from conftest import CONTRACT, REPO, appdb_module_args
from fixtures.postgres import PG_BIN

MIGRATIONS_DIR = os.path.join(str(REPO), "roles", "appdb_config", "files", "migrations")
DEFAULTS = yaml.safe_load(open(os.path.join(str(REPO), "roles", "appdb_config", "defaults", "main.yml")))
BACKUP = "velero-daily-20261202020000"
pytestmark = [pytest.mark.postgres, pytest.mark.ansible]



@pytest.fixture(scope="module")
def live_template(postgres_server, tmp_path_factory):
    """Once per module: a live appdb built through the real modules (migrations, the default configuration
    rows) plus 250 rows of data; each test gets its own copy (CREATE DATABASE ... TEMPLATE)."""
    from fixtures.postgres import ModuleRunner

    pg = postgres_server
    db = pg.create_database()
    run_module = ModuleRunner(str(tmp_path_factory.mktemp("live")))
    result = run_module("appdb_migrations", dict(appdb_module_args(pg, db), path=MIGRATIONS_DIR))
    assert not result.get("failed"), result.get("msg")
    result = run_module("appdb_dag_config", dict(
        appdb_module_args(pg, db), job_defaults=copy.deepcopy(DEFAULTS["appdb_config_job_defaults"]),
        exchange_groups=copy.deepcopy(DEFAULTS["appdb_config_exchange_groups"]),
        dag_configuration=copy.deepcopy(DEFAULTS["appdb_config_dag_configuration"])))
    assert not result.get("failed"), result.get("msg")
    pg.query(db, "CREATE TABLE financial_screener.prices (symbol text, day date, close numeric, "
                 "PRIMARY KEY (symbol, day))")
    pg.query(db, "INSERT INTO financial_screener.prices SELECT 'SYM' || (i % 10), DATE '2026-01-01' + i / 10, i "
                 "FROM generate_series(0, 249) AS i")
    try:
        yield db
    finally:
        pg.drop_database(db)


@pytest.fixture
def live_db(postgres_server, live_template):
    pg = postgres_server
    name = "t_" + uuid.uuid4().hex[:12]
    with pg.admin_connection() as conn, conn.cursor() as cur:
        cur.execute('CREATE DATABASE "%s" TEMPLATE "%s" OWNER %s' % (name, live_template, pg.user))
    pg.databases.append(name)
    try:
        yield name
    finally:
        pg.drop_database(name)


def pg_dump(pg, db, path):
    """The hook's command: pg_dump --format=custom to a file (real PostgreSQL 15 pg_dump)."""
    env = dict(os.environ, PGPASSWORD=pg.password)
    subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", db,
                    "--format=custom", "--file", str(path)], check=True, env=env, capture_output=True)
    return path


def backup_started(pg, db):
    """The moment of the dump, from the server's clock (what Velero's startTimestamp stands for)."""
    return pg.query(db, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")[0][0]


def drill_args(pg, db, dump, started=None, **extra):
    args = dict(pg.module_args(db), backup=BACKUP, dump_path=str(dump),
                schema=CONTRACT["pi_cluster_appdb_schema"],
                pg_restore_command=[os.path.join(PG_BIN, "pg_restore")],
                scratch=dict(login_host=pg.host, port=pg.port, login_user=pg.user, login_password=pg.password,
                             database="drill_" + db, sslmode="disable"))
    if started:
        args["backup_started"] = started
    args.update(extra)
    return args


def scratch_exists(pg, db):
    return bool(pg.query(db, "SELECT 1 FROM pg_database WHERE datname = %s", ("drill_" + db,)))


def test_dump_restore_compare_equal(run_module, postgres_server, live_db, tmp_path):
    pg, db = postgres_server, live_db
    started = backup_started(pg, db)
    dump = pg_dump(pg, db, tmp_path / "appdb.dump")
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump, started, strict=True))
    assert not result.get("failed"), result.get("msg")
    assert result["ok"] is True and result["changed"] is True
    assert result["problems"] == [] and result["differences"] == []
    counts = {t["table"]: (t["live"], t["restored"], t["verdict"]) for t in result["tables"]}
    assert counts["prices"] == (250, 250, "equal")
    assert counts["dag_configuration"][0] == counts["dag_configuration"][1] > 0
    assert counts["exchange_groups"][0] == counts["exchange_groups"][1] > 0
    assert result["lines"][0].startswith("restore drill of %s: PASSED" % BACKUP)
    assert result["dump"]["toc_entries"] > 0
    assert not scratch_exists(pg, db), "the scratch database is dropped afterwards"


def test_one_row_changed_after_the_dump_is_reported(run_module, postgres_server, live_db, tmp_path):
    pg, db = postgres_server, live_db
    started = backup_started(pg, db)
    dump = pg_dump(pg, db, tmp_path / "appdb.dump")
    dag_id, job = pg.query(db, "SELECT dag_id, job_name FROM financial_screener.dag_configuration "
                               "ORDER BY 1, 2 LIMIT 1")[0]
    pg.query(db, "UPDATE financial_screener.dag_configuration SET batch_size = batch_size + 1 "
                 "WHERE dag_id = %s AND job_name = %s", (dag_id, job))
    pg.query(db, "INSERT INTO financial_screener.prices VALUES ('NEW', DATE '2027-01-01', 1)")

    # The backup started before the change: reported as changed since the backup; the drill passes.
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump, started))
    assert not result.get("failed"), result.get("msg")
    (diff,) = result["differences"]
    assert diff["table"] == "dag_configuration" and diff["kind"] == "changed" and diff["since_backup"] is True
    assert diff["key"] == "dag_id=%s, job_name=%s" % (dag_id, job)
    assert diff["columns"] == ["batch_size", "updated_at"]
    assert "dag_configuration dag_id=%s, job_name=%s: changed (batch_size, updated_at) since the backup" % (
        dag_id, job) in result["lines"]
    prices = [t for t in result["tables"] if t["table"] == "prices"][0]
    assert (prices["live"], prices["restored"], prices["verdict"]) == (251, 250, "live grew since backup")

    # Strict: the same difference fails the drill, naming the backup and the row.
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump, started, strict=True))
    assert result.get("failed")
    assert result["msg"].startswith("Restore drill of backup %s FAILED:" % BACKUP)
    assert "prices: live 251 rows, restored 250 rows" in result["msg"]
    assert "dag_configuration row dag_id=%s, job_name=%s: changed since the backup (strict)" % (dag_id, job) \
        in result["msg"]


def test_content_difference_not_explained_by_time_fails(run_module, postgres_server, live_db, tmp_path):
    """A row that differs although nobody wrote it after the backup: the restore is wrong."""
    pg, db = postgres_server, live_db
    dump = pg_dump(pg, db, tmp_path / "appdb.dump")
    pg.query(db, "UPDATE financial_screener.exchange_groups SET timezone = 'UTC' "
                 "WHERE group_name = (SELECT min(group_name) FROM financial_screener.exchange_groups)")
    later = backup_started(pg, db)  # a backup 'started' after the change: the dump should have had it
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump, later))
    assert result.get("failed")
    assert "configuration table exchange_groups row group_name=" in result["msg"]
    assert "changed (columns timezone, updated_at), and not written since the backup started" in result["msg"]
    assert not scratch_exists(pg, db)


@pytest.mark.parametrize("keep", [0.6, 0.97])
def test_truncated_dump_fails_naming_the_backup(run_module, postgres_server, live_db, tmp_path, keep):
    pg, db = postgres_server, live_db
    dump = pg_dump(pg, db, tmp_path / "appdb.dump")
    data = dump.read_bytes()
    dump.write_bytes(data[: int(len(data) * keep)])
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump))
    assert result.get("failed")
    assert result["msg"].startswith("Restore drill of backup %s: " % BACKUP), result["msg"]
    assert "the dump is truncated or corrupt" in result["msg"], result["msg"]
    assert "pg_restore said:" in result["msg"]
    assert pg.password not in result["msg"]
    assert not scratch_exists(pg, db), "nothing half-restored is left behind"


@pytest.mark.parametrize("content, words", [
    (None, "is missing from the restored volume"),
    (b"", "is empty (0 bytes)"),
    (b"-- PostgreSQL database dump\nCREATE TABLE x ();\n", "is not a pg_dump custom-format archive"),
], ids=["missing", "empty", "plain-sql"])
def test_missing_empty_or_wrong_dump_fails_naming_the_backup(run_module, postgres_server, live_db, tmp_path,
                                                             content, words):
    pg, db = postgres_server, live_db
    dump = tmp_path / "appdb.dump"
    if content is not None:
        dump.write_bytes(content)
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump))
    assert result.get("failed")
    assert result["msg"].startswith("Restore drill of backup %s: " % BACKUP)
    assert words in result["msg"], result["msg"]
    assert not scratch_exists(pg, db)


def test_check_mode_reads_the_dump_and_restores_nothing(run_module, postgres_server, live_db, tmp_path):
    pg, db = postgres_server, live_db
    dump = pg_dump(pg, db, tmp_path / "appdb.dump")
    result = run_module("appdb_restore_drill", drill_args(pg, db, dump), check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["tables"] == []
    assert "is readable" in result["lines"][0]
    assert not scratch_exists(pg, db)


def test_scratch_database_may_not_be_the_live_one(run_module, postgres_server, live_db, tmp_path):
    pg, db = postgres_server, live_db
    dump = pg_dump(pg, db, tmp_path / "appdb.dump")
    args = drill_args(pg, db, dump)
    args["scratch"]["database"] = db
    result = run_module("appdb_restore_drill", args)
    assert result.get("failed")
    assert "must not be the live database" in result["msg"]
    assert pg.query(db, "SELECT count(*) FROM financial_screener.prices")[0][0] == 250
