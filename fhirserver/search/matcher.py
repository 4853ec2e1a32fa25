"""The reference semantics of search, in plain Python.

`Matcher` evaluates a query tree against resources held in memory, using the
same index rows as the stores (search/extract.py) and each parameter type's
match(). Tests check that every store returns exactly what the matcher
returns, in the same order; it is not used to serve requests.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

from . import query as q
from .extract import component_keys, extract
from .kinds import KIND_MODULES
from .results import SortKey


class _Entry:
    def __init__(self, resource: dict, base: str, order: int):
        self.resource = resource
        self.order = order
        self.by_key: dict[str, list[tuple[str, int, tuple]]] = defaultdict(list)
        for kind, rows in extract(resource, base).items():
            for row in rows:
                self.by_key[row[0]].append((kind, row[1], tuple(row[2:])))


class Matcher:
    def __init__(self, base: str = ""):
        self.base = base
        self.entries: dict[tuple[str, str], _Entry] = {}
        self._order = 0

    def put(self, resource: dict) -> None:
        """Add or replace a current resource (replacing keeps its insertion order, as stores do)."""
        key = (resource["resourceType"], resource["id"])
        order = self.entries[key].order if key in self.entries else self._next()
        self.entries[key] = _Entry(resource, self.base, order)

    def delete(self, rtype: str, id: str) -> None:
        self.entries.pop((rtype, id), None)

    def _next(self) -> int:
        self._order += 1
        return self._order

    def search(self, rtype: str, node, sort: list[SortKey] = (), guard=None) -> list[str]:
        """Ids of matching resources in the order a store must return them. `guard(type)` restricts
        every set of that type, chained targets and _has sources included (see Store.search)."""
        self.guard = guard
        found = [e for (t, _i), e in self.entries.items() if t == rtype and self.visible(rtype, e)
                 and self.matches(node, e)]
        found.sort(key=lambda e: self._sort_key(e, sort))
        return [e.resource["id"] for e in found]

    guard = None

    def visible(self, rtype: str, e: _Entry) -> bool:
        restriction = self.guard(rtype) if self.guard else None
        if restriction is q.DENY:
            return False
        return restriction is None or self.matches(restriction, e)

    def matches(self, node, e: _Entry) -> bool:
        if isinstance(node, q.And):
            return all(self.matches(p, e) for p in node.parts)
        if isinstance(node, q.Or):
            return any(self.matches(p, e) for p in node.parts)
        if isinstance(node, q.Not):
            return not self.matches(node.node, e)
        if isinstance(node, q.IdIn):
            return e.resource["id"] in node.ids
        if isinstance(node, q.Match):
            module = KIND_MODULES[node.kind]
            return any(k == node.kind and module.match(node.cond, cols) for k, _g, cols in e.by_key.get(node.key, ()))
        if isinstance(node, q.Missing):
            present = any(e.by_key.get(key) for _kind, key in node.keys)
            return not present if node.missing else present
        if isinstance(node, q.Composite):
            return self._composite(node, e)
        if isinstance(node, (q.Chain, q.Has)) and not node.guarded:     # the access policy's own: no guard
            saved, self.guard = self.guard, None
            try:
                return self.matches(dataclasses.replace(node, guarded=True), e)
            finally:
                self.guard = saved
        if isinstance(node, q.Chain):
            for _k, _g, (ttype, tid, _url) in e.by_key.get(node.key, ()):
                target = self.entries.get((ttype, tid))
                if ttype == node.target_type and target is not None and self.visible(ttype, target) \
                        and self.matches(node.node, target):
                    return True
            return False
        if isinstance(node, q.Has):
            me = (e.resource["resourceType"], e.resource["id"])
            return any(t == node.source_type and any(cols[:2] == me for _k, _g, cols in s.by_key.get(node.key, ()))
                       and self.visible(t, s) and self.matches(node.node, s) for (t, _i), s in self.entries.items())
        raise TypeError(f"unsupported node {node!r}")

    def _composite(self, node: q.Composite, e: _Entry) -> bool:
        groups = None
        for key, (kind, cond) in zip(component_keys(node.key), node.parts, strict=True):
            module = KIND_MODULES[kind]
            ok = {g for k, g, cols in e.by_key.get(key, ()) if k == kind and module.match(cond, cols)}
            groups = ok if groups is None else groups & ok
        return bool(groups)

    def _sort_key(self, e: _Entry, sort) -> tuple:
        out = []
        for k in sort:
            if k.kind == "_id":
                out.append(_Desc(e.resource["id"]) if k.descending else e.resource["id"])
                continue
            module = KIND_MODULES[k.kind]
            col = module.COLUMNS.index(module.SORT_COLUMNS["desc" if k.descending else "asc"])
            values = [cols[col] for kind, _g, cols in e.by_key.get(k.key, ()) if kind == k.kind
                      and cols[col] is not None]
            if not values:
                out += [1, 0]
            else:
                v = max(values) if k.descending else min(values)
                out += [0, _Desc(v) if k.descending else v]
        out.append(e.order)
        return tuple(out)


class _Desc:
    """Reverses the order of a value inside a sort key."""
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return self.v > other.v

    def __eq__(self, other):
        return self.v == other.v


def matches_alone(resource: dict, base: str, node, guard=None) -> bool:
    """Whether this one resource, judged by its own content alone (no other resource to chain to),
    matches node inside guard: a version in a history, a write's content, a subscription filter."""
    matcher = Matcher(base)
    matcher.put({**resource, "id": resource.get("id") or "new"})
    return bool(matcher.search(resource["resourceType"], node, guard=guard))
