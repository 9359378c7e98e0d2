"""Property-based tests (Hypothesis) of the row validators, the quantity parser, the SQL scanner and the
host-name check (issue 15): arbitrary input never raises, and a string passes only if it matches the
documented grammar. The grammar checks here are written without regular expressions, character by
character, so they are an independent statement of the grammar and not a copy of the code under test.

Pure Python, no services; the examples are bounded so the whole file runs in well under 30 s.
"""

from __future__ import annotations

import os
import string
import sys
import zoneinfo
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from conftest import REPO
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(str(REPO), "collections"))

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.preflight import check_host_names  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.sql_statements import (  # noqa: E402
    UnterminatedError,
    transaction_control,
)
from ansible_collections.stratdata.pi_cluster.plugins.modules import appdb_dag_config as dc  # noqa: E402

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOWER, UPPER, DIGITS = set(string.ascii_lowercase), set(string.ascii_uppercase), set(string.digits)

# Text that is likely to sit near the grammars' edges: their alphabets, whitespace, newlines, unicode digits.
edge_text = st.text(
    alphabet=st.sampled_from(list("abczAZ09_-.&/ \n\t\r\x00+eEmkMGKiT") + ["\u0661", "\u00e9", "\u212a", "\ufeff"]),
    max_size=70,
) | st.text(max_size=70)


def name_ok(s):      # NAME_RE: [a-z0-9][a-z0-9_-]{0,62}
    return 1 <= len(s) <= 63 and s[0] in LOWER | DIGITS and all(c in LOWER | DIGITS | {"_", "-"} for c in s)


def dag_id_ok(s):    # DAG_ID_RE: [A-Za-z0-9_.-]{1,250}
    return 1 <= len(s) <= 250 and all(c in LOWER | UPPER | DIGITS | {"_", ".", "-"} for c in s)


def exchange_ok(s):  # EXCHANGE_RE: [A-Za-z0-9][A-Za-z0-9_.&-]{0,62}
    return (1 <= len(s) <= 63 and s[0] in LOWER | UPPER | DIGITS
            and all(c in LOWER | UPPER | DIGITS | {"_", ".", "&", "-"} for c in s))


def ident_ok(s):     # IDENT_RE: [a-z_][a-z0-9_]{0,62}
    return 1 <= len(s) <= 63 and s[0] in LOWER | {"_"} and all(c in LOWER | DIGITS | {"_"} for c in s)


def label_ok(s):     # RFC 1123 label, lower case
    return (1 <= len(s) <= 63 and all(c in LOWER | DIGITS | {"-"} for c in s)
            and s[0] != "-" and s[-1] != "-")


@SETTINGS
@given(edge_text)
@example("NYSE\n")
@example("lse\n")
@example("a" * 63)
@example("a" * 64)
def test_name_validators_accept_exactly_their_grammar(text):
    assert bool(dc.NAME_RE.fullmatch(text)) == name_ok(text)
    assert bool(dc.DAG_ID_RE.fullmatch(text)) == dag_id_ok(text)
    assert bool(dc.EXCHANGE_RE.fullmatch(text)) == exchange_ok(text)
    assert bool(dc.IDENT_RE.fullmatch(text)) == ident_ok(text)


@SETTINGS
@given(edge_text | st.sampled_from(sorted(zoneinfo.available_timezones())))
@example("localtime")
@example("posixrules")
@example("Europe/London\n")
@example("../etc/passwd")
@example("/usr/share/zoneinfo/UTC")
def test_time_zones_are_real_iana_names_only(text):
    expected = text in zoneinfo.available_timezones() and text not in ("localtime", "posixrules", "Factory")
    assert dc.valid_timezone(text) == expected


# -- the Kubernetes quantity grammar, stated structurally --------------------------------------------------

def quantity_ok(s):
    """<sign>?<number><suffix> per k8s.io/apimachinery resource.Quantity (integer exponent only)."""
    i = 1 if s[:1] in ("+", "-") else 0
    j = i
    while j < len(s) and s[j] in DIGITS:
        j += 1
    whole = j - i
    frac = 0
    if j < len(s) and s[j] == ".":
        k = j + 1
        while k < len(s) and s[k] in DIGITS:
            k += 1
        frac, j = k - j - 1, k
    if whole == 0 and frac == 0:
        return False
    suffix = s[j:]
    if suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "", "k", "M", "G", "T", "P", "E"):
        return True
    if suffix[:1] in ("e", "E"):
        rest = suffix[1:]
        rest = rest[1:] if rest[:1] in ("+", "-") else rest
        return rest != "" and all(c in DIGITS for c in rest)
    return False


quantities = st.builds(
    lambda sign, whole, dot, frac, suffix: sign + whole + dot + frac + suffix,
    st.sampled_from(["", "+", "-"]),
    st.text(alphabet="0123456789", max_size=4),
    st.sampled_from(["", "."]),
    st.text(alphabet="0123456789", max_size=3),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "E-2", "e+1", "i", "mi", "GiB", " ", "\n"]),
)


@SETTINGS
@given(quantities | edge_text)
@example("1Gi\n")
@example("500m\n")
@example("1e999")
def test_quantity_parser_never_raises_and_accepts_only_the_grammar(text):
    value = dc.parse_quantity(text)
    assert value is None or isinstance(value, Decimal)
    if value is not None:
        assert quantity_ok(text)
    elif quantity_ok(text):
        # the only grammatical strings refused are exponents beyond +-100 (no real request is 1e101 cores)
        assert text.rstrip("0123456789+-").endswith(("e", "E")) and abs(int(text.split("e")[-1].split("E")[-1])) > 100


# The suffixes of k8s.io/apimachinery's resource.Quantity, written out here (not read from the code under test).
SUFFIX_SCALE = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
                "m": Decimal("0.001"), "": 1, "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12,
                "P": 10 ** 15, "E": 10 ** 18}


@SETTINGS
@given(st.integers(min_value=0, max_value=10 ** 6), st.sampled_from(sorted(SUFFIX_SCALE)))
def test_quantity_values(number, suffix):
    scale = SUFFIX_SCALE[suffix]
    assert dc.parse_quantity("%d%s" % (number, suffix)) == number * scale


# -- whole rows: arbitrary JSON-shaped values never raise -------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | edge_text
str_or_none = st.none() | edge_text
group_rows = st.fixed_dictionaries({
    "name": str_or_none, "timezone": str_or_none, "exchanges": st.none() | st.lists(str_or_none, max_size=4)})
job_rows = st.fixed_dictionaries({
    "dag_id": str_or_none, "job_name": str_or_none, "exchanges": st.none() | st.lists(str_or_none, max_size=4),
    "cpu_request": str_or_none, "memory_request": str_or_none, "cpu_limit": str_or_none,
    "memory_limit": str_or_none, "batch_size": st.none() | st.integers(), "enabled": st.none() | st.booleans()})


@SETTINGS
@given(st.lists(group_rows, max_size=4), st.lists(job_rows, max_size=4),
       st.dictionaries(st.sampled_from(list(dc.DEFAULTABLE)), scalars, max_size=3))
def test_row_validation_never_raises_and_refuses_what_breaks_the_grammar(groups, jobs, defaults):
    errors = []
    declared = dc.normalise_groups(groups, errors)
    assert isinstance(declared, dict)
    dc.normalise_jobs(jobs, defaults, errors)
    for group in groups:
        bad = (not name_ok(group["name"] or "")
               or not dc.valid_timezone(group["timezone"])
               or not group["exchanges"]
               or any(not exchange_ok(e or "") for e in group["exchanges"] or []))
        if bad:
            assert errors
    for row in jobs:
        if not dag_id_ok(row["dag_id"] or "") or not name_ok(row["job_name"] or ""):
            assert errors


# -- SQL scanner: words hidden in bodies, comments and literals never count --------------------------------------

@SETTINGS
@given(st.text(max_size=200))
def test_sql_scanner_never_raises_anything_but_unterminated(text):
    try:
        found = transaction_control(text)
    except UnterminatedError as exc:
        assert exc.line >= 1
    else:
        assert all(line >= 1 for line, _name in found)


hidden = st.text(max_size=80)


@SETTINGS
@given(hidden, st.sampled_from(["COMMIT", "ROLLBACK", "BEGIN", "END", "SAVEPOINT x", "START TRANSACTION"]))
def test_transaction_control_found_only_outside_bodies(body, statement):
    tag = "$q$"
    body = body.replace("$q$", "")
    sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS %s%s; %s;%s;\n%s;" % (tag, body, statement, tag, statement)
    found = transaction_control(sql)
    assert [name for _line, name in found] == [statement.split(" x")[0]]
    comment = body.replace("*/", "").replace("/*", "")
    assert transaction_control("/* %s; %s; */ SELECT 1;" % (comment, statement)) == []
    literal = body.replace("'", "''")
    assert transaction_control("SELECT '%s; %s;';" % (literal, statement)) == []


# -- host names ----------------------------------------------------------------------------------------------------

@SETTINGS
@given(edge_text)
@example("Pi-Worker-02")
@example("pi_worker_02")
@example("pi-worker-02.")
@example("-pi-worker-02")
@example("pi-worker-02\n")
def test_host_names_are_dns_labels(name):
    assert (check_host_names([name]) == []) == label_ok(name)
