"""FHIR JSON in and out, keeping decimal precision.

FHIR decimals keep their written precision: 1.50 is not 1.5
(http://hl7.org/fhir/R4/datatypes.html#decimal, json.html#primitive). Parsing
turns each JSON number with a fraction or exponent into a Decimal-text float
(`FhirDecimal`) that compares and validates as a float but serialises exactly
as written. Output uses orjson (fast) with that one hook.
"""
from __future__ import annotations

import json

import orjson

from .errors import BadRequest


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


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str, max_depth: int = 100):
    """Parse a request body; malformed or too deeply nested JSON -> 400."""
    try:
        obj = json.loads(data, parse_float=FhirDecimal, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest(f"JSON nesting deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"Malformed JSON: {e}") from None
    if depth_exceeds(obj, max_depth):
        raise BadRequest(f"JSON nesting deeper than {max_depth} levels")
    return obj


def depth_exceeds(obj, limit: int) -> bool:
    """Iterative (stack-safe) check that no value nests deeper than `limit`."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False
