# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drill helpers: row counts of the live and the restored database."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.restore_drill import compare_counts


# --------------------------------------------------------------------------------------------------
# restore drill helpers
# --------------------------------------------------------------------------------------------------

def compare_row_counts(live, restored, strict=False):
    """Compare table row counts of the live appdb with the restored copy.

    live / restored: lists of {"table_name": str, "row_count": int} (or a {table: count} dict).
    Non-strict (default): the live database may have gained rows since the backup, so restored <= live is
    fine; a table missing from the restore, an empty restored table whose live twin has rows, or more rows
    in the restore than live is a problem. Strict: every count must be equal. The comparison itself is the
    restore drill's (module_utils/restore_drill.compare_counts); this adds the row-list input and the totals.
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
    tables, problems = compare_counts(live_counts, restored_counts, strict=strict)
    return {"ok": not problems, "problems": problems, "tables": tables,
            "live_total": sum(live_counts.values()), "restored_total": sum(restored_counts.values())}
