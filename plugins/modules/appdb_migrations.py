#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: appdb_migrations
short_description: Apply versioned SQL migrations to the application database
description:
  - Applies versioned SQL migrations, files named C(NNNN_description.sql), to a PostgreSQL database in
    version order and records each one in a ledger table, C(<schema>.schema_migrations) by default
    with the columns version, name, sha256 checksum, applied_at and applied_by.
  - Each migration runs in B(one transaction together with its ledger row), so a migration that fails
    halfway leaves nothing of itself behind; the error names the file.
  - An applied migration is never re-applied. If its content changed since it was applied (checksum
    mismatch) the module fails and names the file; write a new migration instead of editing an old one.
  - Every transaction first takes C(pg_advisory_xact_lock) on a key derived from O(lock_name), so concurrent
    runs (two controllers, retries) serialise; a run that waited re-reads the ledger and skips what the
    other run applied.
  - The checksum is the sha256 of the file's text with line endings normalised to LF and trailing
    whitespace removed, so a list built with the C(file) lookup (which strips the final newline) and the
    file read from O(path) agree.
version_added: "1.0.0"
options:
  path:
    description:
      - Directory on the host running the module that holds the migration files C(NNNN_description.sql).
      - Files not ending in C(.sql) are ignored; a C(.sql) file whose name does not match the pattern is an error.
      - Mutually exclusive with O(migrations).
    type: path
  migrations:
    description:
      - The migrations as data, e.g. built on the controller with the C(fileglob) and C(file) lookups, so
        nothing has to be copied to the host.
      - Mutually exclusive with O(path).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - File name C(NNNN_description.sql); the version is the leading number.
        type: str
        required: true
      sql:
        description:
          - SQL text of the migration. It must not contain transaction control (C(BEGIN), C(COMMIT),
            C(ROLLBACK)) because the module wraps it in its own transaction.
        type: str
        required: true
  database:
    description:
      - Database to migrate.
      - The cluster contract's C(pi_cluster_appdb_database), passed by the appdb_config role.
    type: str
    required: true
    aliases: [db, login_db]
  schema:
    description:
      - Schema of the ledger table; created if missing.
      - The cluster contract's C(pi_cluster_appdb_schema), passed by the appdb_config role.
    type: str
    required: true
  ledger_table:
    description:
      - Name of the ledger table inside O(schema); created if missing.
    type: str
    default: schema_migrations
  lock_name:
    description:
      - Name hashed into the 64-bit key of the transaction-level advisory lock taken by every transaction.
    type: str
    default: stratdata.pi_cluster.appdb_migrations
  target_version:
    description:
      - Apply migrations up to and including this version only. Default is all.
    type: int
  statement_timeout:
    description:
      - Statement timeout of the migration transactions (PostgreSQL interval syntax, C(0) = none).
    type: str
    default: "0"
extends_documentation_fragment:
  - stratdata.pi_cluster.postgres
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports the pending migrations (and whether the ledger would be created) and applies none.
  diff_mode:
    support: full
    details: The ledger's versions before and after.
notes:
  - A pending migration whose version is lower than an already applied one is an error (out-of-order),
    because a later migration may depend on the absence of the earlier one.
  - A ledger entry without a matching file is reported in RV(unknown_applied) and is not an error.
seealso:
  - module: stratdata.pi_cluster.appdb_dag_config
author:
  - StratData platform team (@stratdata)
"""

EXAMPLES = r"""
- name: Apply the application schema from files shipped with the role (no copy to the host)
  stratdata.pi_cluster.appdb_migrations:
    login_host: "{{ appdb_host }}"
    login_user: postgres
    login_password: "{{ vault_appdb_postgres_password }}"
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
    migrations: "{{ my_migrations }}"   # [{name: 0001_initial.sql, sql: "CREATE TABLE ..."}]
  no_log: true

- name: Apply migrations from a directory on the host
  stratdata.pi_cluster.appdb_migrations:
    path: /opt/appdb/migrations
    login_host: 127.0.0.1
    login_password: "{{ vault_appdb_postgres_password }}"
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
  no_log: true

- name: Show what would be applied
  stratdata.pi_cluster.appdb_migrations:
    path: /opt/appdb/migrations
    login_password: "{{ vault_appdb_postgres_password }}"
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
  check_mode: true
  diff: true
  register: pending
  no_log: true
"""

RETURN = r"""
applied:
  description: Migrations applied by this run (file names, in order). Empty in check mode.
  returned: always
  type: list
  elements: str
  sample: ["0001_initial_schema.sql", "0002_updated_at_trigger.sql"]
pending:
  description: Migrations that were pending when the run started (in check mode, those that would be applied).
  returned: always
  type: list
  elements: str
  sample: ["0002_updated_at_trigger.sql"]
already_applied:
  description: Migrations found in the ledger with a matching checksum.
  returned: always
  type: list
  elements: str
unknown_applied:
  description: Versions in the ledger that have no migration file (applied by a newer checkout?).
  returned: always
  type: list
  elements: int
ledger_created:
  description: Whether the ledger table was (or, in check mode, would be) created.
  returned: always
  type: bool
current_version:
  description: Highest applied version after the run (before it, in check mode); 0 when none.
  returned: always
  type: int
  sample: 2
queries:
  description: Statements executed, in order (migration bodies included). In check mode, only reads.
  returned: always
  type: list
  elements: str
"""

import hashlib
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.pg_connection import (
    QueryLog,
    advisory_lock_key,
    connect,
    db_error_message,
    end_transaction,
    pg_argument_spec,
    psycopg2,
)

FILE_RE = re.compile(r"^(?P<version>[0-9]{4,})_(?P<desc>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql$")
IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def argument_spec():
    spec = pg_argument_spec()
    spec.update(
        path=dict(type="path"),
        migrations=dict(
            type="list",
            elements="dict",
            options=dict(name=dict(type="str", required=True), sql=dict(type="str", required=True)),
        ),
        schema=dict(type="str", required=True),
        ledger_table=dict(type="str", default="schema_migrations"),
        lock_name=dict(type="str", default="stratdata.pi_cluster.appdb_migrations"),
        target_version=dict(type="int"),
        statement_timeout=dict(type="str", default="0"),
    )
    return spec


def checksum(sql):
    text = sql.replace("\r\n", "\n").rstrip()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_migrations(module):
    """Return [(version, name, sql, checksum)] sorted by version; fail on bad names or duplicate versions."""
    items = []
    if module.params["path"]:
        path = module.params["path"]
        if not os.path.isdir(path):
            module.fail_json(msg="Migration directory %s does not exist" % path)
        for name in sorted(os.listdir(path)):
            if not name.endswith(".sql"):
                continue
            with open(os.path.join(path, name), "rb") as handle:
                items.append((name, handle.read().decode("utf-8")))
    else:
        items = [(m["name"], m["sql"]) for m in module.params["migrations"]]
    migrations, seen, errors = [], {}, []
    for name, sql in items:
        base = os.path.basename(name)
        match = FILE_RE.match(base)
        if not match:
            errors.append("%s: name must look like NNNN_description.sql" % base)
            continue
        version = int(match.group("version"))
        if version in seen:
            errors.append("%s: version %d is also used by %s" % (base, version, seen[version]))
            continue
        seen[version] = base
        migrations.append((version, base, sql, checksum(sql)))
    if errors:
        module.fail_json(msg="Invalid migrations: %s" % "; ".join(errors))
    migrations.sort()
    target = module.params["target_version"]
    if target is not None:
        migrations = [m for m in migrations if m[0] <= target]
    return migrations


def ledger_exists(log, schema, table):
    log.execute("SELECT to_regclass(%s) IS NOT NULL", ("%s.%s" % (schema, table),))
    return log.cursor.fetchone()[0]


def ensure_ledger(log, schema, table, check_mode):
    """Create schema and ledger if missing (under the caller's advisory lock). Returns True if created."""
    if ledger_exists(log, schema, table):
        return False
    statements = [
        'CREATE SCHEMA IF NOT EXISTS "%s"' % schema,
        'CREATE TABLE IF NOT EXISTS "%s"."%s" ('
        " version bigint PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum char(64) NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " applied_by text NOT NULL DEFAULT current_user)" % (schema, table),
    ]
    for statement in statements:
        if check_mode:
            log.note(statement)
        else:
            log.execute(statement)
    return True


def read_ledger(log, schema, table):
    log.execute('SELECT version, name, checksum FROM "%s"."%s" ORDER BY version' % (schema, table))
    return dict((row[0], (row[1], row[2].strip())) for row in log.cursor.fetchall())


def verify_checksums(module, migrations, ledger, result):
    changed = []
    for version, name, _sql, digest in migrations:
        if version in ledger and ledger[version][1] != digest:
            changed.append(
                "%s (version %d, applied as %s, checksum %s..., file now %s...)"
                % (name, version, ledger[version][0], ledger[version][1][:12], digest[:12])
            )
    if changed:
        module.fail_json(
            msg="Applied migration(s) changed since they were applied: %s. Applied migrations are never "
            "re-applied; restore the original file and add a new migration instead." % "; ".join(changed),
            **result
        )


def begin_locked(log, lock_key, statement_timeout):
    log.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
    log.execute("SELECT set_config('statement_timeout', %s, true)", (statement_timeout,))


def apply_one(module, conn, log, migration, schema, table, lock_key, check_mode):
    """Apply one migration and its ledger row in one transaction. Returns True if applied, False if another
    run applied it meanwhile."""
    version, name, sql, digest = migration
    if check_mode:
        log.note("%s: %s" % (name, sql))
        return False
    try:
        begin_locked(log, lock_key, module.params["statement_timeout"])
        log.execute('SELECT name, checksum FROM "%s"."%s" WHERE version = %%s' % (schema, table), (version,))
        row = log.cursor.fetchone()
        if row is not None:
            conn.rollback()
            if row[1].strip() != digest:
                return "changed"
            return False
        log.execute(sql)
        if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
            raise RuntimeError("the migration ended the module's transaction itself (COMMIT/ROLLBACK in the file?)")
        log.execute(
            'INSERT INTO "%s"."%s" (version, name, checksum) VALUES (%%s, %%s, %%s)' % (schema, table),
            (version, name, digest),
        )
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return True


def run_module():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("path", "migrations")],
        required_one_of=[("path", "migrations")],
        supports_check_mode=True,
    )
    schema, table = module.params["schema"], module.params["ledger_table"]
    for label, value in (("schema", schema), ("ledger_table", table)):
        if not IDENT_RE.match(value):
            module.fail_json(msg="%s %r must be a lower-case SQL identifier" % (label, value))
    check_mode = module.check_mode
    migrations = load_migrations(module)
    lock_key = advisory_lock_key(module.params["lock_name"])

    result = dict(
        changed=False,
        applied=[],
        pending=[],
        already_applied=[],
        unknown_applied=[],
        ledger_created=False,
        current_version=0,
        queries=[],
    )
    conn = connect(module, autocommit=False)
    log = QueryLog(conn.cursor())
    result["queries"] = log.queries
    try:
        # Transaction 1: lock, bootstrap the ledger, read it.
        begin_locked(log, lock_key, module.params["statement_timeout"])
        result["ledger_created"] = ensure_ledger(log, schema, table, check_mode)
        ledger = {} if (result["ledger_created"] and check_mode) else read_ledger(log, schema, table)
        end_transaction(conn, check_mode)
    except psycopg2.Error as exc:
        conn.rollback()
        module.fail_json(msg="Cannot read the migration ledger %s.%s: %s"
                         % (schema, table, db_error_message(exc, module)), **result)

    known = set(m[0] for m in migrations)
    result["unknown_applied"] = sorted(v for v in ledger if v not in known)
    verify_checksums(module, migrations, ledger, result)
    result["already_applied"] = [m[1] for m in migrations if m[0] in ledger]
    pending = [m for m in migrations if m[0] not in ledger]
    result["pending"] = [m[1] for m in pending]
    max_applied = max(ledger) if ledger else 0
    out_of_order = [m[1] for m in pending if m[0] < max_applied]
    if out_of_order:
        module.fail_json(
            msg="Pending migration(s) %s are older than the newest applied version %d; renumber them after it."
            % (", ".join(out_of_order), max_applied),
            **result
        )
    before_versions = sorted(ledger)
    result["current_version"] = max_applied
    result["changed"] = bool(pending) or result["ledger_created"]

    for migration in pending:
        try:
            outcome = apply_one(module, conn, log, migration, schema, table, lock_key, check_mode)
        except (psycopg2.Error, RuntimeError) as exc:
            detail = db_error_message(exc, module) if isinstance(exc, psycopg2.Error) else str(exc)
            module.fail_json(
                msg="Migration %s failed and was rolled back (nothing of it was applied): %s%s"
                % (migration[1], detail,
                   "; applied before it in this run: %s" % ", ".join(result["applied"]) if result["applied"] else ""),
                **result
            )
        if outcome == "changed":
            module.fail_json(msg="Migration %s was applied concurrently with a different checksum" % migration[1],
                             **result)
        if outcome:
            result["applied"].append(migration[1])
            result["current_version"] = migration[0]

    if not check_mode and pending and not result["applied"]:
        # Every pending migration was applied by a concurrent run while we waited for the lock.
        result["changed"] = result["ledger_created"]
    after_versions = sorted(set(before_versions) | set(m[0] for m in pending))
    if module._diff and result["changed"]:
        names = dict((m[0], m[1]) for m in migrations)

        def render(versions):
            return "".join("%s\n" % names.get(v, "version %d (no file)" % v) for v in versions)

        result["diff"] = dict(
            before_header="%s.%s" % (schema, table),
            after_header="%s.%s" % (schema, table),
            before=render(before_versions),
            after=render(after_versions),
        )
    conn.close()
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
