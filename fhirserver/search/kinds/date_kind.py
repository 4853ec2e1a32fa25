"""date (http://hl7.org/fhir/R4/search.html#date): rows are (low, high), INTEGER
microseconds since 1970-01-01T00:00:00Z, both inclusive; an open end of a Period is
MIN / MAX (never NULL).

Every value is a range at its stated precision (R4 #date): 2020 is the whole year,
2020-03-04T10:00Z that minute, 10:00:00Z that second, 10:00:00.5Z that tenth of a
second (instants included: the second-wide range of an instant without fraction only
matters to queries finer than a second). Period: [start, end] at their precisions.
Timing: the outer limits of its events and repeat.boundsPeriod ("scheduling details
are ignored", R4 #date). Time zones: a value with an offset is converted to UTC; a
time without one, and every date without a time, is taken as UTC (R4 would have the
server's local zone; UTC keeps results independent of where the server runs).
"""
from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from datetime import date

from ...errors import BadRequest
from ..parse_util import unescape
from . import ranges
from .number_kind import mongo_range

SORT_COLUMNS = {"asc": "low", "desc": "high"}   # _sort: ascending by the start, descending by the end
COLUMNS = ("low", "high")
LOOKUP = [("low", "rid"), ("high", "rid DESC")]   # store indexes: (param, *cols)
MIN, MAX = -(2 ** 62), 2 ** 62

_US_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1).toordinal()
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")
# "+05:00" decoded from an unescaped URL arrives as " 05:00".
_SPACE_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$")


@dataclass(frozen=True)
class DateCmp:
    prefix: str
    lo: int         # the search range in microseconds (widened for ap)
    hi: int


def now_us() -> int:
    """The current time; a module function so tests can pin it."""
    return time.time_ns() // 1000


def _days(y: int, m: int, d: int) -> int:
    return date(y, m, d).toordinal() - _EPOCH


def date_range(text: str) -> tuple[int, int]:
    """[low, high] of a FHIR date, dateTime or instant, in UTC microseconds.
    Raises ValueError when `text` is not one."""
    m = _DATE.fullmatch(text)
    if not m:
        raise ValueError(text)
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    year = int(y)
    if mo is None:
        lo = _days(year, 1, 1) * _US_PER_DAY
        return lo, (_days(year, 12, 31) + 1) * _US_PER_DAY - 1
    month = int(mo)
    if not 1 <= month <= 12:
        raise ValueError(text)
    if d is None:
        lo = _days(year, month, 1) * _US_PER_DAY
        return lo, (_days(year, month, calendar.monthrange(year, month)[1]) + 1) * _US_PER_DAY - 1
    day = _days(year, month, int(d)) * _US_PER_DAY        # ValueError for 2013-02-30
    if hh is None:
        return day, day + _US_PER_DAY - 1
    hour, minute = int(hh), int(mi)
    second = min(int(ss), 59) if ss is not None else 0   # a leap second :60 counts as :59
    if hour > 23 or minute > 59 or (ss is not None and int(ss) > 60):
        raise ValueError(text)
    if ss is None:
        width = 60_000_000
    elif frac is None:
        width = 1_000_000
    else:
        width = 10 ** max(0, 6 - len(frac))               # finer than 1 µs: a point
    offset = 0
    if tz and tz != "Z":
        oh, om = int(tz[1:3]), int(tz[4:6])
        if oh > 14 or om > 59:
            raise ValueError(text)
        offset = (1 if tz[0] == "+" else -1) * (oh * 60 + om) * 60_000_000
    lo = (day + (hour * 3600 + minute * 60 + second) * 1_000_000
          + (int(frac[:6].ljust(6, "0")) if frac else 0) - offset)
    return lo, lo + width - 1


def _try_range(value) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    try:
        return date_range(value)
    except ValueError:
        return None


def _period(p: dict) -> tuple[int, int] | None:
    start, end = _try_range(p.get("start")), _try_range(p.get("end"))
    if start is None and end is None:
        return None
    lo = start[0] if start else MIN
    hi = end[1] if end else MAX
    if start and end:               # a reversed Period still covers both instants
        lo, hi = min(lo, end[0]), max(hi, start[1])
    return lo, hi


def _timing(t: dict) -> tuple[int, int] | None:
    """Outer limits of Timing.event and Timing.repeat.boundsPeriod (R4 #date)."""
    found = [r for r in map(_try_range, t.get("event") or ()) if r]
    repeat = t.get("repeat")
    bounds = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
    if isinstance(bounds, dict) and (b := _period(bounds)):
        found.append(b)
    if not found:
        return None
    return min(r[0] for r in found), max(r[1] for r in found)


_STRING_TYPES = {"", "date", "datetime", "instant"}


def rows(values, param) -> list[tuple]:
    out = []
    for value, typ in values:
        t = (typ or "").lower()
        r = None
        if isinstance(value, str):
            r = _try_range(value) if t in _STRING_TYPES else None
        elif isinstance(value, dict):
            if t == "timing" or (not t and ("event" in value or "repeat" in value)):
                r = _timing(value)
            elif t == "period" or (not t and ("start" in value or "end" in value)):
                r = _period(value)
        if r is not None:
            out.append(r)
    return list(dict.fromkeys(out))


def parse(param, modifier: str, raw: str) -> DateCmp:
    if modifier:
        raise BadRequest(f"Unknown modifier :{modifier} for date parameter '{param.code}'")
    prefix, text = ranges.split_prefix(unescape(raw))
    try:
        lo, hi = date_range(_SPACE_OFFSET.sub(r"\1+\2", text))
    except ValueError:
        raise BadRequest(f"Invalid date {raw!r} for '{param.code}': use [prefix]yyyy[-mm[-dd"
                         f"[Thh:mm[:ss[.fff]][Z|(+|-)hh:mm]]]], prefix one of "
                         f"{', '.join(ranges.PREFIXES)}") from None
    if prefix == "ap":
        # R4 #prefix: "10% of the gap between now and the date": the gap from now to the
        # nearer end of the value's range (0 if now is inside it), added on both sides.
        now = now_us()
        margin = max(lo - now, now - hi, 0) // 10
        lo, hi = lo - margin, hi + margin
    return DateCmp(prefix, lo, hi)


def sql(cond: DateCmp, a: str):
    return ranges.sql(cond.prefix, cond.lo, cond.hi, a)


def match(cond: DateCmp, row) -> bool:
    low, high = row
    return ranges.match(cond.prefix, cond.lo, cond.hi, low, high)


def mongo(cond: DateCmp) -> dict:
    """match() as a MongoDB filter on one index element (fields low, high: int64
    microseconds, beyond 2**53, so they must stay integers, never doubles)."""
    return mongo_range(cond.prefix, cond.lo, cond.hi)
