# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes quantities ("500m", "1Gi", "1.5", "1e3"): the one parser of the collection.

Grammar of resource.Quantity (k8s.io/apimachinery/pkg/api/resource/quantity.go):
  <quantity>        ::= <signedNumber><suffix>
  <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
  <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
  <decimalSI>       ::= m | "" | k | M | G | T | P | E
  <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
  <signedNumber>    ::= <number> | <sign><number>
  <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
Kubernetes' parser only accepts an integer exponent, and so does this one; exponents beyond +-100 are refused
(no real resource needs them, and they would make Decimal arithmetic arbitrarily expensive).

parse_quantity raises ValueError, and only ValueError, on anything that is not a quantity.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import Decimal, localcontext

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
QUANTITY_RE = re.compile(
    r"\A(?P<sign>[+-]?)(?P<number>" + _NUMBER + r")"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+|)\Z"
)
BINARY_SI = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
DECIMAL_SI = {"m": Decimal("0.001"), "": Decimal(1), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
              "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18}
MAX_EXPONENT = 100


def parse_quantity(value):
    """The value of a Kubernetes quantity as a Decimal.

    Accepts a quantity string, or an int / Decimal (a number without suffix, as YAML may hand it over).
    Raises ValueError for anything else (booleans, floats, other types, strings outside the grammar).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ValueError("%r is not a Kubernetes quantity" % (value,))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("%r is not a Kubernetes quantity" % (value,))
        return value
    match = QUANTITY_RE.match(value)
    if not match:
        raise ValueError("%r is not a Kubernetes quantity (e.g. 500m, 1, 1.5, 1Gi, 512Mi, 1e3)" % (value,))
    number = match.group("number")
    amount = Decimal("0" + number if number.startswith(".") else number)
    suffix = match.group("suffix")
    if suffix in BINARY_SI:
        factor = Decimal(BINARY_SI[suffix])
    elif suffix in DECIMAL_SI:
        factor = DECIMAL_SI[suffix]
    else:
        exponent = int(suffix[1:])
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError("%r: exponent beyond +-%d" % (value, MAX_EXPONENT))
        factor = Decimal(1).scaleb(exponent)
    # exact: enough digits for the number times the largest factor (2**60 has 19 digits)
    # (unary minus rounds too, so the sign is applied inside the same context)
    with localcontext() as context:
        context.prec = len(number) + 25
        return (-amount if match.group("sign") == "-" else amount) * factor


def quantity_or_none(value):
    """parse_quantity, or None when ``value`` is not a quantity."""
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def format_quantity(value):
    """A Decimal (or int) as a plain quantity string without suffix or exponent: parse_quantity reads it back."""
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError("%r is not a finite number" % (value,))
    text = format(value, "f")
    return "0" if text in ("-0", "+0") else text
