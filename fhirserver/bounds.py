"""Integers a client puts in a URL, a header or a paging cursor, checked in one place.

Version ids (http://hl7.org/fhir/R4/http.html#vread), If-Match ETags (http.html#concurrency),
`_count` and history cursors are digit strings the server turns into numbers; both stores hold
signed 64-bit integers (SQLite INTEGER, BSON int64), so anything outside that range, or any text
that is not plain ASCII digits (Python's str.isdigit() also accepts '²' and Arabic-Indic digits,
which int() refuses or reads differently), is a 400 naming the value rather than an OverflowError.
"""
from __future__ import annotations

from .errors import BadRequest

INT64_MAX = 2 ** 63 - 1
_MAX_DIGITS = len(str(INT64_MAX))


def is_digits(text) -> bool:
    """Plain ASCII digits, at least one."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def parse_int(text, what: str, *, low: int = 0, high: int = INT64_MAX, error=BadRequest) -> int:
    """`text` as an integer in [low, high] (low >= 0), or `error` naming `what` and the value."""
    if not is_digits(text) or len(text.lstrip("0")) > _MAX_DIGITS:
        raise error(f"{what} must be an integer from {low} to {high}, got {_show(text)}")
    value = int(text)
    if not low <= value <= high:
        raise error(f"{what} must be an integer from {low} to {high}, got {_show(text)}")
    return value


def _show(text) -> str:
    """The offending value, shortened (a hostile value may be megabytes long)."""
    r = repr(text)
    return r if len(r) <= 60 else r[:57] + "..."
