"""date kind: rows, parse, the R4 prefix rules (search.html#prefix, #date), and
sql() == match() on random rows and conditions."""
from __future__ import annotations

import calendar
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirserver.errors import BadRequest
from fhirserver.jsonio import loads
from fhirserver.search.kinds import date_kind as D

P = SimpleNamespace(code="date")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "data", "hl7-examples")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as f:
        return loads(f.read())


def us(text: str) -> int:
    """An ISO instant (with offset) in microseconds since the epoch."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(microseconds=1)


def q(text: str):
    return D.parse(P, "", text)


def hits(query: str, value, typ=None) -> bool:
    rows = D.rows([(value, typ)], P)
    assert rows, value
    return any(D.match(q(query), r) for r in rows)


def sql_count(cond, row) -> int:
    con = sqlite3.connect(":memory:")
    con.execute(f"CREATE TABLE t({', '.join(c + ' INTEGER' for c in D.COLUMNS)})")
    con.execute("INSERT INTO t VALUES (?, ?)", row)
    text, args = D.sql(cond, "x")
    assert text.count("?") == len(args)
    return con.execute(f"SELECT count(*) FROM t AS x WHERE {text}", args).fetchone()[0]


# ---- rows ---------------------------------------------------------------------

@pytest.mark.parametrize("text, low, high", [
    ("2020", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
    ("2020-02", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z"),          # leap year
    ("2021-02", "2021-02-01T00:00:00Z", "2021-03-01T00:00:00Z"),
    ("2020-12-31", "2020-12-31T00:00:00Z", "2021-01-01T00:00:00Z"),
    ("2020-03-04T10:00Z", "2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z"),
    ("2020-03-04T10:00:00Z", "2020-03-04T10:00:00Z", "2020-03-04T10:00:01Z"),
    ("2020-03-04T10:00:00.5Z", "2020-03-04T10:00:00.500Z", "2020-03-04T10:00:00.600Z"),
    ("2020-03-04T10:00:00.250Z", "2020-03-04T10:00:00.250Z", "2020-03-04T10:00:00.251Z"),
    ("2020-03-04T10:00:00+10:00", "2020-03-04T00:00:00Z", "2020-03-04T00:00:01Z"),
    ("2020-03-04T23:30:00-05:00", "2020-03-05T04:30:00Z", "2020-03-05T04:30:01Z"),
    ("2020-03-04T10:00:00", "2020-03-04T10:00:00Z", "2020-03-04T10:00:01Z"),  # no zone: UTC
    ("1969-12-31", "1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z"),
])
def test_each_precision_is_its_full_range(text, low, high):
    assert D.rows([(text, None)], P) == [(us(low), us(high) - 1)]


def test_sub_microsecond_fraction_is_a_point():
    lo = us("2020-03-04T10:00:00.123456Z")
    assert D.rows([("2020-03-04T10:00:00.123456Z", None)], P) == [(lo, lo)]
    assert D.rows([("2020-03-04T10:00:00.1234567Z", None)], P) == [(lo, lo)]


def test_extreme_years_fit_the_integer_columns():
    (lo, _), = D.rows([("0001", None)], P)
    (_, hi), = D.rows([("9999", None)], P)
    assert D.MIN < lo < hi < D.MAX


def test_rows_from_examples():
    obs = example("Observation-example.json")
    assert D.rows([(obs["effectiveDateTime"], "DateTime")], P) == [
        (us("2016-03-28T00:00:00Z"), us("2016-03-29T00:00:00Z") - 1)]

    enc = example("Encounter-home.json")   # 16:00+10:00 .. 16:30+10:00
    assert D.rows([(enc["period"], None)], P) == [
        (us("2015-01-17T06:00:00Z"), us("2015-01-17T06:30:01Z") - 1)]

    plan = example("CarePlan-preg.json")   # Timing.repeat.boundsPeriod 2013-02-14 .. 2013-02-28
    timings = [(a["detail"]["scheduledTiming"], "Timing") for a in plan["activity"]
               if "scheduledTiming" in a.get("detail", {})]
    rows = D.rows(timings, P)
    assert (us("2013-02-14T00:00:00Z"), us("2013-03-01T00:00:00Z") - 1) in rows

    plain = example("CarePlan-example.json")   # a Timing with no dates at all
    timing = plain["activity"][0]["detail"]["scheduledTiming"]
    assert D.rows([(timing, "Timing")], P) == []


def test_period_open_ends_and_timing_outer_limits():
    assert D.rows([({"start": "2013-01-21"}, "Period")], P) == [(us("2013-01-21T00:00:00Z"), D.MAX)]
    assert D.rows([({"end": "2013-01-21"}, None)], P) == [(D.MIN, us("2013-01-22T00:00:00Z") - 1)]
    assert D.rows([({}, "Period")], P) == []
    timing = {"event": ["2013-05-01", "2013-01-10T10:00:00Z"],
              "repeat": {"boundsPeriod": {"start": "2013-03-01", "end": "2013-06-30"}}}
    assert D.rows([(timing, "Timing")], P) == [(us("2013-01-10T10:00:00Z"), us("2013-07-01T00:00:00Z") - 1)]
    assert D.rows([({"repeat": {"boundsPeriod": {"start": "2013-03-01"}}}, None)], P) == [
        (us("2013-03-01T00:00:00Z"), D.MAX)]


def test_non_dates_give_no_rows_and_rows_are_deduplicated():
    values = [("childhood", "String"), ("2013", "String"), ({"value": 52, "unit": "years"}, "Age"),
              ({"low": {"value": 1}}, "Range"), ("not a date", None), ("2013-02-30", None),
              (42, None), (None, None), ({"start": 5, "end": 6}, None),
              ("2013-01-14", "date"), ("2013-01-14", "DateTime")]
    assert D.rows(values, P) == [(us("2013-01-14T00:00:00Z"), us("2013-01-15T00:00:00Z") - 1)]


# ---- parse ----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "", "ge", "abc", "13-01-14", "2013-13", "2013-00", "2013-02-30", "2013-01-14T10",
    "2013-01-14T24:00", "2013-01-14T10:60", "2013-01-14T10:00:61", "2013-01-14Z",
    "2013-01-14T10:00+15:00", "2013-01-14T10:00:00.Z", "GE2013", "xx2013", "0000",
    "2013-1-14", "2013-01-14 10:00",
])
def test_malformed_dates_are_rejected(raw):
    with pytest.raises(BadRequest) as e:
        q(raw)
    assert "'date'" in str(e.value) and repr(raw) in str(e.value)


def test_modifiers_are_rejected():
    with pytest.raises(BadRequest, match="modifier :exact"):
        D.parse(P, "exact", "2013")


def test_parse_prefixes_and_zones():
    assert q("2013-01-14") == D.DateCmp("eq", us("2013-01-14T00:00:00Z"), us("2013-01-15T00:00:00Z") - 1)
    assert q("ge2013-01-14").prefix == "ge"
    assert q("2013-01-14T10:00:00+05:00").lo == us("2013-01-14T05:00:00Z")
    # '+' decoded to ' ' by a client that did not escape it
    assert q("2013-01-14T10:00:00 05:00") == q("2013-01-14T10:00:00+05:00")
    assert q("2013-01-14T10:00") == q("2013-01-14T10:00Z")   # no zone: UTC


def test_sql_binds_every_value():
    text, args = D.sql(q("ge2013-01-14"), "x")
    assert "2013" not in text and str(args[0]) not in text
    assert args and all(isinstance(a, int) for a in args)


# ---- R4 semantics (search.html#date examples table) -------------------------------

def test_eq_and_ne():
    assert hits("eq2013-01-14", "2013-01-14T00:00:00Z")
    assert hits("eq2013-01-14", "2013-01-14T10:00:00Z")
    assert not hits("eq2013-01-14", "2013-01-15T00:00:00Z")
    assert hits("2013-01-14", "2013-01-14")
    assert not hits("2013-01-14", "2013-01")                  # a month is not inside a day
    assert hits("2013-01", "2013-01-14")
    assert hits("ne2013-01-14", "2013-01-15T00:00:00Z")
    assert not hits("ne2013-01-14", "2013-01-14T00:00:00Z")
    assert not hits("ne2013-01-14", "2013-01-14T10:00:00Z")


def test_lt_gt_against_a_coarser_value():
    assert hits("lt2013-01-14T10:00", "2013-01-14")   # includes the part before 10am
    assert hits("gt2013-01-14T10:00", "2013-01-14")   # includes the part after 10am
    assert not hits("gt2013-01-14", "2013-01-14T23:59:59Z")
    assert hits("gt2013-01-14", "2013-01-15T00:00:00Z")
    assert not hits("lt2013-01-14", "2013-01-14T00:00:00Z")
    assert hits("lt2013-01-14", "2013-01-13T23:59:59Z")


def test_ge_le_sa_eb_on_periods():
    from_jan21 = {"start": "2013-01-21"}
    from_mar15 = {"start": "2013-03-15"}
    until_jan21 = {"end": "2013-01-21"}
    assert hits("ge2013-03-14", from_jan21, "Period")   # may include times after 14-Mar
    assert hits("le2013-03-14", from_jan21, "Period")   # may include times before 14-Mar
    assert hits("sa2013-03-14", from_mar15, "Period")
    assert not hits("sa2013-03-14", from_jan21, "Period")
    assert not hits("sa2013-03-14", until_jan21, "Period")
    assert not hits("eb2013-03-14", from_mar15, "Period")
    assert not hits("eb2013-03-14", from_jan21, "Period")
    assert hits("eb2013-03-14", until_jan21, "Period")
    assert hits("ge2013-03-14", "2013-03-14T10:00:00Z") and hits("le2013-03-14", "2013-03-14T10:00:00Z")
    assert not hits("sa2013-03-14", "2013-03-14T10:00:00Z")
    assert not hits("eb2013-03-14", "2013-03-14T10:00:00Z")


def test_ge_is_gt_or_eq_literally():
    # ends inside the search day, starts before it: neither above it nor contained
    straddle = {"start": "2013-03-13T23:00:00Z", "end": "2013-03-14T01:00:00Z"}
    assert not hits("ge2013-03-14", straddle, "Period")
    assert hits("gt2013-03-13", straddle, "Period")
    assert not hits("le2013-03-13", straddle, "Period")
    assert hits("lt2013-03-14", straddle, "Period")


def test_ap_is_ten_percent_of_the_gap_from_now(monkeypatch):
    monkeypatch.setattr(D, "now_us", lambda: us("2023-03-14T00:00:00Z"))   # gap ~10 years
    assert hits("ap2013-03-14", "2013-03-14")
    assert hits("ap2013-03-14", "2013-01-21")
    assert not hits("ap2013-03-14", "2015-06-15")
    assert not hits("ap2013-03-14", {"start": "2015-06-15"}, "Period")
    assert hits("ap2013-03-14", {"end": "2013-02-01"}, "Period")
    monkeypatch.setattr(D, "now_us", lambda: us("2013-03-14T12:00:00Z"))   # now inside: no margin
    assert q("ap2013-03-14").lo == q("2013-03-14").lo


def test_time_zones_are_compared_in_utc():
    enc = example("Encounter-home.json")["period"]      # 06:00Z .. 06:30Z on 2015-01-17
    assert hits("2015-01-17", enc, "Period")
    assert hits("ge2015-01-17T16:00:00+10:00", enc, "Period")
    assert not hits("gt2015-01-17T16:30:00+10:00", enc, "Period")
    assert hits("lt2015-01-17T07:00:00Z", enc, "Period")
    assert not hits("lt2015-01-17T06:00:00Z", enc, "Period")


# ---- sql() == match() -------------------------------------------------------------

@st.composite
def date_texts(draw):
    year = draw(st.sampled_from([1, 2012, 2013, 2013, 2014, 9999]))
    s = f"{year:04d}"
    precision = draw(st.integers(1, 6))
    if precision >= 2:
        month = draw(st.sampled_from([1, 2, 3, 12]))
        s += f"-{month:02d}"
    if precision >= 3:
        s += f"-{draw(st.sampled_from([1, 14, calendar.monthrange(year, month)[1]])):02d}"
    if precision >= 4:
        s += f"T{draw(st.sampled_from([0, 10, 23])):02d}:{draw(st.sampled_from([0, 30, 59])):02d}"
        if precision >= 5:
            s += f":{draw(st.sampled_from([0, 59])):02d}"
            if draw(st.booleans()):
                s += "." + draw(st.text("05", min_size=1, max_size=7))
        s += draw(st.sampled_from(["", "Z", "+10:00", "-05:30", "+00:00"]))
    return s


resource_values = st.one_of(
    date_texts().map(lambda s: (s, None)),
    st.fixed_dictionaries({}, optional={"start": date_texts(), "end": date_texts()}).map(lambda p: (p, "Period")),
    st.tuples(st.lists(date_texts(), max_size=3), st.one_of(st.none(), date_texts())).map(
        lambda t: ({"event": t[0], "repeat": {"boundsPeriod": {"start": t[1]} if t[1] else {}}}, "Timing")),
)
queries = st.tuples(st.sampled_from(("",) + D.ranges.PREFIXES), date_texts()).map("".join)


@settings(max_examples=200, deadline=None)
@given(value=resource_values, query=queries)
def test_sql_agrees_with_match(value, query):
    cond = q(query)
    for row in D.rows([value], P):
        assert sql_count(cond, row) == int(D.match(cond, row)), (query, row)


@settings(max_examples=100, deadline=None)
@given(low=st.integers(D.MIN, D.MAX), width=st.integers(0, 10 ** 12), query=queries)
def test_sql_agrees_with_match_on_arbitrary_ranges(low, width, query):
    row = (low, min(low + width, D.MAX))
    cond = q(query)
    assert sql_count(cond, row) == int(D.match(cond, row))
