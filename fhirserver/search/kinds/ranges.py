"""Prefixes and implicit ranges shared by the ordered kinds: number, date, quantity
(http://hl7.org/fhir/R4/search.html#prefix).

Every index row is a closed range [low, high] and every search value a closed range
[lo, hi] (its implicit range, R4 #prefix "range of the value"). "The range above the
search value" is read as (hi, +inf) and "the range below" as (-inf, lo), so that
gt/lt keep their simple intent ("greater/less than the provided value"); the R4
table's second column is then applied literally, row by row:

    eq  [lo,hi] fully contains the row:        lo <= low AND high <= hi
    ne  not eq:                                NOT (lo <= low AND high <= hi)
    gt  (hi,+inf) overlaps the row:            high > hi
    lt  (-inf,lo) overlaps the row:            low < lo
    ge  gt, or eq:                             high > hi OR (lo <= low AND high <= hi)
    le  lt, or eq:                             low < lo OR (lo <= low AND high <= hi)
    sa  no overlap, row inside (hi,+inf):      low > hi
    eb  no overlap, row inside (-inf,lo):      high < lo
    ap  [lo,hi] (already widened by the kind) overlaps the row:  low <= hi AND high >= lo

Each kind decides [lo, hi] per prefix: numbers and quantities use the exact value for
gt/lt/ge/le/sa/eb (R4 #number: "the implicit precision of the number is ignored")
and widen it for ap; dates always use the precision range and widen it for ap.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation, localcontext

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
EXACT_PREFIXES = frozenset({"gt", "lt", "ge", "le", "sa", "eb"})

INF = float("inf")


def split_prefix(raw: str) -> tuple[str, str]:
    """'ge2013' -> ('ge', '2013'); no prefix means eq (R4 #prefix)."""
    if len(raw) > 2 and raw[:2] in PREFIXES:
        return raw[:2], raw[2:]
    return "eq", raw


def sql(prefix: str, lo, hi, a: str, low: str = "low", high: str = "high") -> tuple[str, list]:
    """The rule table above over {a}.{low}/{a}.{high}; every value a bound parameter."""
    L, H = f"{a}.{low}", f"{a}.{high}"
    inside = f"({L} >= ? AND {H} <= ?)"
    if prefix == "eq":
        return inside, [lo, hi]
    if prefix == "ne":
        return f"(NOT {inside})", [lo, hi]
    if prefix == "gt":
        return f"({H} > ?)", [hi]
    if prefix == "lt":
        return f"({L} < ?)", [lo]
    if prefix == "ge":
        return f"({H} > ? OR {inside})", [hi, lo, hi]
    if prefix == "le":
        return f"({L} < ? OR {inside})", [lo, lo, hi]
    if prefix == "sa":
        return f"({L} > ?)", [hi]
    if prefix == "eb":
        return f"({H} < ?)", [lo]
    if prefix == "ap":
        return f"({L} <= ? AND {H} >= ?)", [hi, lo]
    raise ValueError(prefix)


def match(prefix: str, lo, hi, low, high) -> bool:
    """The same rules in Python (must agree with sql())."""
    inside = lo <= low and high <= hi
    if prefix == "eq":
        return inside
    if prefix == "ne":
        return not inside
    if prefix == "gt":
        return high > hi
    if prefix == "lt":
        return low < lo
    if prefix == "ge":
        return high > hi or inside
    if prefix == "le":
        return low < lo or inside
    if prefix == "sa":
        return low > hi
    if prefix == "eb":
        return high < lo
    if prefix == "ap":
        return low <= hi and high >= lo
    raise ValueError(prefix)



def sort_bound(prefix: str, lo, hi, descending: bool) -> tuple[str, object] | None:
    """How far a sorted walk must go: a bound (operator, value) that every index row satisfying
    the rule table above meets on the column it is sorted by (low when ascending, high when
    descending), or None. Only for rows with low <= high. A resource sorts at its smallest low
    (largest high), which is at most (at least) the matching row's, so this bounds where the walk
    may STOP, never where it starts: a row [low, high] straddling the value (ge: high > hi with any
    low) or a second row of the same resource can match and sort before the value.

        ascending (low):   eq, le, ap  low <= hi     lt, eb  low < lo      gt ge sa ne  none
        descending (high): eq, ge, ap  high >= lo    gt, sa  high > hi     lt le eb ne  none
    """
    if descending:
        return (">=", lo) if prefix in ("eq", "ge", "ap") else (">", hi) if prefix in ("gt", "sa") else None
    return ("<=", hi) if prefix in ("eq", "le", "ap") else ("<", lo) if prefix in ("lt", "eb") else None

# ---- decimals (number and quantity) -------------------------------------------

# FHIR decimal (datatypes.html#decimal) plus an optional leading '+'.
_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")


def parse_decimal(text: str) -> Decimal | None:
    """A finite decimal whose bounds fit a float, or None."""
    if not _DECIMAL.fullmatch(text):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if abs(d.adjusted()) > 300:   # keeps every bound a finite, normal float
        return None
    return d


def _half_unit(d: Decimal) -> Decimal:
    """Half a unit of the last significant digit: 100 -> 0.5, 1.50 -> 0.005, 1e2 -> 50
    (R4 #number: significant figures are the digits written, so 1.00e2 has three)."""
    return Decimal((0, (5,), d.as_tuple().exponent - 1))


def _widen(d: Decimal, by: Decimal) -> tuple[float, float]:
    with localcontext() as ctx:
        ctx.prec = len(d.as_tuple().digits) + 10
        return float(d - by), float(d + by)


def implicit_range(d: Decimal) -> tuple[float, float]:
    """R4 #number: 100 -> [99.5, 100.5], 100.00 -> [99.995, 100.005], 1e2 -> [50, 150].
    Closed at both ends (R4 writes [99.5 ... 100.5)); only exact values exactly on a
    boundary can tell the difference."""
    return _widen(d, _half_unit(d))


def search_range(prefix: str, d: Decimal) -> tuple[float, float]:
    """[lo, hi] of a number/quantity search value for `prefix` (R4 #number, #prefix)."""
    if prefix in EXACT_PREFIXES:   # "the implicit precision of the number is ignored"
        v = float(d)
        return v, v
    if prefix == "ap":             # "10% of the stated value", never narrower than its precision
        with localcontext() as ctx:
            ctx.prec = len(d.as_tuple().digits) + 10
            return _widen(d, max(abs(d) / 10, _half_unit(d)))
    return implicit_range(d)


def value_range(value) -> tuple[float, float] | None:
    """[low, high] of a number found in a resource.

    A JSON integer is exact, [v, v]: FHIR integer/positiveInt/unsignedInt have no
    precision, and R4 #number says integer matches are exact ('2' and '2.0' find 2,
    '2.5' finds nothing). A decimal element written without a fraction ("value": 100)
    arrives as the same int and is treated the same way. A decimal with a fraction or
    exponent (FhirDecimal, source text kept) gets its implicit range: 1.50 ->
    [1.495, 1.505], 1e2 -> [50, 150]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        v = exact_value(value)
        return None if v is None else (v, v)
    if not math.isfinite(value):
        return None
    d = parse_decimal(getattr(value, "text", None) or repr(float(value)))
    return implicit_range(d) if d is not None else None


def exact_value(value) -> float | None:
    """A Range bound: inclusive and of arbitrarily high precision (R4 datatypes.html#Range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        v = float(value)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None
