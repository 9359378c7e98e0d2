# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Kubernetes quantity parser (plugins/module_utils/quantity.py), as a property test with Hypothesis."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


from ansible_collections.stratdata.pi_cluster.plugins.module_utils import quantity as Q  # noqa: E402
from ansible_collections.stratdata.pi_cluster.plugins.modules import appdb_dag_config  # noqa: E402

SUFFIXES = dict(Q.DECIMAL_SI, **{k: Decimal(v) for k, v in Q.BINARY_SI.items()})
finite = st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e30"), max_value=Decimal("1e30"),
                     places=6)


@settings(max_examples=300, deadline=None)
@given(finite)
def test_parse_format_round_trips(value):
    assert Q.parse_quantity(Q.format_quantity(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10 ** 6), st.integers(min_value=0, max_value=999),
       st.sampled_from(sorted(SUFFIXES)), st.sampled_from(["", "+", "-"]))
def test_every_suffix_scales_the_number(whole, fraction, suffix, sign):
    text = "%s%d.%03d%s" % (sign, whole, fraction, suffix)
    expected = Decimal("%d.%03d" % (whole, fraction)) * SUFFIXES[suffix]
    assert Q.parse_quantity(text) == (-expected if sign == "-" else expected)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(Q.QUANTITY_RE))
def test_every_string_of_the_grammar_parses_or_names_its_exponent(text):
    try:
        assert isinstance(Q.parse_quantity(text), Decimal)
    except ValueError as exc:  # only an exponent beyond the bound is refused
        assert "exponent" in str(exc)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.floats(), st.booleans(), st.none(), st.lists(st.integers()),
                 st.dictionaries(st.text(), st.integers())))
def test_anything_else_raises_only_value_error(value):
    try:
        result = Q.parse_quantity(value)
    except ValueError:
        assert Q.quantity_or_none(value) is None
        return
    assert isinstance(result, Decimal) and isinstance(value, str)


@pytest.mark.parametrize("text,value", [
    ("500m", "0.5"), ("1", "1"), ("1.5", "1.5"), ("1Gi", str(2 ** 30)), ("512Mi", str(512 * 2 ** 20)),
    ("1e3", "1000"), ("1E3", "1000"), ("1E", str(10 ** 18)), ("+2k", "2000"), (".5", "0.5"), ("5.", "5"),
    ("0", "0"), ("1.5Gi", str(int(1.5 * 2 ** 30))), ("2e-3", "0.002"),
])
def test_grammar_accepts(text, value):
    assert Q.parse_quantity(text) == Decimal(value)
    assert appdb_dag_config.parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["lots", "", "1GiB", "1gi", "1 Gi", "Gi", "1.2.3", "--1", "1e", "1e1.5", "0x10",
                                  "1Ki1", "m", "1mi", "1\n", "1e101"])
def test_grammar_rejects(text):
    with pytest.raises(ValueError):
        Q.parse_quantity(text)
    assert appdb_dag_config.parse_quantity(text) is None


def test_numbers_and_other_types():
    assert Q.parse_quantity(2) == 2 and Q.parse_quantity(Decimal("0.5")) == Decimal("0.5")
    for bad in (True, 1.5, None, [], Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError):
            Q.parse_quantity(bad)
    assert Q.format_quantity(Decimal("-0")) == "0" and Q.format_quantity(Decimal("1E+3")) == "1000"
