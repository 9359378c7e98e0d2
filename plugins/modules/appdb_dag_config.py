#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: appdb_dag_config
short_description: Upsert DAG job configuration rows and exchange groups in the application database
description:
  - Makes the rows of C(financial_screener.dag_configuration) (keyed by C(dag_id), C(job_name)) and
    C(financial_screener.exchange_groups) (keyed by group name) match Ansible data.
  - B(Every row is validated before anything is written), and all errors are reported together.
    Checked are the Kubernetes quantity syntax of C(cpu_request), C(memory_request), C(cpu_limit) and
    C(memory_limit) (the real grammar of k8s.io/apimachinery C(resource.Quantity), non-negative,
    limit >= request), a positive C(batch_size), IANA time zones (a name of the host's time zone database,
    C(zoneinfo.available_timezones()), not the alias C(localtime) or C(posixrules)), that every exchange
    of a job exists in an exchange group, that no exchange is in two groups, and that keys are unique.
  - All writes happen in one transaction under a transaction-level advisory lock.
  - Efficient for large inputs, with one C(SELECT) of the existing rows, comparison in Python, batched
    C(INSERT ... ON CONFLICT DO UPDATE) and C(DELETE) with C(psycopg2.extras.execute_values).
  - Every name and code is matched against its whole grammar (a value with a trailing newline such as
    C("NYSE\\n") is refused).
  - The tables are created by M(stratdata.pi_cluster.appdb_migrations); run it first. In check mode, missing
    tables are not an error - the module reports that every declared row would be inserted (what the real
    run does after the pending migrations), with a warning.
  - A database or driver error (including a connection lost mid-write) fails with what happened, the
    fact that the transaction was rolled back (nothing written) and what to do.
version_added: "1.0.0"
options:
  database:
    description:
      - Application database.
      - The cluster contract's C(pi_cluster_appdb_database), passed by the appdb_config role.
    type: str
    required: true
    aliases: [db, login_db]
  schema:
    description:
      - Schema holding the two tables.
      - The cluster contract's C(pi_cluster_appdb_schema), passed by the appdb_config role.
    type: str
    required: true
  dag_configuration:
    description:
      - The job rows. Omit to leave the table alone.
      - Keys missing from a row are taken from O(job_defaults).
    type: list
    elements: dict
    suboptions:
      dag_id:
        description: DAG the job belongs to.
        type: str
        required: true
      job_name:
        description: Job name, unique within the DAG (lower case, digits, C(_), C(-)).
        type: str
        required: true
      exchanges:
        description: Exchanges the job loads; each must belong to an exchange group.
        type: list
        elements: str
        required: true
      cpu_request:
        description: Kubernetes CPU request of the job's pod, e.g. C(500m).
        type: str
      memory_request:
        description: Kubernetes memory request of the job's pod, e.g. C(1Gi).
        type: str
      cpu_limit:
        description: Kubernetes CPU limit (no limit when unset).
        type: str
      memory_limit:
        description: Kubernetes memory limit (no limit when unset).
        type: str
      batch_size:
        description: Symbols per batch, > 0.
        type: int
      enabled:
        description: Whether the DAG runs this job.
        type: bool
  job_defaults:
    description:
      - Values for the keys a row of O(dag_configuration) does not set.
      - C(cpu_request), C(memory_request) and C(batch_size) must end up set for every row, from the row or
        from here.
    type: dict
    default: {}
    suboptions:
      cpu_request:
        description: Default CPU request.
        type: str
      memory_request:
        description: Default memory request.
        type: str
      cpu_limit:
        description: Default CPU limit.
        type: str
      memory_limit:
        description: Default memory limit.
        type: str
      batch_size:
        description: Default batch size.
        type: int
      enabled:
        description: Default enabled flag.
        type: bool
        default: true
  exchange_groups:
    description:
      - The exchange groups. Omit to leave the table alone (the jobs' exchanges are then checked against
        the groups already in the database).
    type: list
    elements: dict
    suboptions:
      name:
        description: Group name (lower case, digits, C(_), C(-)).
        type: str
        required: true
      timezone:
        description: IANA time zone of the group's exchanges, e.g. C(Europe/London).
        type: str
        required: true
      exchanges:
        description: Exchanges of the group.
        type: list
        elements: str
        required: true
  prune:
    description:
      - Delete the rows of a managed table (one whose option is given) that are not declared.
      - With an empty declared list (C(dag_configuration=[]) or C(exchange_groups=[])) this would delete every
        row of the table, so it is refused unless O(allow_empty_prune=true).
    type: bool
    default: false
  allow_empty_prune:
    description:
      - Allow O(prune) with an empty declared list, that is, deleting every row of that table.
    type: bool
    default: false
  page_size:
    description:
      - Rows per batched statement.
    type: int
    default: 500
extends_documentation_fragment:
  - stratdata.pi_cluster.postgres
  - stratdata.pi_cluster.attributes
attributes:
  check_mode:
    support: full
    details: Validates, compares and reports the counts; writes nothing (the transaction is rolled back).
  diff_mode:
    support: full
    details: One line per inserted, updated or deleted row (JSON), before and after.
seealso:
  - module: stratdata.pi_cluster.appdb_migrations
author:
  - StratData platform team (@stratdata)
"""

EXAMPLES = r"""
- name: Seed the historical load jobs and the exchange groups
  stratdata.pi_cluster.appdb_dag_config:
    login_host: "{{ appdb_host }}"
    login_password: "{{ vault_appdb_postgres_password }}"
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
    job_defaults:
      cpu_request: 500m
      memory_request: 1Gi
      batch_size: 500
    exchange_groups:
      - {name: us_markets, timezone: America/New_York, exchanges: [NYSE, NASDAQ]}
      - {name: lse, timezone: Europe/London, exchanges: [LSE]}
    dag_configuration:
      - {dag_id: historical_load_equities, job_name: us_markets, exchanges: [NYSE, NASDAQ]}
      - {dag_id: historical_load_equities, job_name: lse, exchanges: [LSE], memory_request: 2Gi}
  no_log: true

- name: Make the tables exactly the declared rows
  stratdata.pi_cluster.appdb_dag_config:
    login_password: "{{ vault_appdb_postgres_password }}"
    database: "{{ pi_cluster_appdb_database }}"
    schema: "{{ pi_cluster_appdb_schema }}"
    exchange_groups: "{{ groups_data }}"
    dag_configuration: "{{ jobs_data }}"
    prune: true
  no_log: true
"""

RETURN = r"""
inserted:
  description: Rows inserted (both tables; would be, in check mode).
  returned: always
  type: int
  sample: 4
updated:
  description: Rows updated (both tables).
  returned: always
  type: int
  sample: 0
unchanged:
  description: Declared rows already as declared (both tables).
  returned: always
  type: int
  sample: 0
deleted:
  description: Rows deleted by O(prune) (both tables).
  returned: always
  type: int
  sample: 0
dag_configuration:
  description: Counts for C(dag_configuration); all zero when the option is omitted.
  returned: always
  type: dict
  sample: {inserted: 4, updated: 0, unchanged: 0, deleted: 0}
exchange_groups:
  description: Counts for C(exchange_groups); all zero when the option is omitted.
  returned: always
  type: dict
  sample: {inserted: 4, updated: 0, unchanged: 0, deleted: 0}
queries:
  description: Statements run; batched ones once with their row count. In check mode, writes are listed as not executed.
  returned: always
  type: list
  elements: str
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.quantity import quantity_or_none
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.pg_connection import (
    QueryLog,
    advisory_lock_key,
    connect,
    db_error_message,
    end_transaction,
    pg_argument_spec,
    psycopg2,
)

try:
    import zoneinfo
except ImportError:  # pragma: no cover - python < 3.9
    zoneinfo = None

# Grammars of names and codes; always matched with fullmatch (a "$" would accept a trailing newline).
IDENT_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DAG_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,250}")
EXCHANGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.&-]{0,62}")
# Entries of the time zone database that are not IANA zone names: a copy of the host's own zone and a
# rules file (Debian ships both under /usr/share/zoneinfo, so available_timezones() lists them).
NOT_ZONES = frozenset(("localtime", "posixrules", "Factory"))

ROW_FIELDS = ("exchanges", "cpu_request", "memory_request", "cpu_limit", "memory_limit", "batch_size", "enabled")
DEFAULTABLE = ("cpu_request", "memory_request", "cpu_limit", "memory_limit", "batch_size", "enabled")


def parse_quantity(text):
    """Value of a Kubernetes quantity string as a Decimal, or None if ``text`` is not one (module_utils/quantity.py)."""
    if not isinstance(text, str):
        return None
    return quantity_or_none(text)


def argument_spec():
    spec = pg_argument_spec()
    spec.update(
        schema=dict(type="str", required=True),
        dag_configuration=dict(
            type="list",
            elements="dict",
            options=dict(
                dag_id=dict(type="str", required=True),
                job_name=dict(type="str", required=True),
                exchanges=dict(type="list", elements="str", required=True),
                cpu_request=dict(type="str"),
                memory_request=dict(type="str"),
                cpu_limit=dict(type="str"),
                memory_limit=dict(type="str"),
                batch_size=dict(type="int"),
                enabled=dict(type="bool"),
            ),
        ),
        job_defaults=dict(
            type="dict",
            default={},
            options=dict(
                cpu_request=dict(type="str"),
                memory_request=dict(type="str"),
                cpu_limit=dict(type="str"),
                memory_limit=dict(type="str"),
                batch_size=dict(type="int"),
                enabled=dict(type="bool", default=True),
            ),
        ),
        exchange_groups=dict(
            type="list",
            elements="dict",
            options=dict(
                name=dict(type="str", required=True),
                timezone=dict(type="str", required=True),
                exchanges=dict(type="list", elements="str", required=True),
            ),
        ),
        prune=dict(type="bool", default=False),
        allow_empty_prune=dict(type="bool", default=False),
        page_size=dict(type="int", default=500),
    )
    return spec


_ZONES = []


def iana_zones():
    """Names of the host's time zone database (cached), without the entries that are not zone names."""
    if not _ZONES:
        _ZONES.append(frozenset(zoneinfo.available_timezones()) - NOT_ZONES if zoneinfo is not None else frozenset())
    return _ZONES[0]


def valid_timezone(name):
    return isinstance(name, str) and name in iana_zones()


def normalise_groups(groups, errors):
    """Validate declared groups -> {name: (timezone, [exchanges])}."""
    declared = {}
    for index, group in enumerate(groups):
        where = "exchange_groups[%d] (%s)" % (index, group["name"])
        if not NAME_RE.fullmatch(group["name"] or ""):
            errors.append("%s: name must be lower case letters, digits, '_' or '-'" % where)
        if group["name"] in declared:
            errors.append("%s: duplicate group name" % where)
        if not valid_timezone(group["timezone"]):
            errors.append("%s: timezone %r is not an IANA time zone%s" % (
                where, group["timezone"], "" if iana_zones() else
                " (this host has no time zone database: install tzdata)"))
        exchanges = list(group["exchanges"] or [])
        if not exchanges:
            errors.append("%s: exchanges must not be empty" % where)
        for exchange in exchanges:
            if not EXCHANGE_RE.fullmatch(exchange or ""):
                errors.append("%s: exchange %r is not a valid exchange code" % (where, exchange))
        if len(set(exchanges)) != len(exchanges):
            errors.append("%s: exchanges contain duplicates" % where)
        declared[group["name"]] = (group["timezone"], exchanges)
    return declared


def check_quantity(where, field, value, errors):
    if value is None:
        return None
    quantity = parse_quantity(value)
    if quantity is None:
        errors.append("%s: %s %r is not a Kubernetes quantity (e.g. 500m, 1, 1.5, 1Gi, 512Mi, 1e3)"
                      % (where, field, value))
    elif quantity < 0:
        errors.append("%s: %s %r must not be negative" % (where, field, value))
        return None
    return quantity


def normalise_jobs(rows, job_defaults, errors):
    """Validate declared job rows.

    Returns {(dag_id, job_name): (exchanges, cpu_req, mem_req, cpu_lim, mem_lim, batch, enabled)}.
    """
    declared = {}
    for index, row in enumerate(rows):
        where = "dag_configuration[%d] (%s/%s)" % (index, row["dag_id"], row["job_name"])
        values = {}
        for key in DEFAULTABLE:
            values[key] = row.get(key) if row.get(key) is not None else job_defaults.get(key)
        if values["enabled"] is None:
            values["enabled"] = True
        if not DAG_ID_RE.fullmatch(row["dag_id"] or ""):
            errors.append("%s: dag_id must be letters, digits, '_', '.' or '-'" % where)
        if not NAME_RE.fullmatch(row["job_name"] or ""):
            errors.append("%s: job_name must be lower case letters, digits, '_' or '-'" % where)
        key = (row["dag_id"], row["job_name"])
        if key in declared:
            errors.append("%s: duplicate (dag_id, job_name)" % where)
        exchanges = list(row["exchanges"] or [])
        if not exchanges:
            errors.append("%s: exchanges must not be empty" % where)
        if len(set(exchanges)) != len(exchanges):
            errors.append("%s: exchanges contain duplicates" % where)
        for field in ("cpu_request", "memory_request"):
            if values[field] is None:
                errors.append("%s: %s is not set (in the row or in job_defaults)" % (where, field))
        cpu_req = check_quantity(where, "cpu_request", values["cpu_request"], errors)
        mem_req = check_quantity(where, "memory_request", values["memory_request"], errors)
        cpu_lim = check_quantity(where, "cpu_limit", values["cpu_limit"], errors)
        mem_lim = check_quantity(where, "memory_limit", values["memory_limit"], errors)
        if cpu_req is not None and cpu_lim is not None and cpu_lim < cpu_req:
            errors.append("%s: cpu_limit %s is below cpu_request %s"
                          % (where, values["cpu_limit"], values["cpu_request"]))
        if mem_req is not None and mem_lim is not None and mem_lim < mem_req:
            errors.append("%s: memory_limit %s is below memory_request %s"
                          % (where, values["memory_limit"], values["memory_request"]))
        batch = values["batch_size"]
        if batch is None:
            errors.append("%s: batch_size is not set (in the row or in job_defaults)" % where)
        elif isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0 or batch > 2147483647:
            errors.append("%s: batch_size %r must be a positive integer" % (where, batch))
        declared[key] = (exchanges, values["cpu_request"], values["memory_request"], values["cpu_limit"],
                         values["memory_limit"], batch, bool(values["enabled"]))
    return declared


def check_exchanges(jobs, group_exchanges, rows_by_key, errors):
    """Every exchange of every job row that will exist after the run must be in an exchange group.

    ``rows_by_key`` maps declared keys to their index in dag_configuration; keys missing from it are rows
    already in the database that stay (not declared, not pruned).
    """
    known = ", ".join(sorted(group_exchanges)) or "none"
    for key, values in sorted(jobs.items()):
        unknown = [e for e in values[0] if e not in group_exchanges]
        if not unknown:
            continue
        where = ("dag_configuration[%d] (%s/%s)" % (rows_by_key[key], key[0], key[1]) if key in rows_by_key
                 else "existing row %s/%s (not declared, kept)" % key)
        errors.append("%s: exchange(s) %s not in any exchange group (known: %s)" % (where, ", ".join(unknown), known))


def compare(declared, existing, prune):
    """Return (to_insert, to_update, unchanged_count, to_delete); rows as (key, values)."""
    inserts, updates, unchanged = [], [], 0
    for key, values in declared.items():
        current = existing.get(key)
        if current is None:
            inserts.append((key, values))
        elif current != values:
            updates.append((key, values))
        else:
            unchanged += 1
    deletes = [(key, existing[key]) for key in existing if key not in declared] if prune else []
    return inserts, updates, unchanged, deletes


def write_groups(log, schema, inserts, updates, deletes, page_size, check_mode):
    table = '"%s".exchange_groups' % schema
    upsert = ("INSERT INTO %s AS t (group_name, timezone, exchanges) VALUES %%s "
              "ON CONFLICT (group_name) DO UPDATE SET timezone = EXCLUDED.timezone, "
              "exchanges = EXCLUDED.exchanges, updated_at = now()" % table)
    delete = "DELETE FROM %s AS t USING (VALUES %%s) AS v(group_name) WHERE t.group_name = v.group_name" % table
    rows = [(key, values[0], list(values[1])) for key, values in inserts + updates]
    if check_mode:
        if rows:
            log.note("%s -- %d row(s)" % (upsert, len(rows)))
        if deletes:
            log.note("%s -- %d row(s)" % (delete, len(deletes)))
        return
    log.execute_values(upsert, rows, template="(%s, %s, %s::text[])", page_size=page_size)
    log.execute_values(delete, [(key,) for key, _values in deletes], page_size=page_size)


def write_jobs(log, schema, inserts, updates, deletes, page_size, check_mode):
    table = '"%s".dag_configuration' % schema
    columns = "dag_id, job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, batch_size, enabled"
    upsert = ("INSERT INTO %s AS t (%s) VALUES %%s ON CONFLICT (dag_id, job_name) DO UPDATE SET "
              "exchanges = EXCLUDED.exchanges, cpu_request = EXCLUDED.cpu_request, "
              "memory_request = EXCLUDED.memory_request, cpu_limit = EXCLUDED.cpu_limit, "
              "memory_limit = EXCLUDED.memory_limit, batch_size = EXCLUDED.batch_size, "
              "enabled = EXCLUDED.enabled, updated_at = now()" % (table, columns))
    delete = ("DELETE FROM %s AS t USING (VALUES %%s) AS v(dag_id, job_name) "
              "WHERE t.dag_id = v.dag_id AND t.job_name = v.job_name" % table)
    rows = [key + (list(values[0]),) + tuple(values[1:]) for key, values in inserts + updates]
    if check_mode:
        if rows:
            log.note("%s -- %d row(s)" % (upsert, len(rows)))
        if deletes:
            log.note("%s -- %d row(s)" % (delete, len(deletes)))
        return
    log.execute_values(upsert, rows, template="(%s, %s, %s::text[], %s, %s, %s, %s, %s, %s)", page_size=page_size)
    log.execute_values(delete, [key for key, _values in deletes], page_size=page_size)


def read_existing(log, schema):
    log.execute('SELECT group_name, timezone, exchanges FROM "%s".exchange_groups' % schema)
    groups = dict((r[0], (r[1], list(r[2]))) for r in log.cursor.fetchall())
    log.execute('SELECT dag_id, job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, '
                'batch_size, enabled FROM "%s".dag_configuration' % schema)
    jobs = dict(((r[0], r[1]), (list(r[2]),) + tuple(r[3:])) for r in log.cursor.fetchall())
    return groups, jobs


def diff_lines(table, changes):
    before, after = [], []
    for _kind, key, old, new in changes:
        label = "%s %s" % (table, "/".join(key) if isinstance(key, tuple) else key)
        if old is not None:
            before.append("%s %s\n" % (label, json.dumps(old)))
        if new is not None:
            after.append("%s %s\n" % (label, json.dumps(new)))
    return before, after


def row_dict(fields, values):
    return dict(zip(fields, values)) if values is not None else None


def run_module():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    schema = params["schema"]
    if not IDENT_RE.fullmatch(schema):
        module.fail_json(msg="schema %r must be a lower-case SQL identifier" % schema)
    if params["page_size"] < 1:
        module.fail_json(msg="page_size must be positive")
    if params["prune"] and not params["allow_empty_prune"]:
        empty = [name for name in ("dag_configuration", "exchange_groups") if params[name] == []]
        if empty:
            module.fail_json(msg="prune is true and %s %s empty: that would delete every row of %s. Nothing was "
                             "written. Declare the rows, or set allow_empty_prune: true if emptying the table is "
                             "really meant." % (" and ".join(empty), "is" if len(empty) == 1 else "are",
                                                " and ".join(empty)))
    check_mode = module.check_mode
    counts = dict(inserted=0, updated=0, unchanged=0, deleted=0)
    result = dict(changed=False, dag_configuration=dict(counts), exchange_groups=dict(counts), queries=[], **counts)

    # Validation that needs no database: every row, all errors collected.
    errors = []
    groups = normalise_groups(params["exchange_groups"] or [], errors)
    job_rows = params["dag_configuration"] or []
    jobs = normalise_jobs(job_rows, params["job_defaults"] or {}, errors)
    # No early exit on errors: the checks against the database's groups below add theirs, so the
    # operator sees every problem at once. Nothing is written while errors is not empty.

    conn = connect(module, autocommit=False)
    log = QueryLog(conn.cursor())
    result["queries"] = log.queries
    try:
        log.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key("stratdata.pi_cluster.appdb_dag_config"),))
        log.execute("SELECT to_regclass(%s), to_regclass(%s)",
                    ("%s.exchange_groups" % schema, "%s.dag_configuration" % schema))
        if None in log.cursor.fetchone():
            if not check_mode:
                module.fail_json(msg="Tables %s.exchange_groups and %s.dag_configuration not found in database %s: "
                                 "run stratdata.pi_cluster.appdb_migrations first"
                                 % (schema, schema, params["database"]), **result)
            # Check mode before the migrations ran (a new database): predict the real run, which inserts all.
            module.warn("Tables %s.exchange_groups and %s.dag_configuration do not exist yet (migrations pending): "
                        "every declared row would be inserted" % (schema, schema))
            existing_groups, existing_jobs = {}, {}
        else:
            existing_groups, existing_jobs = read_existing(log, schema)

        # Validation against the final state of the groups (declared, plus existing ones not pruned).
        final_groups = dict(existing_groups) if params["exchange_groups"] is None else {}
        if params["exchange_groups"] is not None and not params["prune"]:
            final_groups.update(existing_groups)
        final_groups.update(groups)
        group_exchanges = {}
        for name in sorted(final_groups):
            for exchange in final_groups[name][1]:
                if exchange in group_exchanges and group_exchanges[exchange] != name:
                    errors.append("exchange %s is in two exchange groups: %s and %s"
                                  % (exchange, group_exchanges[exchange], name))
                group_exchanges.setdefault(exchange, name)
        positions = dict(((r["dag_id"], r["job_name"]), i) for i, r in enumerate(job_rows))
        final_jobs = dict(jobs)
        if params["dag_configuration"] is None or not params["prune"]:
            for key, values in existing_jobs.items():
                final_jobs.setdefault(key, values)
        check_exchanges(final_jobs, group_exchanges, positions, errors)
        if errors:
            conn.rollback()
            module.fail_json(msg=summarise(errors), errors=errors, **result)

        changes = {}
        if params["exchange_groups"] is not None:
            ins, upd, same, dele = compare(groups, existing_groups, params["prune"])
            write_groups(log, schema, ins, upd, dele, params["page_size"], check_mode)
            result["exchange_groups"] = dict(inserted=len(ins), updated=len(upd), unchanged=same, deleted=len(dele))
            changes["exchange_groups"] = (ins, upd, dele, existing_groups, ("timezone", "exchanges"))
        if params["dag_configuration"] is not None:
            ins, upd, same, dele = compare(jobs, existing_jobs, params["prune"])
            write_jobs(log, schema, ins, upd, dele, params["page_size"], check_mode)
            result["dag_configuration"] = dict(inserted=len(ins), updated=len(upd), unchanged=same, deleted=len(dele))
            changes["dag_configuration"] = (ins, upd, dele, existing_jobs, ROW_FIELDS)
        end_transaction(conn, check_mode)
    except psycopg2.Error as exc:
        lost = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and (
            getattr(exc, "pgcode", None) is None or str(exc.pgcode).startswith(("08", "57P")))
        try:
            conn.rollback()
        except Exception:  # the connection is gone: the server rolled the transaction back itself
            pass
        module.fail_json(msg="%s: %s. The transaction was rolled back: nothing was written. %s"
                         % ("The connection to PostgreSQL was lost" if lost else "Database error",
                            db_error_message(exc, module),
                            "Check the server and run again." if lost else
                            "Fix the cause and run again (every row is validated again first)."), **result)
    finally:
        try:
            conn.close()
        except Exception:
            pass

    for key in counts:
        result[key] = result["exchange_groups"][key] + result["dag_configuration"][key]
    result["changed"] = bool(result["inserted"] or result["updated"] or result["deleted"])
    if module._diff and result["changed"]:
        before, after = [], []
        for table, (ins, upd, dele, existing, fields) in sorted(changes.items()):
            entries = [("insert", k, None, row_dict(fields, v)) for k, v in ins]
            entries += [("update", k, row_dict(fields, existing[k]), row_dict(fields, v)) for k, v in upd]
            entries += [("delete", k, row_dict(fields, v), None) for k, v in dele]
            b, a = diff_lines(table, entries)
            before += b
            after += a
        result["diff"] = dict(before="".join(before), after="".join(after))
    module.exit_json(**result)


def summarise(errors, limit=50):
    head = errors[:limit]
    more = len(errors) - len(head)
    return "Validation failed, nothing written (%d error(s)): %s%s" % (
        len(errors), "; ".join(head), " ... and %d more" % more if more else "")


def main():
    run_module()


if __name__ == "__main__":
    main()
