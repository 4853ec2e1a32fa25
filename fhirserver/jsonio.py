"""FHIR JSON in and out, keeping decimal precision; the one parser of every JSON a client sends.

FHIR decimals keep their written precision: 1.50 is not 1.5
(http://hl7.org/fhir/R4/datatypes.html#decimal, json.html#primitive). Parsing
turns each JSON number with a fraction or exponent into a Decimal-text float
(`FhirDecimal`) that compares and validates as a float but serialises exactly
as written. Output uses orjson (fast) with that one hook.

`loads` is strict: FHIR bodies, Bundles, the admin, registration and launch APIs all parse with
it, and anything outside these rules is a 400 (BadRequest) naming the problem:

- UTF-8 only (RFC 8259 section 8.1; http://hl7.org/fhir/R4/http.html#mime-type), and no
  lone UTF-16 surrogate such as "\\ud800" (section 8.2: not a Unicode string; it cannot be stored
  or written back out).
- Object member names unique (section 4 says they SHOULD be; with duplicates, parsers disagree on
  which value wins, and a check that reads one value while the store keeps another is bypassed).
- Numbers finite and integers within signed 64 bits (section 6: beyond IEEE 754 binary64 no
  interoperability; NaN and Infinity are not JSON at all; 1e999 would be read back as Infinity).
- Nesting at most `max_depth` levels (what the recursive code behind the parser can take).

`loads_stored` parses what this server wrote itself (already checked): the fast path of reads.
"""
from __future__ import annotations

import json
import math
import re

import orjson

from .bounds import INT64_MAX
from .errors import BadRequest

INT64_MIN = -2 ** 63


class FhirDecimal(float):
    """A float that remembers its source text, e.g. '1.50'."""

    __slots__ = ("text",)

    def __new__(cls, text: str):
        obj = float.__new__(cls, text)
        obj.text = text
        return obj

    def __reduce__(self):
        return (FhirDecimal, (self.text,))

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __repr__(self):
        return self.text


def _default(obj):
    if isinstance(obj, FhirDecimal):
        return orjson.Fragment(obj.text)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_OPTS = orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps(obj, pretty: bool = False) -> bytes:
    return orjson.dumps(obj, default=_default, option=_OPTS | (orjson.OPT_INDENT_2 if pretty else 0))


# ---- parsing ------------------------------------------------------------------------------------

class _Refused(BadRequest):
    """Raised from inside the parser's hooks; passes through json.loads untouched."""


def _reject_constant(name):
    raise _Refused(f"Malformed JSON: {name} is not a JSON number (RFC 8259 section 6)")


def _decimal(text: str) -> FhirDecimal:
    value = FhirDecimal(text)
    if math.isinf(value):
        raise _Refused(f"The number {_short(text)} is out of range: it overflows a 64-bit float "
                       "(RFC 8259 section 6)")
    return value


def _integer(text: str) -> int:
    if len(text) < 19:               # |n| < 10**18 always fits: the common case, no further work
        return int(text)
    if len(text) > 20 or not INT64_MIN <= int(text) <= INT64_MAX:
        raise _Refused(f"The integer {_short(text)} is out of range: integers must fit in 64 bits "
                       f"({INT64_MIN} to {INT64_MAX}); write larger decimals with a fraction")
    return int(text)


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def _unique_members(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"Duplicate JSON object key {key!r}: each member name may appear once "
                               "(RFC 8259 section 4)", expression=(key,) if key.isidentifier() else ())
            seen.add(key)
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(data: bytes | str, max_depth: int = 100):
    """Parse what a client sent, by the rules above; anything else -> 400."""
    text = _text(data)
    try:
        obj = json.loads(text, parse_float=_decimal, parse_int=_integer, parse_constant=_reject_constant,
                         object_pairs_hook=_unique_members)
    except RecursionError:
        raise BadRequest(f"JSON nesting deeper than {max_depth} levels") from None
    except ValueError as e:
        raise BadRequest(f"Malformed JSON: {e}") from None
    if depth_exceeds(obj, max_depth):
        raise BadRequest(f"JSON nesting deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(obj)
    return obj


def loads_stored(data: bytes | str):
    """Parse a body this server stored (it passed `loads` and validation on the way in): no checks."""
    return json.loads(data, parse_float=FhirDecimal)


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        if not data.isascii():
            try:
                data.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest("The JSON text holds a lone UTF-16 surrogate: not valid Unicode "
                                 "(RFC 8259 section 8.2)") from None
        return data
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"The body is not valid UTF-8 (RFC 8259 section 8.1): byte 0x{e.object[e.start]:02x} "
                         f"at offset {e.start}") from None


def _refuse_lone_surrogates(obj) -> None:
    """A surrogate escape was seen: pairs were joined by the parser, so any surrogate left is lone."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            stack.extend(node.keys())
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
        elif type(node) is str and not node.isascii():
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(f"The JSON string {node[:40]!r} holds a lone UTF-16 surrogate: not valid "
                                 "Unicode (RFC 8259 section 8.2)") from None


def depth_exceeds(obj, limit: int) -> bool:
    """Whether containers nest deeper than `limit`. Level by level: stack-safe, and each container's
    children are filtered by one list comprehension rather than a Python step per child."""
    level, depth = [obj], 0
    while level:
        depth += 1
        below = []
        for node in level:
            if type(node) is dict:
                node = node.values()
            elif type(node) is not list:
                continue
            if depth > limit:
                return True
            below += [c for c in node if type(c) is dict or type(c) is list]
        level = below
    return False
