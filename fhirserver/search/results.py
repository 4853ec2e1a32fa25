"""Parameters that shape the result set rather than select it (search.html#return):
_count, _sort, _total, _summary, _elements, _include, _revinclude, paging."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import bounds
from ..definitions import resource_types
from ..errors import BadRequest
from .registry import lookup

RESULT_PARAMS = {"_count", "_cursor", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude",
                 "_format", "_pretty"}
SORTABLE = {"string", "token", "date", "number", "quantity", "reference", "uri"}
_ELEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class SortKey:
    kind: str           # the index kind, or "_id" / "_lastUpdated"
    key: str            # parameter key
    descending: bool


@dataclass(frozen=True)
class Include:
    """_include=Source:param[:Target] / _revinclude=Source:param[:Target] (search.html#include)."""
    source_type: str    # "*" for a wildcard
    param_key: str | None   # None for a wildcard: every reference parameter
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass
class ResultSpec:
    count: int | None = None
    cursor: str | None = None
    sort: list[SortKey] = field(default_factory=list)
    total: str | None = None            # none | estimate | accurate
    summary: str | None = None          # true | false | text | data | count
    elements: tuple[str, ...] | None = None
    includes: list[Include] = field(default_factory=list)


def parse_result_param(rtype: str, spec: ResultSpec, name: str, value: str) -> None:
    bare, _, modifier = name.partition(":")
    if bare in ("_format", "_pretty"):
        return
    if modifier and bare not in ("_include", "_revinclude"):
        raise BadRequest(f"{bare} takes no modifier")
    if bare == "_count":
        spec.count = bounds.parse_int(value, "_count")
    elif bare == "_cursor":
        spec.cursor = value
    elif bare == "_sort":
        spec.sort = [_sort_key(rtype, s.strip()) for s in value.split(",") if s.strip()]
    elif bare == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise BadRequest(f"_total must be none, estimate or accurate, got {value!r}")
        spec.total = value
    elif bare == "_summary":
        if value not in ("true", "false", "text", "data", "count"):
            raise BadRequest(f"_summary must be true, false, text, data or count, got {value!r}")
        spec.summary = value
    elif bare == "_elements":
        names = tuple(v.strip() for v in value.split(",") if v.strip())
        bad = [n for n in names if not _ELEMENT.match(n)]
        if bad:
            raise BadRequest(f"_elements takes top-level element names, not {bad}")
        spec.elements = names
    elif bare in ("_include", "_revinclude"):
        if modifier not in ("", "iterate", "recurse"):
            raise BadRequest(f"Unknown modifier :{modifier} for {bare}")
        spec.includes.append(_include(rtype, value, bare == "_revinclude", modifier != ""))


def _sort_key(rtype: str, raw: str) -> SortKey:
    descending = raw.startswith("-")
    code = raw.lstrip("-")
    if code == "_id":
        return SortKey("_id", "_id", descending)
    param = lookup(rtype, code)
    if code == "near" and param is not None and param.kind == "special":     # nearest first: search/near.py
        return SortKey("near", param.key, descending)
    if param is None:
        raise BadRequest(f"Cannot sort by unknown parameter '{code}' of {rtype}")
    if param.kind not in SORTABLE:
        raise BadRequest(f"Cannot sort by '{code}': {param.kind} parameters are not sortable")
    return SortKey(param.kind, param.key, descending)


def _include(rtype: str, value: str, reverse: bool, iterate: bool) -> Include:
    if value == "*":
        return Include("*", None, None, iterate, reverse)
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise BadRequest(f"_include/_revinclude value must be Type:parameter[:target], got {value!r}")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in resource_types() or (target is not None and target not in resource_types()):
        raise BadRequest(f"Unknown resource type in {value!r}")
    if not reverse and not iterate and source != rtype:
        raise BadRequest(f"_include={value} must start with the searched type {rtype} (or use :iterate)")
    if code == "*":
        return Include(source, None, target, iterate, reverse)
    param = lookup(source, code)
    if param is None or param.kind != "reference":
        raise BadRequest(f"'{code}' is not a reference parameter of {source}")
    return Include(source, param.key, target, iterate, reverse)
