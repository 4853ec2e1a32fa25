"""number (http://hl7.org/fhir/R4/search.html#number): rows are (low, high) REAL.

A decimal in a resource is indexed as its implicit range (1.50 -> [1.495, 1.505]),
an integer as the exact point [v, v], a Range (RiskAssessment.prediction.probability)
as [low.value, high.value] with -inf/+inf for a missing end. The prefix rules are in
ranges.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import BadRequest
from ..parse_util import unescape
from . import ranges
from .ranges import INF

SORT_COLUMNS = {"asc": "low", "desc": "high"}   # _sort: ascending by the start, descending by the end
COLUMNS = ("low", "high")
LOOKUP = [("low", "rid"), ("high", "rid DESC")]   # store indexes: (param, *cols)


@dataclass(frozen=True)
class NumberCmp:
    prefix: str
    lo: float       # the search range for this prefix (ranges.search_range)
    hi: float


def rows(values, param) -> list[tuple]:
    out = []
    for value, typ in values:
        if isinstance(value, dict):
            r = range_row(value) if (typ or "Range").lower() == "range" else None
        else:
            r = ranges.value_range(value)
        if r is not None:
            out.append(r)
    return list(dict.fromkeys(out))


def range_row(value: dict) -> tuple[float, float] | None:
    """A Range {low, high}: [low.value, high.value], inclusive (datatypes.html#Range);
    a missing end is open (-inf / +inf); no values at all: no row."""
    low, high = value.get("low"), value.get("high")
    lo = ranges.exact_value(low.get("value")) if isinstance(low, dict) else None
    hi = ranges.exact_value(high.get("value")) if isinstance(high, dict) else None
    if lo is None and hi is None:
        return None
    return (-INF if lo is None else lo, INF if hi is None else hi)


def parse(param, modifier: str, raw: str) -> NumberCmp:
    if modifier:
        raise BadRequest(f"Unknown modifier :{modifier} for number parameter '{param.code}'")
    prefix, text = ranges.split_prefix(unescape(raw))
    d = ranges.parse_decimal(text)
    if d is None:
        raise BadRequest(f"Invalid number {raw!r} for '{param.code}': use [prefix]number, "
                         f"prefix one of {', '.join(ranges.PREFIXES)}")
    return NumberCmp(prefix, *ranges.search_range(prefix, d))


def sql(cond: NumberCmp, a: str):
    return ranges.sql(cond.prefix, cond.lo, cond.hi, a)


def match(cond: NumberCmp, row) -> bool:
    low, high = row
    return ranges.match(cond.prefix, cond.lo, cond.hi, low, high)


def mongo_range(prefix: str, lo, hi, low: str = "low", high: str = "high") -> dict:
    """ranges.match() (the rule table in ranges.py) as a MongoDB filter over the fields
    low/high, which always hold numbers (never null; -inf/+inf for open ends). ne is
    NOT (lo <= low AND high <= hi) spelled as low < lo OR high > hi (no NaN in rows)."""
    inside = {low: {"$gte": lo}, high: {"$lte": hi}}
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return {"$or": [{low: {"$lt": lo}}, {high: {"$gt": hi}}]}
    if prefix == "gt":
        return {high: {"$gt": hi}}
    if prefix == "lt":
        return {low: {"$lt": lo}}
    if prefix == "ge":
        return {"$or": [{high: {"$gt": hi}}, inside]}
    if prefix == "le":
        return {"$or": [{low: {"$lt": lo}}, inside]}
    if prefix == "sa":
        return {low: {"$gt": hi}}
    if prefix == "eb":
        return {high: {"$lt": lo}}
    if prefix == "ap":
        return {low: {"$lte": hi}, high: {"$gte": lo}}
    raise ValueError(prefix)


def mongo(cond: NumberCmp) -> dict:
    """match() as a MongoDB filter on one index element (fields low, high)."""
    return mongo_range(cond.prefix, cond.lo, cond.hi)
