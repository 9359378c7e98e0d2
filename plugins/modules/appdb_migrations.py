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
  - Each migration runs on B(its own new connection), so session state that a file sets (C(SET search_path),
    C(SET ROLE), temporary tables) never leaks into the next file - one run that applies two files gives the
    same result as two runs that apply one each.
  - A file containing B(transaction control) (C(BEGIN), C(START TRANSACTION), C(COMMIT), C(END), C(ROLLBACK),
    C(ABORT), C(SAVEPOINT), C(RELEASE), C(PREPARE TRANSACTION)) is refused before anything runs, naming the
    file and line - it would end the module's transaction and keep half a migration without its ledger row.
    Comments, string literals and dollar-quoted or C(BEGIN ATOMIC) function bodies are not statements, so
    a PL/pgSQL body that contains the word C(COMMIT) is fine.
  - Files are read as UTF-8; a file that is not UTF-8 is refused naming the file and the byte offset. A
    leading UTF-8 byte order mark is removed (also from O(migrations)), and the checksum is of the text
    without it.
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
      - Files not ending in C(.sql) are ignored; a C(.sql) file whose name does not match the pattern is an error,
        and so is a C(.sql) name that is not a regular file (a directory, a broken link).
      - An empty directory is not an error but a warning, and nothing is changed (not even the ledger is created).
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
      - Files beyond it are still known (their ledger rows are not reported in RV(unknown_applied)) and their
        checksums are still verified; they are listed in RV(beyond_target).
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
beyond_target:
  description: Pending migrations not applied because their version is above O(target_version).
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
import stat

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
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.sql_statements import (
    UnterminatedError,
    transaction_control,
)

# Matched with fullmatch ("$" would also accept a name or identifier ending in a newline).
FILE_RE = re.compile(r"(?P<version>[0-9]{4,})_(?P<desc>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql")
IDENT_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
BOM = "\ufeff"


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


def read_files(module, path, errors):
    """[(name, text)] of the *.sql files in ``path``; unreadable or non-UTF-8 files are added to ``errors``."""
    if not os.path.isdir(path):
        module.fail_json(msg="Migration directory %s does not exist (or is not a directory)" % path)
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        module.fail_json(msg="Cannot list the migration directory %s: %s" % (path, exc))
    items = []
    for name in names:
        if not name.endswith(".sql"):
            continue
        full = os.path.join(path, name)
        try:
            mode = os.stat(full).st_mode
        except OSError as exc:
            errors.append("%s: cannot be read (%s); a migration must be a regular file" % (name, exc.strerror))
            continue
        if not stat.S_ISREG(mode):
            errors.append("%s: is %s, not a file; a migration must be a regular file (rename or remove it)"
                          % (name, "a directory" if stat.S_ISDIR(mode) else "not a regular file"))
            continue
        try:
            with open(full, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            errors.append("%s: cannot be read: %s" % (name, exc.strerror or exc))
            continue
        try:
            items.append((name, data.decode("utf-8")))
        except UnicodeDecodeError as exc:
            errors.append("%s: is not UTF-8 (byte 0x%02x at offset %d); save the file as UTF-8"
                          % (name, bytearray(data[exc.start:exc.start + 1])[0], exc.start))
    return items


def load_migrations(module):
    """Return (all, selected): [(version, name, sql, checksum)] sorted by version, all files and those up to
    target_version. Fails, before anything runs, on bad names, duplicate versions, unreadable files and files
    with transaction control."""
    errors = []
    if module.params["path"]:
        items = read_files(module, module.params["path"], errors)
    else:
        items = [(m["name"], m["sql"]) for m in module.params["migrations"]]
    migrations, seen = [], {}
    for name, sql in items:
        base = os.path.basename(name)
        match = FILE_RE.fullmatch(base)
        if not match:
            errors.append("%r: name must look like NNNN_description.sql" % base)
            continue
        version = int(match.group("version"))
        if version in seen:
            errors.append("%s: version %d is also used by %s" % (base, version, seen[version]))
            continue
        seen[version] = base
        if sql.startswith(BOM):
            # A byte order mark is not SQL (PostgreSQL reports a syntax error at it); drop it, explicitly.
            sql = sql[len(BOM):]
        try:
            found = transaction_control(sql)
        except UnterminatedError as exc:
            errors.append("%s: %s" % (base, exc))
            continue
        for line, statement in found:
            errors.append("%s line %d: %s is not allowed in a migration (the module runs each file in one "
                          "transaction with its ledger row and commits it itself); remove it" % (base, line, statement))
        migrations.append((version, base, sql, checksum(sql)))
    if errors:
        module.fail_json(msg="Invalid migrations, nothing was run: %s" % "; ".join(errors), errors=errors)
    migrations.sort()
    target = module.params["target_version"]
    selected = migrations if target is None else [m for m in migrations if m[0] <= target]
    return migrations, selected


def rollback_quietly(conn):
    """Roll back; a lost connection cannot roll back (the server already did), which is not a new error."""
    try:
        conn.rollback()
    except Exception:
        pass


def close_quietly(conn):
    try:
        conn.close()
    except Exception:
        pass


def connection_lost(exc):
    return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and (
        getattr(exc, "pgcode", None) is None or str(getattr(exc, "pgcode", "")).startswith(("08", "57P"))
    )


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
    run applied it meanwhile. ``conn`` is a new connection of this migration alone (fresh session state)."""
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
    except Exception:
        rollback_quietly(conn)
        raise
    try:
        conn.commit()
    except psycopg2.Error as exc:
        raise CommitUnknown(exc) from exc
    return True


class CommitUnknown(Exception):
    """COMMIT itself failed: whether the server committed is unknown until the ledger is read again."""

    def __init__(self, cause):
        Exception.__init__(self, str(cause))
        self.cause = cause


def run_module():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("path", "migrations")],
        required_one_of=[("path", "migrations")],
        supports_check_mode=True,
    )
    schema, table = module.params["schema"], module.params["ledger_table"]
    for label, value in (("schema", schema), ("ledger_table", table)):
        if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
            module.fail_json(msg="%s %r must be a lower-case SQL identifier" % (label, value))
    check_mode = module.check_mode
    all_migrations, migrations = load_migrations(module)
    if not all_migrations:
        module.warn("No migrations given (%s): nothing to apply; the ledger is neither created nor changed"
                    % ("no *.sql file in %s" % module.params["path"] if module.params["path"] else "empty list"))
    lock_key = advisory_lock_key(module.params["lock_name"])

    result = dict(
        changed=False,
        applied=[],
        pending=[],
        already_applied=[],
        unknown_applied=[],
        beyond_target=[],
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
        if all_migrations:
            result["ledger_created"] = ensure_ledger(log, schema, table, check_mode)
            ledger = {} if (result["ledger_created"] and check_mode) else read_ledger(log, schema, table)
        else:
            ledger = read_ledger(log, schema, table) if ledger_exists(log, schema, table) else {}
        end_transaction(conn, check_mode or not all_migrations)
    except psycopg2.Error as exc:
        rollback_quietly(conn)
        close_quietly(conn)
        module.fail_json(msg="Cannot read the migration ledger %s.%s: %s. Nothing was applied (the transaction "
                         "was rolled back); %s"
                         % (schema, table, db_error_message(exc, module),
                            "check that the server is up and run again" if connection_lost(exc)
                            else "check the login's rights on schema %s" % schema), **result)
    close_quietly(conn)

    known = set(m[0] for m in all_migrations)
    result["unknown_applied"] = sorted(v for v in ledger if v not in known)
    verify_checksums(module, all_migrations, ledger, result)
    result["beyond_target"] = [m[1] for m in all_migrations if m not in migrations and m[0] not in ledger]
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
        before = "; applied before it in this run (recorded, kept): %s" % ", ".join(result["applied"]) \
            if result["applied"] else "; nothing else was applied in this run"
        conn = None if check_mode else connect(module, autocommit=False)
        log.cursor = conn.cursor() if conn is not None else log.cursor
        try:
            outcome = apply_one(module, conn, log, migration, schema, table, lock_key, check_mode)
        except CommitUnknown as exc:
            close_quietly(conn)
            module.fail_json(
                msg="Migration %s: the COMMIT failed (%s), so whether it was recorded is unknown%s. Run the module "
                "again when the server is reachable: the ledger decides, an applied migration is never re-applied."
                % (migration[1], db_error_message(exc.cause, module), before), **result)
        except (psycopg2.Error, RuntimeError) as exc:
            close_quietly(conn)
            if isinstance(exc, psycopg2.Error) and connection_lost(exc):
                module.fail_json(
                    msg="Migration %s: the connection to PostgreSQL was lost while it ran (%s). The server rolls "
                    "back an unfinished transaction, so nothing of this migration was applied%s. Check the server "
                    "(and statement_timeout) and run again." % (migration[1], db_error_message(exc, module), before),
                    **result)
            detail = db_error_message(exc, module) if isinstance(exc, psycopg2.Error) else str(exc)
            module.fail_json(
                msg="Migration %s failed and was rolled back (nothing of it was applied): %s%s. Fix the file and "
                "run again; the run continues with it." % (migration[1], detail, before),
                **result
            )
        close_quietly(conn)
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
        names = dict((m[0], m[1]) for m in all_migrations)

        def render(versions):
            return "".join("%s\n" % names.get(v, "version %d (no file)" % v) for v in versions)

        result["diff"] = dict(
            before_header="%s.%s" % (schema, table),
            after_header="%s.%s" % (schema, table),
            before=render(before_versions),
            after=render(after_versions),
        )
    module.exit_json(**result)


def main():
    run_module()


if __name__ == "__main__":
    main()
