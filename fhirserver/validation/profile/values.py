"""Value rules of one element (elementdefinition-definitions.html#ElementDefinition.fixed_x_ ...).

* fixed[x]: the instance value equals the fixed value exactly (no extra elements);
* pattern[x]: the instance contains the pattern: every element of the pattern is present with a
  value that contains the pattern's; an array matches when each pattern item is contained in some
  instance item (profiling.html#pattern);
* minValue[x] / maxValue[x]: numbers compared as numbers, a Quantity's value when its unit is the
  bound's, dates and times as strings of the same precision (others cannot be compared: not checked);
* the resource type a literal reference names (references.html#literal), for targetProfile checks.
"""
from __future__ import annotations

import numbers
import re

_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def equal(value, fixed) -> bool:
    """JSON equality where 1 == 1.0 but True != 1 (FHIR decimals and booleans)."""
    if isinstance(fixed, bool) or isinstance(value, bool):
        return value is fixed
    if isinstance(fixed, dict):
        return (isinstance(value, dict) and value.keys() == fixed.keys()
                and all(equal(value[k], v) for k, v in fixed.items()))
    if isinstance(fixed, list):
        return (isinstance(value, list) and len(value) == len(fixed)
                and all(equal(a, b) for a, b in zip(value, fixed, strict=True)))
    return value == fixed


def contains(value, pattern) -> bool:
    """Whether `value` contains `pattern` (pattern[x] semantics)."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for k, p in pattern.items():
            v = value.get(k)
            if v is None or not contains(v, p):
                return False
        return True
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(contains(v, p) for v in items) for p in pattern)
    if isinstance(value, list):
        return any(contains(v, pattern) for v in value)
    return equal(value, pattern)


def referenced_type(ref: dict, resource: dict | None) -> str | None:
    """The resource type a Reference points to, when it can be told without resolving it:
    Reference.type, a relative or absolute literal reference, or a contained resource ("#id")."""
    t = ref.get("type")
    if isinstance(t, str) and "/" not in t:
        return t
    literal = ref.get("reference")
    if not isinstance(literal, str):
        return None
    if literal.startswith("#"):
        for c in (resource or {}).get("contained") or ():
            if isinstance(c, dict) and c.get("id") == literal[1:]:
                return c.get("resourceType")
        return None
    m = _LITERAL.search(literal)
    return m.group(1) if m else None


def _comparable(value, bound):
    """(value, bound) as comparable scalars, or None when they cannot be compared."""
    if isinstance(bound, dict) and isinstance(value, dict):
        if (value.get("code"), value.get("system")) != (bound.get("code"), bound.get("system")):
            return None
        value, bound = value.get("value"), bound.get("value")
    if isinstance(value, bool) or isinstance(bound, bool):
        return None
    if isinstance(value, numbers.Number) and isinstance(bound, numbers.Number):      # int, float, Decimal
        return value, bound
    if isinstance(value, str) and isinstance(bound, str) and len(value) == len(bound):
        return value, bound
    return None

def out_of_bounds(value, bounds: tuple) -> str | None:
    """"below minValue x" / "above maxValue y" when the value is outside the element's bounds."""
    low, high = bounds
    if low is not None:
        pair = _comparable(value, low)
        if pair is not None and pair[0] < pair[1]:
            return f"below the minValue {pair[1]}"
    if high is not None:
        pair = _comparable(value, high)
        if pair is not None and pair[0] > pair[1]:
            return f"above the maxValue {pair[1]}"
    return None
