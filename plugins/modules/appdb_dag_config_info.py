#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: appdb_dag_config_info
short_description: Read the DAG job configuration rows and exchange groups of the application database
description:
  - Returns the rows of C(financial_screener.dag_configuration) (optionally only those of one DAG) and of
    C(financial_screener.exchange_groups), the two tables M(stratdata.pi_cluster.appdb_dag_config) writes.
  - B(Read-only) - the statements run in a C(READ ONLY) transaction that is rolled back, so the module
    never changes the database, whatever the connecting role may do. It behaves the same in check mode.
  - Missing tables (migrations not applied), a role without read permission and connection problems fail
    with one clear message that names the fix; the password never appears in a message or a result.
  - The verify role reads the configuration with it to compare the task pods' resources with the rows.
version_added: "1.0.0"
options:
  database:
    description:
      - Application database.
      - The cluster contract's C(pi_cluster_appdb_database), passed by the calling role.
    type: str
    required: true
    aliases: [db, login_db]
  schema:
    description:
      - Schema holding the two tables.
      - The cluster contract's C(pi_cluster_appdb_schema), passed by the calling role.
    type: str
    required: true
  dag_id:
    description:
      - Return only the C(dag_configuration) rows of this DAG. All rows when omitted.
      - The exchange groups are returned in full either way (they are not per DAG).
    type: str
extends_documentation_fragment:
  - stratdata.pi_cluster.postgres
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same queries in check mode and never reports a change.
  diff_mode:
    support: none
seealso:
  - module: stratdata.pi_cluster.appdb_dag_config
  - module: stratdata.pi_cluster.appdb_migrations
author:
  - StratData platform team (@stratdata)
"""

EXAMPLES = r"""
- name: Read the configuration of the historical load
  stratdata.pi_cluster.appdb_dag_config_info:
    login_host: "{{ appdb_address }}"
    login_user: "{{ pi_cluster_appdb_admin_user }}"
    login_password: "{{ vault_appdb_postgres_password }}"
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
    dag_id: historical_load_equities
  register: dag_config
  no_log: true

- name: Show the enabled jobs
  ansible.builtin.debug:
    msg: "{{ dag_config.dag_configuration | selectattr('enabled') | map(attribute='job_name') | list }}"
"""

RETURN = r"""
dag_configuration:
  description:
    - Rows of C(dag_configuration), ordered by C(dag_id) then C(job_name); only those of O(dag_id) when given.
    - C(cpu_limit) and C(memory_limit) are null when no limit is set.
  returned: success
  type: list
  elements: dict
  sample:
    - dag_id: historical_load_equities
      job_name: us_markets
      exchanges: [NYSE, NASDAQ]
      cpu_request: 500m
      memory_request: 1Gi
      cpu_limit: "1"
      memory_limit: 2Gi
      batch_size: 500
      enabled: true
      updated_at: "2026-11-23T09:12:44.120031+00:00"
exchange_groups:
  description: Rows of C(exchange_groups), ordered by name.
  returned: success
  type: list
  elements: dict
  sample:
    - name: us_markets
      timezone: America/New_York
      exchanges: [NYSE, NASDAQ]
      updated_at: "2026-11-23T09:12:44.120031+00:00"
missing_tables:
  description: Which of the two tables do not exist (the module then fails).
  returned: when a table is missing
  type: list
  elements: str
  sample: [dag_configuration, exchange_groups]
queries:
  description: Statements run, with their parameters.
  returned: always
  type: list
  elements: str
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.pg_connection import (
    QueryLog,
    connect,
    db_error_message,
    pg_argument_spec,
    psycopg2,
)

# Matched with fullmatch (a "$" would accept a trailing newline), as in appdb_dag_config.
IDENT_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
TABLES = ("dag_configuration", "exchange_groups")
JOB_COLUMNS = ("dag_id", "job_name", "exchanges", "cpu_request", "memory_request", "cpu_limit", "memory_limit",
               "batch_size", "enabled", "updated_at")
GROUP_COLUMNS = ("name", "timezone", "exchanges", "updated_at")
INSUFFICIENT_PRIVILEGE = "42501"


def argument_spec():
    spec = pg_argument_spec()
    spec.update(
        schema=dict(type="str", required=True),
        dag_id=dict(type="str"),
    )
    return spec


def as_row(columns, values):
    row = dict(zip(columns, values))
    if row.get("exchanges") is not None:
        row["exchanges"] = list(row["exchanges"])
    if row.get("updated_at") is not None:
        row["updated_at"] = row["updated_at"].isoformat()
    return row


def missing_tables(log, schema):
    """Names of the two tables that do not exist (from pg_catalog, which every role may read)."""
    log.execute("SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                (schema, list(TABLES)))
    present = set(r[0] for r in log.cursor.fetchall())
    return [t for t in TABLES if t not in present]


def read(log, schema, dag_id):
    query = ('SELECT %s FROM "%s".dag_configuration' % (", ".join(JOB_COLUMNS), schema))
    if dag_id is None:
        log.execute(query + " ORDER BY dag_id, job_name")
    else:
        log.execute(query + " WHERE dag_id = %s ORDER BY dag_id, job_name", (dag_id,))
    jobs = [as_row(JOB_COLUMNS, r) for r in log.cursor.fetchall()]
    log.execute('SELECT group_name, timezone, exchanges, updated_at FROM "%s".exchange_groups ORDER BY group_name'
                % schema)
    groups = [as_row(GROUP_COLUMNS, r) for r in log.cursor.fetchall()]
    return jobs, groups


def run_module():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    schema = params["schema"]
    if not IDENT_RE.fullmatch(schema):
        module.fail_json(msg="schema %r must be a lower-case SQL identifier" % schema, queries=[])
    result = dict(changed=False, queries=[])

    conn = connect(module, autocommit=False)
    # Read-only for the server too: any write in this session would fail.
    conn.set_session(readonly=True)
    log = QueryLog(conn.cursor())
    result["queries"] = log.queries
    where = "%s.{%s} in database %s" % (schema, ",".join(TABLES), params["database"])
    try:
        missing = missing_tables(log, schema)
        if missing:
            module.fail_json(
                msg="%s %s %s exist in database %s (appdb_config not applied): run "
                    "stratdata.pi_cluster.appdb_migrations, e.g. `ansible-playbook site.yml --tags appdb_config`"
                    % ("Table" if len(missing) == 1 else "Tables",
                       " and ".join("%s.%s" % (schema, t) for t in missing),
                       "does not" if len(missing) == 1 else "do not", params["database"]),
                missing_tables=missing, **result)
        jobs, groups = read(log, schema, params["dag_id"])
    except psycopg2.Error as exc:
        detail = db_error_message(exc, module)
        if getattr(exc, "pgcode", None) == INSUFFICIENT_PRIVILEGE:
            module.fail_json(
                msg="Role %s may not read %s: %s. Connect as the migrating role or grant USAGE on the schema "
                    "and SELECT on its tables (migration 0003 grants them to the database owner)"
                    % (params["login_user"], where, detail), **result)
        module.fail_json(msg="Could not read %s: %s" % (where, detail), **result)
    finally:
        try:
            conn.rollback()
            conn.close()
        except psycopg2.Error:  # the connection is gone already: nothing to undo
            pass

    result.update(dag_configuration=jobs, exchange_groups=groups)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
