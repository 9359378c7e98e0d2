# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared PostgreSQL connection helper of the stratdata.pi_cluster modules.

One place for the connection options (argument spec fragment), the psycopg2 connection and its error
handling, and the log of queries a module returns.

psycopg2 and not psycopg 3: Debian bookworm ships ``python3-psycopg2`` (the hosts have no pip),
community.postgresql uses it too, and ``psycopg2.extras.execute_values`` gives batched multi-row
writes (one round trip per page of rows).

The password is passed to libpq as a keyword argument (never in a DSN string that could end up in a
traceback), is declared ``no_log`` in the argument spec, and is scrubbed from every error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras

    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - depends on the host
    psycopg2 = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
APPLICATION_NAME = "ansible-stratdata.pi_cluster"


def pg_argument_spec(default_database=None):
    """Return the connection part of a module's argument_spec (a new dict on every call).

    Without ``default_database`` the database is a required option: the application database's name is
    the cluster contract's (pi_cluster_appdb_database), passed by the calling role, never a module default.
    """
    database = dict(type="str", aliases=["db", "login_db"])
    if default_database:
        database["default"] = default_database
    else:
        database["required"] = True
    return dict(
        login_host=dict(type="str", default="localhost", aliases=["host"]),
        port=dict(type="int", default=5432, aliases=["login_port"]),
        database=database,
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        sslmode=dict(type="str", default="prefer", choices=SSLMODES),
        ca_cert=dict(type="path"),
        connect_timeout=dict(type="int", default=10),
    )


def end_transaction(conn, check_mode):
    """Roll back in check mode (nothing is ever written), commit otherwise."""
    if check_mode:
        conn.rollback()
    else:
        conn.commit()


def scrub(text, secret):
    """Remove ``secret`` from ``text`` (error messages must never carry the password)."""
    text = str(text)
    if secret:
        text = text.replace(secret, "********")
    return text.strip()


def _describe(params):
    return "%s@%s:%s/%s" % (params["login_user"], params["login_host"], params["port"], params["database"])


def connect(module, autocommit=False):
    """Connect with the module's connection options; fail the module with a clear, password-free message.

    Returns a psycopg2 connection. With ``autocommit=False`` (the default) every statement runs inside
    one transaction until the caller commits or rolls back.
    """
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2 (Debian: python3-psycopg2)"),
                         exception=PSYCOPG2_IMPORT_ERROR)
    params = module.params
    password = params.get("login_password")
    kwargs = dict(
        host=params["login_host"],
        port=params["port"],
        dbname=params["database"],
        user=params["login_user"],
        sslmode=params["sslmode"],
        connect_timeout=params["connect_timeout"],
        application_name=APPLICATION_NAME,
    )
    if password:
        kwargs["password"] = password
    if params.get("ca_cert"):
        kwargs["sslrootcert"] = params["ca_cert"]
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        detail = scrub(exc, password)
        lowered = detail.lower()
        if "password authentication failed" in lowered or "no password supplied" in lowered:
            reason = "authentication failed for user %s (check login_user/login_password)" % params["login_user"]
        elif 'database "%s" does not exist' % params["database"] in detail:
            reason = "database %s does not exist" % params["database"]
        elif "timeout expired" in lowered:
            reason = "connection timed out after %s s" % params["connect_timeout"]
        elif "could not connect" in lowered or "connection refused" in lowered or "could not translate" in lowered:
            reason = "server unreachable"
        else:
            reason = "connection failed"
        module.fail_json(msg="Unable to connect to PostgreSQL %s: %s. Server said: %s"
                         % (_describe(params), reason, detail))
    except Exception as exc:  # e.g. invalid connection options
        module.fail_json(msg="Unable to connect to PostgreSQL %s: %s" % (_describe(params), scrub(exc, password)))
    conn.autocommit = autocommit
    return conn


def db_error_message(exc, module=None):
    """Password-free one-line description of a psycopg2 error (SQLSTATE + primary message + detail)."""
    password = module.params.get("login_password") if module is not None else None
    parts = []
    pgcode = getattr(exc, "pgcode", None)
    if pgcode:
        parts.append("[%s]" % pgcode)
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        lines = str(exc).strip().splitlines()
        primary = lines[0] if lines else type(exc).__name__
    parts.append(primary)
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    if detail:
        parts.append("DETAIL: %s" % detail)
    return scrub(" ".join(parts), password)


class QueryLog(object):
    """Executes statements on a cursor and remembers them, for the modules' ``queries`` return value."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.queries = []

    def execute(self, query, params=None):
        if params is None:
            self.cursor.execute(query)
            self.queries.append(query)
        else:
            self.queries.append(self.cursor.mogrify(query, params).decode("utf-8", "replace"))
            self.cursor.execute(query, params)
        return self.cursor

    def execute_values(self, query, rows, template=None, page_size=500):
        """Batched multi-row statement (psycopg2.extras.execute_values); logs the template once with a row count."""
        rows = list(rows)
        if not rows:
            return []
        result = psycopg2.extras.execute_values(self.cursor, query, rows, template=template, page_size=page_size)
        pages = (len(rows) + page_size - 1) // page_size
        self.queries.append("%s -- %d row(s) in %d statement(s)" % (query, len(rows), pages))
        return result

    def note(self, text):
        """Record a statement that was NOT executed (check mode): prefixed so it cannot be mistaken."""
        self.queries.append("-- check mode, not executed: %s" % text)


def advisory_lock_key(name):
    """Stable signed 64-bit key for pg_advisory_xact_lock from a name (same on every host and Python)."""
    import hashlib

    value = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")
    if value >= 2 ** 63:
        value -= 2 ** 64
    return value
