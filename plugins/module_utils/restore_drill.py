# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore drill's dump handling and comparison (module ``appdb_restore_drill``).

The drill proves the CONSISTENT copy: the ``pg_dump --format=custom`` that the Velero pre-backup hook wrote
on the database volume, not the file-level copy of a running data directory. Here:

- ``check_dump_file``: the dump exists, is not empty, and starts with the custom-format magic ``PGDMP``;
- ``pg_restore_list`` / ``pg_restore_into``: ``pg_restore --list`` and a restore into a scratch database with
  ``--exit-on-error --single-transaction`` (a truncated or corrupt dump fails, and leaves nothing half done);
  the dump is fed on stdin so that the same call works with a local pg_restore or one run in the restored
  pod (``kubectl exec -i ... pg_restore``), whose major version matches the pg_dump that wrote it;
- ``compare_counts``: exact row counts per table, live against restored;
- ``compare_rows``: the content of the configuration tables, row by row by primary key. A difference is
  "changed since the backup" when the live row's ``updated_at`` is later than the backup's start (legitimate),
  otherwise it is a problem (the restore does not hold what the live database held at backup time).

Every failure is a ``DrillError`` whose message names the backup.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import re
import subprocess

CUSTOM_FORMAT_MAGIC = b"PGDMP"


class DrillError(Exception):
    """The drill cannot go on; the message names the backup and says what to look at."""


# -- the dump ----------------------------------------------------------------------------------------------

def check_dump_file(path, backup):
    """Fail unless ``path`` is a non-empty pg_dump custom-format archive. Returns its size in bytes."""
    if not path or not os.path.exists(path):
        raise DrillError("Restore drill of backup %s: the dump %s is missing from the restored volume (the Velero "
                         "pre-backup hook did not write it, or the volume was not restored): "
                         "`velero backup logs %s | grep -i hook`." % (backup, path, backup))
    size = os.path.getsize(path)
    if size == 0:
        raise DrillError("Restore drill of backup %s: the dump %s is empty (0 bytes): the pre-backup hook's "
                         "pg_dump wrote nothing." % (backup, path))
    with open(path, "rb") as handle:
        head = handle.read(len(CUSTOM_FORMAT_MAGIC))
    if head != CUSTOM_FORMAT_MAGIC:
        raise DrillError("Restore drill of backup %s: %s (%d bytes) is not a pg_dump custom-format archive "
                         "(it does not start with PGDMP)." % (backup, path, size))
    return size


def _run(argv, path, env=None):
    with open(path, "rb") as stdin:
        proc = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def _tail(text, limit=600):
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]


def pg_restore_list(command, path, backup):
    """``pg_restore --list`` of the dump (on stdin): the table-of-contents lines. Fails clearly."""
    argv = list(command) + ["--list"]
    try:
        rc, out, err = _run(argv, path)
    except OSError as exc:
        raise DrillError("Restore drill of backup %s: cannot run %s: %s" % (backup, command[0], exc)) from None
    if rc != 0:
        if "unsupported version" in err:
            hint = (" This pg_restore is older than the pg_dump that wrote the dump: run pg_restore in the restored "
                    "pod (restore_drill_pg_restore_in_pod: true) or install a newer PostgreSQL client.")
            raise DrillError("Restore drill of backup %s: pg_restore cannot read the dump %s: %s.%s"
                             % (backup, path, _tail(err or out), hint))
        raise DrillError("Restore drill of backup %s: pg_restore cannot read the dump %s: the dump is truncated or "
                         "corrupt. pg_restore said: %s" % (backup, path, _tail(err or out)))
    return [line for line in out.splitlines() if line.strip() and not line.startswith(";")]


def pg_restore_into(command, path, backup, host, port, user, password, database):
    """Restore the dump into ``database`` (which exists and is empty), all or nothing."""
    argv = list(command) + ["--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
                            "--host", str(host), "--port", str(port), "--username", str(user),
                            "--dbname", str(database)]
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    try:
        rc, out, err = _run(argv, path, env=env)
    except OSError as exc:
        raise DrillError("Restore drill of backup %s: cannot run %s: %s" % (backup, command[0], exc)) from None
    if rc != 0:
        text = _tail(err or out)
        if password:
            text = text.replace(password, "********")
        raise DrillError("Restore drill of backup %s: pg_restore of the dump %s into the scratch database %s failed: "
                         "the dump is truncated or corrupt (or the scratch server refused it). pg_restore said: %s"
                         % (backup, path, database, text))
    return argv


# -- the comparison ----------------------------------------------------------------------------------------

ROW_COUNT_SQL = (
    "SELECT c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %%I.%%I', "
    "ns.nspname, c.relname), false, true, '')))[1]::text::bigint FROM pg_class c JOIN pg_namespace ns "
    "ON ns.oid = c.relnamespace WHERE ns.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname")

PRIMARY_KEY_SQL = (
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
    "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)")


def read_counts(cursor, schema):
    """{table: exact row count} of every table of ``schema``."""
    cursor.execute(ROW_COUNT_SQL, (schema,))
    return dict((name, int(count)) for name, count in cursor.fetchall())


def read_rows(cursor, schema, table):
    """(key columns, {key tuple: row dict}) of one table; rows as JSON values (text, lists, numbers)."""
    qualified = '"%s"."%s"' % (schema.replace('"', '""'), table.replace('"', '""'))
    cursor.execute(PRIMARY_KEY_SQL, (qualified,))
    keys = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,))
    if not cursor.fetchone()[0]:
        return keys, None
    cursor.execute("SELECT row_to_json(t)::text FROM %s AS t" % qualified)
    rows = [json.loads(row[0]) for row in cursor.fetchall()]
    if not keys:
        keys = sorted(rows[0]) if rows else []
    return keys, dict((tuple(row.get(k) for k in keys), row) for row in rows)


def compare_counts(live, restored, strict=False):
    """Row counts, live against restored. Not strict: the live database may have grown since the backup."""
    tables, problems = [], []
    for table in sorted(set(live) | set(restored)):
        have_live, have_restored = live.get(table), restored.get(table)
        verdict = "equal"
        if have_restored is None:
            verdict = "missing in restore"
            problems.append("%s: missing in the restored database (live has %s rows)" % (table, have_live))
        elif have_live is None:
            verdict = "only in restore"
            problems.append("%s: in the restore but not in the live database" % table)
        elif have_live != have_restored:
            if strict:
                verdict = "differs"
                problems.append("%s: live %d rows, restored %d rows" % (table, have_live, have_restored))
            elif have_restored == 0:
                verdict = "empty in restore"
                problems.append("%s: restored table is empty, live has %d rows" % (table, have_live))
            elif have_restored > have_live:
                verdict = "more in restore"
                problems.append("%s: restored %d rows > live %d rows" % (table, have_restored, have_live))
            else:
                verdict = "live grew since backup"
        tables.append(dict(table=table, live=have_live, restored=have_restored, verdict=verdict))
    if not live:
        problems.append("the live database has no table in the schema")
    return tables, problems


def parse_time(value):
    """An RFC 3339 (Velero) or PostgreSQL JSON timestamp as an aware datetime (None when empty)."""
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d\d$", text):  # PostgreSQL's +00
        text += ":00"
    # fromisoformat before Python 3.11 takes exactly 3 or 6 fractional digits.
    text = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), text)
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def compare_rows(table, keys, live_rows, restored_rows, backup_started=None):
    """Row-by-row differences of one configuration table -> (differences, problems).

    Each difference: {table, key, kind (changed / only live / only in restore), columns, live_updated_at,
    since_backup}. ``since_backup`` is true when the live row's updated_at is later than ``backup_started``:
    the row was written after the dump, which is not a fault of the backup.
    """
    differences, problems = [], []
    if live_rows is None or restored_rows is None:
        where = "live database" if live_rows is None else "restored database"
        problems.append("configuration table %s: missing in the %s" % (table, where))
        return differences, problems
    started = parse_time(backup_started) if backup_started else None

    def label(key):
        return ", ".join("%s=%s" % (name, value) for name, value in zip(keys, key))

    for key in sorted(set(live_rows) | set(restored_rows), key=lambda k: json.dumps(k, default=str)):
        live_row, restored_row = live_rows.get(key), restored_rows.get(key)
        if live_row == restored_row:
            continue
        if restored_row is None:
            kind, columns = "only live", []
        elif live_row is None:
            kind, columns = "only in restore", []
        else:
            kind = "changed"
            columns = sorted(c for c in set(live_row) | set(restored_row) if live_row.get(c) != restored_row.get(c))
        live_updated = (live_row or {}).get("updated_at")
        since_backup = bool(started and live_updated and parse_time(live_updated) > started)
        differences.append(dict(table=table, key=label(key), kind=kind, columns=columns,
                                live_updated_at=live_updated, since_backup=since_backup))
        if not since_backup:
            detail = (" (columns %s)" % ", ".join(columns)) if columns else ""
            problems.append("configuration table %s row %s: %s%s, and not written since the backup started"
                            % (table, label(key), kind, detail))
    return differences, problems


def summarise(backup, tables, differences, problems, strict_content=False):
    """The drill's verdict and its lines. ``strict_content``: any content difference fails."""
    if strict_content:
        for diff in differences:
            if diff["since_backup"]:
                problems = problems + ["configuration table %s row %s: %s since the backup (strict)"
                                       % (diff["table"], diff["key"], diff["kind"])]
    ok = not problems
    live_total = sum(t["live"] or 0 for t in tables)
    restored_total = sum(t["restored"] or 0 for t in tables)
    lines = ["restore drill of %s: %s (live %d rows, restored dump %d rows, %d tables, %d configuration row "
             "difference(s))" % (backup, "PASSED" if ok else "FAILED", live_total, restored_total, len(tables),
                                 len(differences))]
    lines += ["%s: live %s, restored %s: %s" % (t["table"], t["live"], t["restored"], t["verdict"]) for t in tables]
    lines += ["%s %s: %s%s%s" % (d["table"], d["key"], d["kind"],
                                 (" (" + ", ".join(d["columns"]) + ")") if d["columns"] else "",
                                 " since the backup" if d["since_backup"] else "") for d in differences]
    return dict(ok=ok, problems=problems, lines=lines, live_total=live_total, restored_total=restored_total)
