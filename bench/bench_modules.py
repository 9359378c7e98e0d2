#!/usr/bin/env python3
"""Benchmark of the appdb/Airflow area (prints a table; no assertions on time).

1. Seeding N (default 10,000) dag_configuration rows with stratdata.pi_cluster.appdb_dag_config (one task,
   batched) vs. a per-row loop of community.postgresql.postgresql_query (the naive way), measured on
   --loop-rows rows (default 500) and extrapolated linearly to N -- the output says so.
2. A no-op re-seed of the same N rows (changed=false).
3. Each reference DAG's parse time in real Airflow 3.0.2 (DagBag in a fresh process per file = cold, and
   all files in one process = warm) and the number of database connections/statements made while
   parsing (must be 0), plus one full `airflow dag-processor -n 1` pass.

Real services: PostgreSQL 15 (initdb in /tmp) and the cached Airflow venv (scripts/airflow-venv.sh).
Run from the repository root with the control venv:  python bench/bench_modules.py [--rows N] [--loop-rows M]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

import yaml  # noqa: E402

from fixtures.airflow import AirflowEnv, probe_parse  # noqa: E402
from fixtures.postgres import ModuleRunner, PostgresServer  # noqa: E402

MIGRATIONS_DIR = os.path.join(REPO, "roles", "appdb_config", "files", "migrations")
DEFAULTS = yaml.safe_load(open(os.path.join(REPO, "roles", "appdb_config", "defaults", "main.yml")))
DAG_FILES = ["data_collection.py", "historical_load_equities.py", "calculate_indicators.py"]

LOOP_PLAY = """
- hosts: localhost
  gather_facts: false
  vars_files: [{rows_file}]
  vars:
    ansible_python_interpreter: {python}
  tasks:
    - name: One postgresql_query per row (the naive way)
      community.postgresql.postgresql_query:
        login_host: 127.0.0.1
        login_port: {port}
        login_user: {user}
        login_password: {password}
        login_db: {db}
        ssl_mode: disable
        query: >-
          INSERT INTO financial_screener.dag_configuration
            (dag_id, job_name, exchanges, cpu_request, memory_request, batch_size, enabled)
          VALUES (%(dag_id)s, %(job_name)s, %(exchanges)s, %(cpu)s, %(mem)s, %(batch)s, true)
          ON CONFLICT (dag_id, job_name) DO UPDATE SET exchanges = EXCLUDED.exchanges,
            cpu_request = EXCLUDED.cpu_request, memory_request = EXCLUDED.memory_request,
            batch_size = EXCLUDED.batch_size
        named_args:
          dag_id: "{{{{ item.dag_id }}}}"
          job_name: "{{{{ item.job_name }}}}"
          exchanges: "{{{{ item.exchanges }}}}"
          cpu: "{{{{ item.cpu_request }}}}"
          mem: "{{{{ item.memory_request }}}}"
          batch: "{{{{ item.batch_size }}}}"
      loop: "{{{{ bench_rows }}}}"
      no_log: true
"""


def bench_rows(count: int, offset: int = 0) -> list[dict]:
    exchanges = [e for g in DEFAULTS["appdb_config_exchange_groups"] for e in g["exchanges"]]
    return [
        {"dag_id": "bench_dag_%02d" % (i % 50), "job_name": "job-%06d" % i,
         "exchanges": [exchanges[i % len(exchanges)]], "cpu_request": "%dm" % (100 + i % 900),
         "memory_request": "%dMi" % (256 + i % 1024), "batch_size": 100 + i % 900}
        for i in range(offset, offset + count)
    ]


def seed_module(run, pg, db, rows):
    result = run("appdb_dag_config", dict(pg.module_args(db), dag_configuration=rows,
                                          job_defaults=DEFAULTS["appdb_config_job_defaults"],
                                          exchange_groups=DEFAULTS["appdb_config_exchange_groups"]))
    if result.get("failed"):
        raise SystemExit("appdb_dag_config failed: %s" % result.get("msg"))
    return result


def seed_loop(runner, pg, db, rows, workdir):
    rows_file = os.path.join(workdir, "rows.json")
    with open(rows_file, "w") as handle:
        json.dump({"bench_rows": rows}, handle)
    play = os.path.join(workdir, "loop.yml")
    with open(play, "w") as handle:
        handle.write(LOOP_PLAY.format(rows_file=rows_file, python=sys.executable, port=pg.port, user=pg.user,
                                      password=pg.password, db=db))
    env = runner.env()
    start = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", play], cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("postgresql_query loop failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    return seconds


def table(title, header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "+".join("-" * (w + 2) for w in widths)
    print("\n" + title)
    print("+" + line + "+")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
    print("+" + line + "+")
    for row in rows:
        print("| " + " | ".join(str(c).rjust(w) if isinstance(c, (int, float)) or str(c)[:1].isdigit()
                                else str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print("+" + line + "+")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000, help="rows seeded by appdb_dag_config (default 10000)")
    parser.add_argument("--loop-rows", type=int, default=500,
                        help="rows seeded by the per-row postgresql_query loop, extrapolated to --rows (default 500)")
    parser.add_argument("--skip-airflow", action="store_true", help="only the PostgreSQL part")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="pi-cluster-bench-")
    try:
        run_bench(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_bench(args, workdir):
    runner = ModuleRunner(workdir)
    with PostgresServer.started() as pg:
        db_module, db_loop = pg.create_database("bench_module"), pg.create_database("bench_loop")
        for db in (db_module, db_loop):
            result = runner("appdb_migrations", dict(pg.module_args(db), path=MIGRATIONS_DIR))
            if result.get("failed"):
                raise SystemExit(result["msg"])
        rows = bench_rows(args.rows)

        first = seed_module(runner, pg, db_module, rows)
        noop = seed_module(runner, pg, db_module, rows)
        count = pg.query(db_module, "SELECT count(*) FROM financial_screener.dag_configuration")[0][0]
        loop_seconds = seed_loop(runner, pg, db_loop, bench_rows(args.loop_rows), workdir)
        loop_count = pg.query(db_loop, "SELECT count(*) FROM financial_screener.dag_configuration")[0][0]
        per_row = loop_seconds / args.loop_rows
        loop_estimate = per_row * args.rows
        extrapolated = args.loop_rows != args.rows

        table("Seeding financial_screener.dag_configuration (real PostgreSQL 15, through ansible-playbook)",
              ["method", "rows", "seconds", "rows/s", "changed", "note"],
              [["appdb_dag_config (1 task, batched)", args.rows, "%.2f" % first["_seconds"],
                "%.0f" % (args.rows / first["_seconds"]), str(first["changed"]),
                "inserted=%d, rows in table=%d" % (first["dag_configuration"]["inserted"], count)],
               ["appdb_dag_config no-op re-seed", args.rows, "%.2f" % noop["_seconds"],
                "%.0f" % (args.rows / noop["_seconds"]), str(noop["changed"]),
                "unchanged=%d" % noop["dag_configuration"]["unchanged"]],
               ["postgresql_query loop (measured)", args.loop_rows, "%.2f" % loop_seconds,
                "%.1f" % (args.loop_rows / loop_seconds), "True", "rows in table=%d" % loop_count],
               ["postgresql_query loop (%s)" % ("EXTRAPOLATED linearly" if extrapolated else "measured"),
                args.rows, "%.1f" % loop_estimate, "%.1f" % (1 / per_row), "-",
                "%.3f s/row x %d rows" % (per_row, args.rows) if extrapolated else ""]])
        print("speed-up of appdb_dag_config over the per-row loop for %d rows: %.0fx%s"
              % (args.rows, loop_estimate / first["_seconds"],
                 " (loop time extrapolated from %d measured rows)" % args.loop_rows if extrapolated else ""))

        if args.skip_airflow:
            return
        start = time.monotonic()
        env = AirflowEnv.create(pg)
        setup = time.monotonic() - start
        try:
            files = [os.path.join(env.dags_folder, name) for name in DAG_FILES]
            cold = [probe_parse(env, [path])[0] for path in files]
            warm = probe_parse(env, files)
            start = time.monotonic()
            env.parse()
            processor = time.monotonic() - start
            dags = env.meta_query("SELECT count(*) FROM dag WHERE NOT is_stale")[0][0]
            table("Reference DAGs in real Airflow 3.0.2 (DagBag parse; DB use counted via psycopg2.connect "
                  "and SQLAlchemy statements)",
                  ["file", "dags", "cold parse s", "warm parse s", "DB connects", "SQL statements", "import errors"],
                  [[c["file"], ",".join(c["dags"]), "%.3f" % c["seconds"], "%.3f" % w["seconds"],
                    c["db_connects"] + w["db_connects"], c["sql_statements"] + w["sql_statements"],
                    len(c["import_errors"])] for c, w in zip(cold, warm)])
            print("cold = fresh process per file (includes importing the providers it uses); warm = all files "
                  "in one process, providers already imported for the 2nd and 3rd file.")
            print("airflow dag-processor -n 1 (whole folder, process start included): %.1f s, %d DAGs serialized; "
                  "Airflow env setup (venv check + db migrate): %.1f s" % (processor, dags, setup))
        finally:
            env.destroy()


if __name__ == "__main__":
    main()
