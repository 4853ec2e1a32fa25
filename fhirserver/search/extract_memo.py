"""extract() with a memo, for resources that repeat most of their elements: the server's own AuditEvents,
drained from the audit journal (audit_log/journal.py). From one read to the next entity and recorded
change; type, subtype, action, outcome, meta, source and mostly agent repeat.

A parameter whose every path is plain steps (children, casts, where(x='y'), indexes: no resolve(), which
may look into contained, nothing left to the FHIRPath engine) reads nothing of the resource but the
top-level elements its paths start from (fhirpath.first_keys). Its rows are then a function of those
elements, the parameter and the base URL (a reference under the base indexes as local), and are kept in
a bounded LRU keyed by exactly that: the elements as orjson bytes in their parsed key order, which
tell apart every value JSON parses to (a value orjson cannot write exactly, such as jsonio's
FhirDecimal, is not memoised; NaN is not JSON). Types with composites are left to extract() (its element
numbering). Parameters starting from the same elements share one entry. Elements that seldom repeat
(recorded, an entity list holding the X-Request-Id) are not remembered: after PROBE lookups with under a
quarter found, a group is extracted plainly for a while, then probed again.
The rows, and their order, are extract()'s (tests/search/test_extract_memo.py).
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from .extract import Rows, _add, _plans, _rows, extract
from .fhirpath import path_steps
from .kinds import reference_kind, token_kind

_PLAIN_STEPS = frozenset({"child", "cast", "where_eq", "index"})     # fhirpath._apply's steps but resolves_to
PROBE = 64                          # lookups of a group before its hit rate is judged
MAX_BYTES = 4096                    # larger elements are not kept (the memo stays a few MB at most)
_EXACT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


class ExtractMemo:
    """extract(resource, base), remembering the rows of the memoisable parameters (at most `size`
    entries, least recently used first out). Not thread-safe: one user at a time (the journal's drain)."""

    def __init__(self, size: int = 1024):
        self.size = size
        self.hits = 0
        self._parts: OrderedDict = OrderedDict()
        self._odds: dict = {}               # type -> per group [lookups, hits, lookups skipped]

    def extract(self, resource: dict, base: str = "") -> Rows:
        layout = _layout(resource["resourceType"])
        if layout is None:
            return extract(resource, base)
        odds = self._odds.get(layout.rtype)
        if odds is None:
            odds = self._odds[layout.rtype] = [[0, 0, 0] for _g in layout.groups]
        found = [self._group(layout, g, odds[g], resource, base) for g in range(len(layout.groups))]
        out: Rows = {}
        for group, i, p in layout.order:
            parts = _PLAIN if group is None else found[group]
            if parts is None:
                continue                    # none of its elements: as extract(), no rows
            if parts is _PLAIN:
                if p.keys is None or any(k in resource for k in p.keys):
                    _extract_one(p, resource, base, out)
                continue
            for kind_name, rows in parts[i]:
                out.setdefault(kind_name, []).extend(rows)
        return out

    def _group(self, layout, g: int, odds: list, resource: dict, base: str) -> tuple | None:
        """The parts of the group's parameters (one per parameter, in order); None without its elements,
        _PLAIN when they are not memoised."""
        if odds[0] >= PROBE and odds[1] * 4 < odds[0]:     # elements that seldom repeat (recorded)
            odds[2] += 1
            if odds[2] >= PROBE * 16:
                odds[:] = [0, 0, 0]                  # then probe again: the stream may have changed
            return _PLAIN
        elements = {k: resource[k] for k in layout.groups[g] if k in resource}
        if not elements:
            return None
        try:
            key = (layout.rtype, g, base, orjson.dumps(elements, option=_EXACT))
        except TypeError:               # orjson.JSONEncodeError: not plain JSON data, not memoised
            return _PLAIN
        if len(key[3]) > MAX_BYTES:
            return _PLAIN
        odds[0] += 1
        if odds[0] >= PROBE * 64:                    # recent lookups weigh more
            odds[0], odds[1] = odds[0] // 2, odds[1] // 2
        parts = self._parts.get(key)
        if parts is not None:
            self.hits += 1
            odds[1] += 1
            self._parts.move_to_end(key)
            return parts
        parts = self._parts[key] = tuple(_part(p, resource, base) for p in layout.members[g])
        if len(self._parts) > self.size:
            self._parts.popitem(last=False)
        return parts


_PLAIN = ()                             # a group extracted as extract() does, not memoised


def _part(p, resource: dict, base: str) -> tuple:
    """One parameter's rows as ((kind, rows), ...), as _extract_one adds them (never changed: a memoised
    part is shared by every resource it is read for)."""
    out: Rows = {}
    _extract_one(p, resource, base, out)
    return tuple(out.items())


def _extract_one(p, resource: dict, base: str, out: Rows) -> None:
    """extract()'s rows of one non-composite parameter, added to out by extract()'s own statements."""
    values = p.run(resource)
    if not values:
        return
    _add(out, p.kind, p.key, 0, _rows(p.param, values, base))
    if p.kind == "reference":
        _add(out, "token", p.key + reference_kind.IDENTIFIER, 0, reference_kind.identifier_rows(values))
    elif p.kind == "token" and p.param.code == "identifier":
        _add(out, "token", p.key + token_kind.OF_TYPE, 0, token_kind.of_type_rows(values))


@dataclass(frozen=True)
class _Layout:
    """A type's parameters as the memo reads them: `groups`, the distinct top-level element sets the
    memoisable parameters start from; `members`, their parameters in order; `order`, every parameter in
    extract()'s order as (group, index in its members, plan), or (None, None, plan) when not memoised."""
    rtype: str
    groups: tuple[tuple[str, ...], ...]
    members: tuple[tuple, ...]
    order: tuple[tuple, ...]


@functools.lru_cache(maxsize=None)
def _layout(rtype: str) -> _Layout | None:
    """None for a type with composites (extract() numbers their element instances)."""
    plans = _plans(rtype)
    if any(p.kind == "composite" or p.owner is not None for p in plans):
        return None
    members: dict[tuple, list] = {}
    order = []
    for p in plans:
        if memoisable(p, rtype):
            group = members.setdefault(p.keys, [])
            order.append((list(members).index(p.keys), len(group), p))
            group.append(p)
        else:
            order.append((None, None, p))
    return _Layout(rtype, tuple(members), tuple(tuple(g) for g in members.values()), tuple(order))


def memoisable(p, rtype: str) -> bool:
    """Whether the plan's rows depend on nothing but the elements p.keys names (and the base URL)."""
    paths = path_steps(p.param.expression, rtype)
    return bool(paths) and bool(p.keys) and all(
        steps and steps[0][0] == "child" and all(s[0] in _PLAIN_STEPS for s in steps) for steps in paths)
