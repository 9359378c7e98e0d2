#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: appdb_restore_drill
short_description: Restore a backup's pg_dump into a scratch database and compare it with the live appdb
version_added: "0.2.0"
description:
  - Checks the dump that the Velero pre-backup hook wrote (exists, not empty, a pg_dump custom-format archive
    that C(pg_restore --list) reads), restores it with C(pg_restore --exit-on-error --single-transaction) into a
    freshly created scratch database, then compares with the live database the exact row count of every table
    of O(schema) and, row by row by primary key, the content of the O(config_tables).
  - A configuration row that differs is reported; it fails the drill unless the live row's C(updated_at) is
    later than O(backup_started) (written after the dump), or always with O(strict=true).
  - A missing, empty, unreadable or truncated dump fails with a message that names O(backup).
  - The scratch database is dropped afterwards (O(keep_scratch_database=false)).
extends_documentation_fragment:
  - stratdata.pi_cluster.postgres
options:
  backup:
    description: Name of the Velero backup the dump comes from (named in every message).
    type: str
    required: true
  backup_started:
    description: The backup's C(status.startTimestamp) (RFC 3339); rows the live database changed later are expected.
    type: str
  dump_path:
    description: The dump file on the host that runs the module (copied out of the restored volume).
    type: path
    required: true
  pg_restore_command:
    description:
      - argv that runs pg_restore; the module appends its options and feeds the dump on stdin. The default is the
        local C(pg_restore); the restore_drill role runs it in the restored pod (C(kubectl exec -i ... pg_restore))
        so that its major version is the one of the pg_dump that wrote the dump.
    type: list
    elements: str
    default: [pg_restore]
  scratch:
    description: The server that receives the scratch database (connection options as for the live database).
    type: dict
    required: true
    suboptions:
      login_host:
        description: Host for the comparison queries.
        type: str
        required: true
      port:
        description: Port for the comparison queries.
        type: int
        default: 5432
      login_user:
        description: Role that creates, restores into and drops the scratch database.
        type: str
        default: postgres
      login_password:
        description: Its password.
        type: str
      maintenance_database:
        description: Database to connect to while creating and dropping the scratch database.
        type: str
        default: postgres
      database:
        description: Name of the scratch database; dropped first when it exists (never the live one).
        type: str
        required: true
      sslmode:
        description: libpq sslmode.
        type: str
        default: prefer
      restore_host:
        description:
          - Host pg_restore connects to (C(127.0.0.1) when pg_restore runs in the server's pod).
          - Default O(scratch.login_host).
        type: str
      restore_port:
        description: Port pg_restore connects to; default O(scratch.port).
        type: int
  schema:
    description: Schema whose tables are counted (the cluster contract's C(pi_cluster_appdb_schema)).
    type: str
    required: true
  config_tables:
    description: Tables of O(schema) whose content is compared row by row.
    type: list
    elements: str
    default: [dag_configuration, exchange_groups]
  strict:
    description: Every row count must be equal and every configuration row identical.
    type: bool
    default: false
  keep_scratch_database:
    description: Keep the scratch database for inspection.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Checks the dump (file and C(pg_restore --list)) and the live connection; restores and compares nothing.
  diff_mode:
    support: none
    details: The drill changes no lasting state (the scratch database is temporary).
author:
  - pi-cluster contributors
"""

EXAMPLES = r"""
- name: Restore the dump of the backup into a scratch database and compare
  stratdata.pi_cluster.appdb_restore_drill:
    backup: velero-daily-20261202020000
    backup_started: "2026-12-02T02:00:03Z"
    dump_path: "/var/lib/pi-cluster/restore-drill/{{ pi_cluster_appdb_database }}.dump"
    login_host: 10.43.12.7          # ClusterIP of the live appdb Service
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
    login_user: postgres
    login_password: "{{ vault_appdb_postgres_password }}"
    scratch:
      login_host: 10.43.80.2        # the restored server in the scratch namespace
      login_password: "{{ vault_appdb_postgres_password }}"
      database: drill_restore
  no_log: true
  register: drill
"""

RETURN = r"""
ok:
  description: Whether the drill passed.
  returned: always
  type: bool
lines:
  description: One summary line, one line per table, one per configuration row difference.
  returned: always
  type: list
  elements: str
problems:
  description: What fails the drill.
  returned: always
  type: list
  elements: str
tables:
  description: Per table, C(table), C(live) and C(restored) row counts and a C(verdict).
  returned: always
  type: list
  elements: dict
differences:
  description: Configuration rows that differ (C(table), C(key), C(kind), C(columns), C(since_backup)).
  returned: always
  type: list
  elements: dict
dump:
  description: C(path), C(bytes) and C(toc_entries) of the dump.
  returned: always
  type: dict
"""

import types

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.pg_connection import (
    connect,
    db_error_message,
    pg_argument_spec,
    psycopg2,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.restore_drill import (
    DrillError,
    check_dump_file,
    compare_counts,
    compare_rows,
    pg_restore_into,
    pg_restore_list,
    read_counts,
    read_rows,
    summarise,
)


def scratch_module(module, database):
    """A stand-in 'module' whose params are the scratch server's, for pg_connection.connect."""
    scratch = module.params["scratch"]
    params = dict(login_host=scratch["login_host"], port=scratch["port"], database=database,
                  login_user=scratch["login_user"], login_password=scratch["login_password"],
                  sslmode=scratch["sslmode"], ca_cert=None, connect_timeout=module.params["connect_timeout"])
    return types.SimpleNamespace(params=params, fail_json=module.fail_json)


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def read_side(conn, schema, tables):
    with conn.cursor() as cur:
        counts = read_counts(cur, schema)
        rows = dict((table, read_rows(cur, schema, table)) for table in tables)
    conn.rollback()
    return counts, rows


def main():
    spec = pg_argument_spec()
    spec.update(
        backup=dict(type="str", required=True),
        backup_started=dict(type="str"),
        dump_path=dict(type="path", required=True),
        pg_restore_command=dict(type="list", elements="str", default=["pg_restore"]),
        scratch=dict(type="dict", required=True, options=dict(
            login_host=dict(type="str", required=True),
            port=dict(type="int", default=5432),
            login_user=dict(type="str", default="postgres"),
            login_password=dict(type="str", no_log=True),
            maintenance_database=dict(type="str", default="postgres"),
            database=dict(type="str", required=True),
            sslmode=dict(type="str", default="prefer"),
            restore_host=dict(type="str"),
            restore_port=dict(type="int"),
        )),
        schema=dict(type="str", required=True),
        config_tables=dict(type="list", elements="str", default=["dag_configuration", "exchange_groups"]),
        strict=dict(type="bool", default=False),
        keep_scratch_database=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params, scratch = module.params, module.params["scratch"]
    backup = params["backup"]
    if scratch["database"] in (params["database"], scratch["maintenance_database"]) and \
            scratch["login_host"] == params["login_host"] and scratch["port"] == params["port"]:
        module.fail_json(msg="Restore drill of backup %s: the scratch database %s must not be the live database or "
                             "the maintenance database" % (backup, scratch["database"]))
    result = dict(changed=False, ok=False, lines=[], problems=[], tables=[], differences=[], dump={})
    try:
        size = check_dump_file(params["dump_path"], backup)
        toc = pg_restore_list(params["pg_restore_command"], params["dump_path"], backup)
    except DrillError as exc:
        module.fail_json(msg=str(exc), **result)
    result["dump"] = dict(path=params["dump_path"], bytes=size, toc_entries=len(toc))
    if not any(" TABLE DATA " in line for line in toc):
        module.fail_json(msg="Restore drill of backup %s: the dump %s holds no table data (%d TOC entries)"
                             % (backup, params["dump_path"], len(toc)), **result)

    live = connect(module)
    if module.check_mode:
        live.close()
        result.update(ok=True, lines=["check mode: the dump of %s is readable (%d bytes, %d TOC entries); "
                                      "nothing restored" % (backup, size, len(toc))])
        module.exit_json(**result)

    admin = connect(scratch_module(module, scratch["maintenance_database"]), autocommit=True)
    name = quote_ident(scratch["database"])
    restored = None
    try:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            cur.execute("CREATE DATABASE %s" % name)
        result["changed"] = True
        try:
            pg_restore_into(params["pg_restore_command"], params["dump_path"], backup,
                            scratch["restore_host"] or scratch["login_host"],
                            scratch["restore_port"] or scratch["port"],
                            scratch["login_user"], scratch["login_password"], scratch["database"])
        except DrillError as exc:
            module.fail_json(msg=str(exc), **result)
        restored = connect(scratch_module(module, scratch["database"]))
        live_counts, live_rows = read_side(live, params["schema"], params["config_tables"])
        restored_counts, restored_rows = read_side(restored, params["schema"], params["config_tables"])
    except psycopg2.Error as exc:
        module.fail_json(msg="Restore drill of backup %s: %s" % (backup, db_error_message(exc, module)), **result)
    finally:
        live.close()
        if restored is not None:
            restored.close()
        if not params["keep_scratch_database"]:
            try:
                with admin.cursor() as cur:
                    cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            except psycopg2.Error as exc:
                module.warn("could not drop the scratch database %s: %s" % (scratch["database"],
                                                                          db_error_message(exc, module)))
        admin.close()

    tables, problems = compare_counts(live_counts, restored_counts, strict=params["strict"])
    differences = []
    for table in params["config_tables"]:
        keys, live_table = live_rows[table]
        _keys, restored_table = restored_rows[table]
        diffs, table_problems = compare_rows(table, keys, live_table, restored_table, params["backup_started"])
        differences += diffs
        problems += table_problems
    summary = summarise(backup, tables, differences, problems, strict_content=params["strict"])
    result.update(ok=summary["ok"], lines=summary["lines"], problems=summary["problems"], tables=tables,
                  differences=differences, live_total=summary["live_total"],
                  restored_total=summary["restored_total"])
    if not summary["ok"]:
        module.fail_json(msg="Restore drill of backup %s FAILED: %s" % (backup, "; ".join(summary["problems"])),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
