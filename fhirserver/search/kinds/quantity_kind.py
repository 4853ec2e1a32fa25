"""quantity (http://hl7.org/fhir/R4/search.html#quantity): rows are
(system, code, unit, low, high, canon, clow, chigh); system/code/unit exact, "" when absent.

Quantity, Age, Duration, Distance, Count, SimpleQuantity: value as for number
(a decimal's implicit range, an integer exactly). Money {value, currency}: system
urn:iso:std:iso:4217, code the currency. Range {low, high}: one row
[low.value, high.value], open ends -inf/+inf, with the units of the side present.
SampledData and anything else: no row.

UCUM canonical units (R4 #quantity: "search using canonical units"): a row whose system is UCUM
and whose code search/ucum.py can reduce also holds that canonical unit and [low, high] in it
(canon, clow, chigh; "", None, None otherwise). A query value with system UCUM and such a code is
compared in canonical units (gt1|UCUM|g/dL finds 1500 mg/dL; 5.4|UCUM|mg finds 0.0054 g, its
precision range converted with it); any other query value, and a UCUM code that cannot be reduced
([IU], [pH], a typo), matches units as written.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import BadRequest
from ..parse_util import split_unescaped, unescape
from ..ucum import UCUM, canonical
from . import ranges
from .number_kind import mongo_range, range_row
from .ranges import INF

SORT_COLUMNS = {"asc": "low", "desc": "high"}   # _sort: ascending by the start, descending by the end
COLUMNS = ("system", "code", "unit", "low", "high", "canon", "clow", "chigh")
LOOKUP = [("code", "low"), ("canon", "clow"), ("low", "rid"), ("high", "rid DESC")]   # (param, *cols)
MONEY_SYSTEM = "urn:iso:std:iso:4217"
NO_ROWS = ("sampleddata",)     # casts to these types never give a row (composite layout: search/extract.py)


@dataclass(frozen=True)
class QuantityCmp:
    prefix: str
    lo: float               # the search range for this prefix (ranges.search_range)
    hi: float
    system: str | None      # None: any system
    code: str | None        # None: any unit
    code_or_unit: bool      # [number]||[code]: the code or the human unit is [code]
    canon: str | None = None    # compared in this canonical UCUM unit over [clo, chi] instead
    clo: float = 0.0
    chi: float = 0.0


def rows(values, param) -> list[tuple]:
    out = []
    for value, typ in values:
        if not isinstance(value, dict):
            continue
        t = (typ or "").lower()
        if t == "sampleddata" or "origin" in value:
            continue
        if t == "range" or ("value" not in value and ("low" in value or "high" in value)):
            r = range_row(value)
            if r is not None:
                out.append(_canonical(_units(_range_side(value)), r))
        elif t == "money" or ("currency" in value and "value" in value and "code" not in value):
            r = ranges.value_range(value.get("value"))
            if r is not None:
                cur = value.get("currency")
                out.append((MONEY_SYSTEM, cur if isinstance(cur, str) else "", "") + r + _NO_CANON)
        elif "value" in value:
            r = _with_comparator(ranges.value_range(value["value"]), value)
            if r is not None:
                out.append(_canonical(_units(value), r))
    return list(dict.fromkeys(out))


_NO_CANON = ("", None, None)


def _canonical(units: tuple[str, str, str], r: tuple[float, float]) -> tuple:
    """The row: units, range, and the range in canonical units when the code is a reducible UCUM code."""
    return units + r + canonical_columns(units[0], units[1], *r)


def canonical_columns(system: str, code: str, low: float, high: float) -> tuple:
    """(canon, clow, chigh) of a row, from its own columns alone (so a store can fill them in place)."""
    c = canonical(code) if system == UCUM else None
    return _NO_CANON if c is None else (c.unit, c.value(low), c.value(high))


def _units(q: dict) -> tuple[str, str, str]:
    def s(key):
        v = q.get(key)
        return v if isinstance(v, str) else ""
    return s("system"), s("code"), s("unit")


def _range_side(value: dict) -> dict:
    """The units of a Range come from whichever side is present (low first)."""
    for side in (value.get("low"), value.get("high")):
        if isinstance(side, dict) and side:
            return side
    return {}


def _with_comparator(r, q: dict):
    """Quantity.comparator says where the real value lies (datatypes.html#Quantity):
    '<5' is indexed as [-inf, 5], '>=5' as [5, +inf] (bounds at the stated value)."""
    if r is None:
        return None
    comparator = q.get("comparator")
    if comparator in ("<", "<="):
        return (-INF, ranges.exact_value(q["value"]))
    if comparator in (">", ">="):
        return (ranges.exact_value(q["value"]), INF)
    return r


def parse(param, modifier: str, raw: str) -> QuantityCmp:
    """[prefix][number]|[system]|[code] (R4 #quantity); the |system|code part is optional.
    system|code: exact system and code; ||code: code or unit, any system;
    system|: any code of that system; number alone: any unit."""
    if modifier:
        raise BadRequest(f"Unknown modifier :{modifier} for quantity parameter '{param.code}'")
    parts = split_unescaped(raw, "|")
    if len(parts) not in (1, 3):
        raise BadRequest(f"Invalid quantity {raw!r} for '{param.code}': use "
                         f"[prefix][number] or [prefix][number]|[system]|[code]")
    prefix, text = ranges.split_prefix(unescape(parts[0]))
    d = ranges.parse_decimal(text)
    if d is None:
        raise BadRequest(f"Invalid quantity {raw!r} for '{param.code}': {text!r} is not a number "
                         f"(use [prefix][number]|[system]|[code], prefix one of {', '.join(ranges.PREFIXES)})")
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    lo, hi = ranges.search_range(prefix, d)
    c = canonical(code) if system == UCUM and code is not None else None
    if c is not None:
        return QuantityCmp(prefix, lo, hi, system, code, False, c.unit, c.value(lo), c.value(hi))
    return QuantityCmp(prefix, lo, hi, system, code, system is None and code is not None)


def sql(cond: QuantityCmp, a: str):
    if cond.canon is not None:
        text, args = ranges.sql(cond.prefix, cond.clo, cond.chi, a, "clow", "chigh")
        return f"({a}.canon = ? AND {text})", [cond.canon] + args
    text, args = ranges.sql(cond.prefix, cond.lo, cond.hi, a)
    parts = [text]
    if cond.system is not None:
        parts.append(f"{a}.system = ?")
        args.append(cond.system)
    if cond.code is not None:
        parts.append(f"({a}.code = ? OR {a}.unit = ?)" if cond.code_or_unit else f"{a}.code = ?")
        args += [cond.code, cond.code] if cond.code_or_unit else [cond.code]
    return "(" + " AND ".join(parts) + ")", args


def match(cond: QuantityCmp, row) -> bool:
    system, code, unit, low, high, canon, clow, chigh = row
    if cond.canon is not None:
        return canon == cond.canon and ranges.match(cond.prefix, cond.clo, cond.chi, clow, chigh)
    if cond.system is not None and system != cond.system:
        return False
    if cond.code is not None and code != cond.code and not (cond.code_or_unit and unit == cond.code):
        return False
    return ranges.match(cond.prefix, cond.lo, cond.hi, low, high)


def mongo(cond: QuantityCmp) -> dict:
    """match() as a MongoDB filter on one index element (fields system, code, unit, low, high;
    the units are strings, "" when absent, so $eq never meets a null; canon is "" in a row without
    canonical bounds, so those are never compared)."""
    if cond.canon is not None:
        return {"canon": {"$eq": cond.canon},
                **mongo_range(cond.prefix, cond.clo, cond.chi, "clow", "chigh")}
    parts = [mongo_range(cond.prefix, cond.lo, cond.hi)]
    if cond.system is not None:
        parts.append({"system": {"$eq": cond.system}})
    if cond.code is not None:
        parts.append({"$or": [{"code": {"$eq": cond.code}}, {"unit": {"$eq": cond.code}}]} if cond.code_or_unit
                     else {"code": {"$eq": cond.code}})
    merged: dict = {}
    for part in parts:
        if merged.keys() & part.keys():     # two $or: keep them apart
            return {"$and": parts}
        merged.update(part)
    return merged
