"""quantity kind: rows, parse, the R4 rules (search.html#quantity, #prefix), and
sql() == match() on random rows and conditions."""
from __future__ import annotations

import os
import sqlite3
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirserver.errors import BadRequest
from fhirserver.jsonio import loads
from fhirserver.search.kinds import quantity_kind as Q

P = SimpleNamespace(code="value-quantity")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "data", "hl7-examples")
INF = float("inf")
UCUM = "http://unitsofmeasure.org"
NONE = ("", None, None)         # no canonical UCUM form
YEAR = 31557600.0               # UCUM's a: the Julian year, in seconds


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as f:
        return loads(f.read())


def q(text: str):
    return Q.parse(P, "", text)


def quantity(value: str, unit=None, system=None, code=None, **extra) -> dict:
    out = {"value": loads(value)}
    out.update({k: v for k, v in (("unit", unit), ("system", system), ("code", code)) if v is not None})
    return out | extra


def hits(query: str, value, typ="Quantity") -> bool:
    rows = Q.rows([(value, typ)], P)
    assert rows, value
    return any(Q.match(q(query), r) for r in rows)


def sql_count(cond, row) -> int:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t(system TEXT, code TEXT, unit TEXT, low REAL, high REAL, canon TEXT, clow REAL, "
                "chigh REAL)")
    con.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    text, args = Q.sql(cond, "x")
    assert text.count("?") == len(args)
    return con.execute(f"SELECT count(*) FROM t AS x WHERE {text}", args).fetchone()[0]


# ---- rows ---------------------------------------------------------------------

def test_rows_from_examples():
    obs = example("Observation-example.json")
    assert Q.rows([(obs["valueQuantity"], "Quantity")], P) == [
        (UCUM, "[lb_av]", "lbs", 185.0, 185.0, "kilogram", 83.91458845, 83.91458845)]   # 185 x 0.45359237
    cond = example("Condition-f202.json")
    assert Q.rows([(cond["onsetAge"], "Age")], P) == [(UCUM, "a", "years", 52.0, 52.0, "second", YEAR * 52, YEAR * 52)]
    inv = example("Invoice-example.json")
    assert Q.rows([(inv["totalGross"], None)], P) == [("urn:iso:std:iso:4217", "EUR", "", 48.0, 48.0) + NONE]
    act = example("ActivityDefinition-administer-zika-virus-exposure-assessment.json")
    ranges = [(u["valueRange"], "Range") for u in act["useContext"] if "valueRange" in u]
    assert Q.rows(ranges, P) == [("", "", "a", 12.0, INF) + NONE]


def test_decimal_values_and_units():
    (row,) = Q.rows([(quantity("5.40", "mg", UCUM, "mg"), "Quantity")], P)
    assert row[:3] == (UCUM, "mg", "mg") and row[3] == pytest.approx(5.395) and row[4] == pytest.approx(5.405)
    assert row[5:] == ("kilogram", 5.395e-6, 5.405e-6)       # exactly: decimal arithmetic
    assert Q.rows([({"value": 3}, "Count")], P) == [("", "", "", 3.0, 3.0) + NONE]
    assert Q.rows([({"value": 3, "unit": "Mg "}, None)], P) == [("", "", "Mg ", 3.0, 3.0) + NONE]   # unit kept exact


def test_comparator_opens_the_range():
    assert Q.rows([(quantity("5", "mg", comparator="<"), None)], P) == [("", "", "mg", -INF, 5.0) + NONE]
    assert Q.rows([(quantity("5.0", "mg", comparator=">="), None)], P) == [("", "", "mg", 5.0, INF) + NONE]
    assert Q.rows([(quantity("5", "mg", UCUM, "mg", comparator="<"), None)], P) == [
        (UCUM, "mg", "mg", -INF, 5.0, "kilogram", -INF, 5e-6)]
    assert hits("lt5", quantity("5", comparator="<")) and not hits("5", quantity("5", comparator="<"))


def test_ranges_take_the_units_of_the_side_present():
    both = {"low": {"value": 1, "unit": "mg", "system": UCUM, "code": "mg"},
            "high": {"value": loads("2.5"), "unit": "mg", "system": UCUM, "code": "mg"}}
    assert Q.rows([(both, "Range")], P) == [(UCUM, "mg", "mg", 1.0, 2.5, "kilogram", 1e-6, 2.5e-6)]
    assert Q.rows([({"high": {"value": 7, "unit": "d"}}, None)], P) == [("", "", "d", -INF, 7.0) + NONE]
    assert Q.rows([({"low": {"unit": "d"}}, "Range")], P) == []


def test_no_rows_for_other_values_and_duplicates_removed():
    sampled = {"origin": {"value": 2750}, "period": 10, "dimensions": 1, "data": "2 3"}
    values = [(sampled, "SampledData"), (sampled, None), ("5 mg", None), (5, None),
              ({"unit": "mg"}, "Quantity"), ({"value": True}, None), ({"value": "5"}, None),
              (quantity("5", "mg"), "Quantity"), (quantity("5", "mg"), "Quantity")]
    assert Q.rows(values, P) == [("", "", "mg", 5.0, 5.0) + NONE]


# ---- parse ----------------------------------------------------------------------

def test_parse_forms():
    c = q("5.4|http://unitsofmeasure.org|mg")
    assert (c.prefix, c.system, c.code, c.code_or_unit) == ("eq", UCUM, "mg", False)
    assert (c.lo, c.hi) == pytest.approx((5.35, 5.45))
    c = q("5.40e-3|http://unitsofmeasure.org|g")
    assert (c.lo, c.hi) == pytest.approx((0.005395, 0.005405))
    c = q("5.4||mg")
    assert (c.system, c.code, c.code_or_unit) == (None, "mg", True)
    c = q("5.4")
    assert (c.system, c.code) == (None, None)
    assert q("5.4||") == c
    c = q("le5.4|http://unitsofmeasure.org|mg")
    assert (c.prefix, c.lo, c.hi) == ("le", 5.4, 5.4)
    c = q("ap5.4|http://unitsofmeasure.org|mg")
    assert (c.lo, c.hi) == pytest.approx((4.86, 5.94))
    c = q("5.4|urn:x|")
    assert (c.system, c.code) == ("urn:x", None)
    c = q(r"5|http://x\|y|m\$g")
    assert (c.system, c.code) == ("http://x|y", "m$g")


@pytest.mark.parametrize("raw", ["", "mg", "5.4|mg", "|http://unitsofmeasure.org|mg", "5.4|a|b|c",
                                 "gt|a|b", "five||mg", "5,4", "1e999||mg", "5.4mg"])
def test_malformed_quantities_are_rejected(raw):
    with pytest.raises(BadRequest) as e:
        q(raw)
    assert "'value-quantity'" in str(e.value) and repr(raw) in str(e.value)


def test_modifiers_are_rejected():
    with pytest.raises(BadRequest, match="modifier :missing|modifier :text"):
        Q.parse(P, "text", "5.4")


def test_sql_binds_every_value():
    text, args = Q.sql(q("5.4|http://unitsofmeasure.org|[IU]"), "x")
    assert "unitsofmeasure" not in text and "IU" not in text and "5.4" not in text
    assert args[-2:] == [UCUM, "[IU]"]
    text, args = Q.sql(q("5.4|http://unitsofmeasure.org|mg"), "x")
    assert "kilogram" not in text and "5.4" not in text and args == ["kilogram", 5.35e-6, 5.45e-6]


# ---- R4 semantics (search.html#quantity examples) ---------------------------------

def test_system_and_code():
    mg = quantity("5.4", "mg", UCUM, "mg")
    assert hits("5.4|http://unitsofmeasure.org|mg", mg)
    assert not hits("5.4|http://unitsofmeasure.org|g", mg)
    assert not hits("5.4|http://other.org|mg", mg)
    assert not hits("5.4|http://unitsofmeasure.org|mg", quantity("5.4", "mg"))   # no system, no code
    assert hits("5.40e-3|http://unitsofmeasure.org|g", quantity("0.00540", "g", UCUM, "g"))
    # a coarser stored value (0.0054 = [0.00535, 0.00545]) is not inside the finer search range
    assert not hits("5.40e-3|http://unitsofmeasure.org|g", quantity("0.0054", "g", UCUM, "g"))
    assert hits("5.4|http://unitsofmeasure.org|", mg)


def test_code_or_unit_with_any_system():
    assert hits("5.4||mg", quantity("5.4", "milligram", UCUM, "mg"))
    assert hits("5.4||mg", quantity("5.4", "mg"))                    # the human unit
    assert not hits("5.4||mg", quantity("5.4", "g", UCUM, "g"))
    assert hits("5.4", quantity("5.4", "g", UCUM, "g"))              # any unit


def test_value_prefixes():
    assert hits("5.4", quantity("5.4")) and hits("5.4", quantity("5.43")) and not hits("5.4", quantity("5.46"))
    assert hits("le5.4|http://unitsofmeasure.org|mg", quantity("5.3", "mg", UCUM, "mg"))
    assert not hits("le5.4|http://unitsofmeasure.org|mg", quantity("5.5", "mg", UCUM, "mg"))
    assert hits("ap5.4|http://unitsofmeasure.org|mg", quantity("5.0", "mg", UCUM, "mg"))
    assert not hits("ap5.4|http://unitsofmeasure.org|mg", quantity("4.8", "mg", UCUM, "mg"))
    assert hits("gt185", {"value": 186}) and not hits("gt185", {"value": 185}) and hits("ge185", {"value": 185})
    assert hits("ne185", {"value": 186}) and not hits("ne185", {"value": 185})


def test_range_values():
    r = {"low": {"value": 12, "unit": "a"}}   # 12 years and up
    assert hits("gt40||a", r, "Range") and hits("ge12||a", r, "Range") and not hits("lt12||a", r, "Range")
    assert not hits("40||a", r, "Range") and hits("ne40||a", r, "Range") and hits("sa11", r, "Range")
    assert not hits("gt40||d", r, "Range")


# ---- sql() == match() -------------------------------------------------------------

@st.composite
def decimal_texts(draw):
    whole = draw(st.sampled_from(["0", "1", "5", "100"]))
    frac = draw(st.sampled_from(["", ".0", ".4", ".5", ".00"]))
    exp = draw(st.sampled_from(["", "", "e1", "e-1"]))
    return draw(st.sampled_from(["", "-"])) + whole + frac + exp


systems = st.sampled_from([None, UCUM, "urn:x"])
codes = st.sampled_from([None, "mg", "g", "a", "g/dL", "mg/dL", "Cel", "[degF]", "[IU]"])


@st.composite
def quantities(draw):
    out = {"value": loads(draw(decimal_texts()))}
    for key, strategy in (("system", systems), ("code", codes), ("unit", codes)):
        v = draw(strategy)
        if v is not None:
            out[key] = v
    comparator = draw(st.sampled_from([None, None, "<", ">="]))
    if comparator:
        out["comparator"] = comparator
    return out


resource_values = st.one_of(
    quantities().map(lambda v: (v, "Quantity")),
    st.tuples(st.one_of(st.none(), quantities()), st.one_of(st.none(), quantities())).map(
        lambda t: ({k: {kk: vv for kk, vv in v.items() if kk != "comparator"}
                    for k, v in zip(("low", "high"), t) if v is not None}, "Range")),
    st.tuples(decimal_texts(), st.sampled_from(["EUR", "USD"])).map(
        lambda t: ({"value": loads(t[0]), "currency": t[1]}, "Money")),
)


@st.composite
def queries(draw):
    value = draw(st.sampled_from(("",) + Q.ranges.PREFIXES)) + draw(decimal_texts())
    form = draw(st.integers(0, 3))
    if form == 0:
        return value
    system = "" if form == 1 else draw(st.sampled_from([UCUM, "urn:x", "urn:iso:std:iso:4217"]))
    code = draw(st.sampled_from(["", "mg", "g", "a", "EUR", "g/dL", "Cel", "[degF]", "[IU]"])) if form != 3 else ""
    return f"{value}|{system}|{code}"


@settings(max_examples=200, deadline=None)
@given(value=resource_values, query=queries())
def test_sql_agrees_with_match(value, query):
    cond = q(query)
    for row in Q.rows([value], P):
        assert sql_count(cond, row) == int(Q.match(cond, row)), (query, row)
