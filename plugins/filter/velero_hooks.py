# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter pg_dump_hook_command: the Velero pre-backup hook command of a Bitnami PostgreSQL pod.

One definition for both databases that are backed up this way (the app_database role's appdb and the airflow
role's embedded metadata PostgreSQL). Documented in pg_dump_hook_command.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

from ansible.errors import AnsibleFilterError

# The password comes from the Bitnami container's environment: a file or a variable, superuser first.
_PASSWORD = (
    'if [ -n "${POSTGRES_POSTGRES_PASSWORD_FILE:-}" ]; then PGPASSWORD="$(cat "$POSTGRES_POSTGRES_PASSWORD_FILE")";\n'
    'elif [ -n "${POSTGRES_POSTGRES_PASSWORD:-}" ]; then PGPASSWORD="$POSTGRES_POSTGRES_PASSWORD";\n'
    'elif [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")";\n'
    'else PGPASSWORD="${POSTGRES_PASSWORD:-}"; fi\n'
    "export PGPASSWORD\n"
)


def pg_dump_hook_command(database, dump_dir):
    """['/bin/bash', '-c', script]: pg_dump (custom format) of `database` and pg_dumpall --globals-only into
    `dump_dir` on the backed-up volume, each written to a .tmp file and then moved into place (atomic)."""
    for name, value in (("database", database), ("dump_dir", dump_dir)):
        if not isinstance(value, str) or not value.strip():
            raise AnsibleFilterError("pg_dump_hook_command: %s must be a non-empty string, not %r" % (name, value))
    db = shlex.quote(database)
    directory = shlex.quote(dump_dir)
    dump = shlex.quote("%s/%s.dump" % (dump_dir, database))
    dump_tmp = shlex.quote("%s/%s.dump.tmp" % (dump_dir, database))
    globals_sql = shlex.quote("%s/globals.sql" % dump_dir)
    globals_tmp = shlex.quote("%s/globals.sql.tmp" % dump_dir)
    script = (
        "set -eu\n" + _PASSWORD
        + "mkdir -p %s\n" % directory
        + "pg_dump -h 127.0.0.1 -U postgres -d %s --format=custom --file=%s\n" % (db, dump_tmp)
        + "pg_dumpall -h 127.0.0.1 -U postgres --globals-only --file=%s\n" % globals_tmp
        + "mv -f %s %s\n" % (dump_tmp, dump)
        + "mv -f %s %s" % (globals_tmp, globals_sql)
    )
    return ["/bin/bash", "-c", script]


class FilterModule(object):
    def filters(self):
        return {"pg_dump_hook_command": pg_dump_hook_command}
