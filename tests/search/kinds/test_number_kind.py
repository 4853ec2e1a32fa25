"""number kind: rows, parse, the R4 prefix rules (search.html#prefix, #number), and
sql() == match() on random rows and conditions."""
from __future__ import annotations

import os
import sqlite3
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirserver.errors import BadRequest
from fhirserver.jsonio import FhirDecimal, loads
from fhirserver.search.kinds import number_kind as N

P = SimpleNamespace(code="probability")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "data", "hl7-examples")
INF = float("inf")


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as f:
        return loads(f.read())


def num(text: str):
    """A number as the JSON reader delivers it."""
    return loads(text)


def q(text: str):
    return N.parse(P, "", text)


def hits(query: str, value, typ=None) -> bool:
    rows = N.rows([(value, typ)], P)
    assert rows, value
    return any(N.match(q(query), r) for r in rows)


def sql_count(cond, row) -> int:
    con = sqlite3.connect(":memory:")
    con.execute(f"CREATE TABLE t({', '.join(c + ' REAL' for c in N.COLUMNS)})")
    con.execute("INSERT INTO t VALUES (?, ?)", row)
    text, args = N.sql(cond, "x")
    assert text.count("?") == len(args)
    return con.execute(f"SELECT count(*) FROM t AS x WHERE {text}", args).fetchone()[0]


def close(pair, lo, hi):
    return pair[0] == pytest.approx(lo, abs=1e-12) and pair[1] == pytest.approx(hi, abs=1e-12)


# ---- rows ---------------------------------------------------------------------

@pytest.mark.parametrize("text, lo, hi", [
    ("1.50", 1.495, 1.505),
    ("1.5", 1.45, 1.55),
    ("100.00", 99.995, 100.005),
    ("1e2", 50, 150),           # one significant figure
    ("1.00e2", 99.5, 100.5),    # three, like 100
    ("-0.05", -0.055, -0.045),
    ("0.000168", 0.0001675, 0.0001685),
    ("5.40e-3", 0.005395, 0.005405),
])
def test_decimals_index_their_implicit_range(text, lo, hi):
    (row,) = N.rows([(num(text), "decimal")], P)
    assert close(row, lo, hi)


def test_integers_are_exact():
    assert N.rows([(num("100"), None), (2, "positiveInt"), (0, None)], P) == [(100.0, 100.0), (2.0, 2.0), (0.0, 0.0)]
    # a decimal carrying the text "100" (not produced by the JSON reader) keeps 3 significant figures
    assert N.rows([(FhirDecimal("100"), None)], P) == [(99.5, 100.5)]


def test_rows_from_examples():
    risk = example("RiskAssessment-genetic.json")
    values = [(p["probabilityDecimal"], "Decimal") for p in risk["prediction"]]
    rows = N.rows(values, P)
    assert len(rows) == len(values) and close(rows[0], 0.0001675, 0.0001685)
    seq = {"variant": [{"start": 128, "end": 129}]}   # MolecularSequence.variant.start (integer)
    assert N.rows([(seq["variant"][0]["start"], None)], P) == [(128.0, 128.0)]


def test_ranges_and_non_numbers():
    assert N.rows([({"low": {"value": num("0.1")}, "high": {"value": num("0.25")}}, "Range")], P) == [(0.1, 0.25)]
    assert N.rows([({"low": {"value": 5}}, "Range")], P) == [(5.0, INF)]
    assert N.rows([({"high": {"value": 5}}, None)], P) == [(-INF, 5.0)]
    assert N.rows([({"low": {"unit": "a"}}, "Range"), (True, None), ("12", None), (None, None),
                   ({"value": 3}, "Quantity"), (num("1.0"), None), (num("1.0"), None)], P) == [(0.95, 1.05)]


# ---- parse ----------------------------------------------------------------------

@pytest.mark.parametrize("raw, lo, hi", [
    ("100", 99.5, 100.5),
    ("100.00", 99.995, 100.005),
    ("1e2", 50, 150),
    ("1.00e2", 99.5, 100.5),
    ("eq100", 99.5, 100.5),
    ("ne100", 99.5, 100.5),
    ("gt100", 100, 100), ("lt100", 100, 100), ("ge100", 100, 100), ("le100", 100, 100),
    ("sa100", 100, 100), ("eb100", 100, 100),   # precision ignored for these (R4 #number)
    ("ap100", 90, 110),
    ("ap-100", -110, -90),
    ("ap0", -0.5, 0.5),                           # never narrower than the value's precision
    ("gt8e-1", 0.8, 0.8),
    ("+5", 4.5, 5.5),
])
def test_search_ranges(raw, lo, hi):
    cond = q(raw)
    assert close((cond.lo, cond.hi), lo, hi)


@pytest.mark.parametrize("raw", ["", "gt", "abc", "100.", ".5", "1e", "1,5", "GT100", "zz100",
                                 "1e999", "1e-999", "0x10", "1 0", "NaN", "inf", "100mg"])
def test_malformed_numbers_are_rejected(raw):
    with pytest.raises(BadRequest) as e:
        q(raw)
    assert "'probability'" in str(e.value) and repr(raw) in str(e.value)


def test_modifiers_are_rejected():
    with pytest.raises(BadRequest, match="modifier :exact"):
        N.parse(P, "exact", "100")


# ---- R4 semantics (search.html#number examples) ------------------------------------

def test_eq_uses_the_implicit_range():
    assert hits("100", 100) and hits("100", num("100.4")) and hits("100", num("99.6"))
    assert not hits("100", num("100.5")) and not hits("100", 101)
    assert hits("100.00", 100) and not hits("100.00", num("100.01"))
    assert hits("1e2", 140) and not hits("1e2", 151)
    assert not hits("100.00", num("100.0"))   # [99.95,100.05] is not inside [99.995,100.005]


def test_integers_match_exactly():
    # "the significance issues cancel out": 2 and 2.0 find 2; 2.5 finds no integer
    assert hits("2", 2) and hits("2.0", 2) and not hits("2", 3)
    assert not hits("2.5", 2) and not hits("2.5", 3)


def test_comparisons_are_against_the_exact_value():
    assert hits("lt100", 99) and not hits("lt100", 100)
    assert hits("le100", 100) and not hits("le100", 101)
    assert hits("gt100", 101) and not hits("gt100", 100)
    assert hits("ge100", 100) and not hits("ge100", 99)
    assert hits("ne100", 101) and not hits("ne100", 100)
    assert hits("sa100", 101) and not hits("sa100", 100)
    assert hits("eb100", 99) and not hits("eb100", 100)
    assert hits("gt0.8", num("0.9")) and hits("gt8e-1", num("0.9")) and not hits("gt0.8", num("0.7"))


def test_a_decimal_is_a_range_for_comparisons_too():
    # 100.0 stands for [99.95, 100.05], which reaches above and below exactly 100
    assert hits("gt100", num("100.0")) and hits("lt100", num("100.0"))
    assert not hits("sa100", num("100.0")) and not hits("eb100", num("100.0"))


def test_ranges():
    r = {"low": {"value": num("1.5")}, "high": {"value": num("2.5")}}
    assert hits("2", r, "Range") and not hits("2.0", r, "Range")
    assert hits("gt2", r, "Range") and hits("lt2", r, "Range")
    assert not hits("gt2.5", r, "Range") and not hits("sa1.5", r, "Range") and hits("sa1.4", r, "Range")
    assert hits("ap2.7", r, "Range") and not hits("ap3.0", r, "Range") and hits("ap3", r, "Range")
    assert hits("gt1000", {"low": {"value": 5}}, "Range") and not hits("lt5", {"low": {"value": 5}}, "Range")


def test_ap_is_ten_percent():
    assert hits("ap100", 90) and hits("ap100", 110) and not hits("ap100", 111)
    assert hits("ap100", num("90.0")) and not hits("ap100", num("89.9"))


def test_infinite_ends_in_sqlite():
    for query in ("100", "ne100", "gt100", "lt100", "ge100", "le100", "sa100", "eb100", "ap100"):
        for row in [(-INF, INF), (-INF, 5.0), (5.0, INF)]:
            assert sql_count(q(query), row) == int(N.match(q(query), row))


# ---- sql() == match() -------------------------------------------------------------

@st.composite
def decimal_texts(draw):
    whole = draw(st.sampled_from(["0", "1", "2", "5", "99", "100", "101", "150"]))
    sign = draw(st.sampled_from(["", "", "-"]))
    frac = draw(st.sampled_from(["", ".0", ".5", ".4", ".00", ".05", ".995"]))
    exp = draw(st.sampled_from(["", "", "e0", "e2", "e-1", "E1"]))
    return sign + whole + frac + exp


resource_values = st.one_of(
    st.integers(-3, 200).map(lambda v: (v, None)),
    decimal_texts().filter(lambda s: "." in s or "e" in s.lower()).map(lambda s: (num(s), "decimal")),
    st.tuples(st.one_of(st.none(), decimal_texts()), st.one_of(st.none(), decimal_texts())).map(
        lambda t: ({k: {"value": num(v)} for k, v in zip(("low", "high"), t) if v is not None}, "Range")),
)
queries = st.tuples(st.sampled_from(("",) + N.ranges.PREFIXES), decimal_texts()).map("".join)


@settings(max_examples=200, deadline=None)
@given(value=resource_values, query=queries)
def test_sql_agrees_with_match(value, query):
    cond = q(query)
    for row in N.rows([value], P):
        assert sql_count(cond, row) == int(N.match(cond, row)), (query, row)
