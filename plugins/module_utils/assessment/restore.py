# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drill helpers: row counts of the live and the restored database."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# --------------------------------------------------------------------------------------------------
# restore drill helpers
# --------------------------------------------------------------------------------------------------

def compare_row_counts(live, restored, strict=False):
    """Compare table row counts of the live appdb with the restored copy.

    live / restored: lists of {"table_name": str, "row_count": int} (or a {table: count} dict).
    Non-strict (default): the live database may have gained rows since the backup, so restored <= live is
    fine; a table missing from the restore, an empty restored table whose live twin has rows, or more rows
    in the restore than live is a problem. Strict: every count must be equal.
    """
    def as_dict(value):
        if isinstance(value, dict):
            return dict((str(k), int(v)) for k, v in value.items())
        result = {}
        for row in value or []:
            name = row.get("table_name") or row.get("table") or row.get("relname")
            schema = row.get("table_schema") or row.get("schemaname")
            key = "%s.%s" % (schema, name) if schema else name
            result[str(key)] = int(row.get("row_count", row.get("count", row.get("n", 0))) or 0)
        return result

    live_counts = as_dict(live)
    restored_counts = as_dict(restored)
    tables = []
    problems = []
    for table in sorted(set(live_counts) | set(restored_counts)):
        have_live = live_counts.get(table)
        have_restored = restored_counts.get(table)
        verdict = "equal"
        if have_restored is None:
            verdict = "missing in restore"
            problems.append("%s: missing in the restored database (live has %s rows)" % (table, have_live))
        elif have_live is None:
            verdict = "only in restore"
            problems.append("%s: exists in the restore but not in the live database" % table)
        elif have_live != have_restored:
            if strict:
                verdict = "differs"
                problems.append("%s: live %d rows, restored %d rows" % (table, have_live, have_restored))
            elif have_restored == 0 and have_live > 0:
                verdict = "empty in restore"
                problems.append("%s: restored table is empty, live has %d rows" % (table, have_live))
            elif have_restored > have_live:
                verdict = "more in restore"
                problems.append("%s: restored %d rows > live %d rows" % (table, have_restored, have_live))
            else:
                verdict = "live grew since backup"
        tables.append({"table": table, "live": have_live, "restored": have_restored, "verdict": verdict})
    if not live_counts:
        problems.append("the live database returned no tables for the schema")
    return {"ok": not problems, "problems": problems, "tables": tables,
            "live_total": sum(live_counts.values()), "restored_total": sum(restored_counts.values())}
