"""search/ucum.py: UCUM canonical forms, and quantity search in canonical units
(http://hl7.org/fhir/R4/search.html#quantity) through the quantity kind's rows and match()."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

import pytest

from fhirserver.jsonio import loads
from fhirserver.search.kinds import quantity_kind as Q
from fhirserver.search.ucum import UCUM, canonical

P = SimpleNamespace(code="value-quantity")


@pytest.mark.parametrize("code, unit, scale, offset", [
    ("mg/dL", "kilogram.meter-3", "0.01", "0"),
    ("g/dL", "kilogram.meter-3", "10", "0"),
    ("mmol/L", "meter-3.mole", "1", "0"),
    ("[in_i]", "meter", "0.0254", "0"),
    ("Cel", "kelvin", "1", "273.15"),
    ("[degF]", "kelvin", "0.555555555555556", "255.372222222222"),
    ("mm[Hg]", "kilogram.meter-1.second-2", "133.322387415", "0"),
    ("/min", "second-1", "0.0166666666666667", "0"),
    ("{beats}/min", "second-1", "0.0166666666666667", "0"),      # annotations are unity
    ("10*3/uL", "meter-3", "1E+12", "0"),
    ("10*9/L", "meter-3", "1E+12", "0"),
    ("%", "1", "0.01", "0"),
    ("[lb_av]", "kilogram", "0.45359237", "0"),
    ("a", "second", "31557600", "0"),
])
def test_canonical_forms(code, unit, scale, offset):
    c = canonical(code)
    assert (c.unit, c.scale, c.offset) == (unit, Decimal(scale), Decimal(offset))


@pytest.mark.parametrize("code", ["[IU]/L", "m[IU]/mL", "[arb'U]", "[pH]", "dB", "Cel/min", "mg/", "foo", "", "g" * 101])
def test_codes_that_cannot_be_compared(code):
    """Arbitrary units compare only with themselves (UCUM 4.4), logarithmic and unknown ones not at all."""
    assert canonical(code) is None


def test_values_are_converted_in_decimal():
    assert canonical("mg").value(5.35) == canonical("g").value(0.00535) == 5.35e-6
    assert canonical("Cel").value(37.0) == 310.15 and canonical("Cel").value(float("-inf")) == float("-inf")


def quantity(value: str, code: str, system: str = UCUM) -> dict:
    return {"value": loads(value), "unit": code, "system": system, "code": code}


def hits(query: str, value: dict) -> bool:
    return any(Q.match(Q.parse(P, "", query), r) for r in Q.rows([(value, "Quantity")], P))


def test_the_issue_example_gt_1_g_per_dl_finds_1500_mg_per_dl():
    assert hits(f"gt1|{UCUM}|g/dL", quantity("1500", "mg/dL"))
    assert not hits(f"gt2|{UCUM}|g/dL", quantity("1500", "mg/dL"))
    assert hits(f"lt2|{UCUM}|g/dL", quantity("1500", "mg/dL"))


def test_the_spec_example_5_4_mg_matches_0_0054_g_with_its_precision():
    """R4 #quantity: 5.4|UCUM|mg matches 0.0054 g: the search range [5.35, 5.45] mg contains it."""
    assert hits(f"5.4|{UCUM}|mg", quantity("0.0054", "g"))
    assert hits(f"5.4|{UCUM}|mg", quantity("0.00540", "g"))          # finer: inside
    assert not hits(f"5.4|{UCUM}|mg", quantity("0.005", "g"))         # [0.0045, 0.0055]: not inside
    assert not hits(f"5.4|{UCUM}|mg", quantity("0.0056", "g"))
    assert hits(f"5.40e-3|{UCUM}|g", quantity("5.40", "mg"))
    assert not hits(f"5.40e-3|{UCUM}|g", quantity("5.4", "mg"))       # coarser than the search value


@pytest.mark.parametrize("query, value, code, hit", [
    ("98.6", "37", "Cel", True), ("gt99", "37", "Cel", False), ("ge98", "37.0", "Cel", True),   # [degF]
    ("1", "2.54", "cm", True),                                    # [in_i]
    ("100", "13.3322387415", "kPa", True),                        # mm[Hg]
    ("60", "1", "/s", True),                                      # /min
])
def test_conversions_across_units(query, value, code, hit):
    unit = {"98.6": "[degF]", "gt99": "[degF]", "ge98": "[degF]", "1": "[in_i]", "100": "mm[Hg]", "60": "/min"}[query]
    assert hits(f"{query}|{UCUM}|{unit}", quantity(value, code)) is hit


def test_incommensurable_units_never_meet():
    assert not hits(f"1500|{UCUM}|mg/dL", quantity("1500", "mg"))
    assert not hits(f"1|{UCUM}|g/dL", quantity("1", "mmol/L"))


def test_uncomparable_units_fall_back_to_the_exact_code():
    assert hits(f"5|{UCUM}|[IU]/L", quantity("5", "[IU]/L"))
    assert not hits(f"5|{UCUM}|[IU]/L", quantity("5000", "[IU]/mL"))
    assert not hits(f"5|{UCUM}|[IU]/L", quantity("5", "[IU]/L", system="urn:other"))


def test_only_ucum_quantities_are_converted():
    assert not hits(f"1500|{UCUM}|mg", quantity("1.5", "g", system="urn:other"))   # not UCUM: no canonical row
    assert not hits("1500||mg", quantity("1.5", "g"))                              # no system asked: as written
    assert hits("1.5||g", quantity("1.5", "g", system="urn:other"))


def test_concurrent_first_uses_agree_with_serial_ones():
    codes = ["mg/dL", "g/dL", "mmol/L", "[in_i]", "Cel", "[degF]", "mm[Hg]", "/min", "10*3/uL", "%", "[IU]/L", "dB"]
    serial = [canonical(c) for c in codes]
    canonical.cache_clear()
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(canonical, codes * 4)) == serial * 4


@pytest.mark.parametrize("code", [
    "10*9999999", "10*99999999", "10*" + "9" * 90, "10^-99999999", "m99999999", "[ft_i]" + "9" * 40,
    ".".join(["10*99"] * 16) + ".m",                     # a product whose factor overflows a float
    "9" * 99,                                            # a factor of 10^99: finite, and comparable
])
def test_hostile_exponents_are_bounded_and_never_raise(code):
    """A unit is data a client sends (a search value, a stored Quantity): huge exponents are refused
    before pint computes 10**N, overflowing factors are not comparable, and nothing raises."""
    canonical("mg")                     # the unit registry loaded before the clock starts
    start = time.monotonic()
    c = canonical(code)
    assert time.monotonic() - start < 2
    assert c is None or (code == "9" * 99 and c.unit == "1")
    Q.parse(P, "", f"1|{UCUM}|{code}")                     # a query value: parsed, never a 500
    assert Q.rows([(quantity("1", code), "Quantity")], P)


def test_exponents_a_clinician_writes_still_reduce():
    assert canonical("10*23").scale == Decimal("1E+23") and canonical("m3").unit == "meter3"
    assert canonical("10*-12/L").scale == Decimal("1E-9")


def test_long_codes_are_not_parsed_nor_remembered():
    before = canonical.cache_info().currsize
    assert canonical("(" * 5000 + "m" + ")" * 5000) is None and canonical("m" * 10_000) is None
    assert canonical.cache_info().currsize == before
