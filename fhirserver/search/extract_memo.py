"""extract() with a memo, for resources that repeat most of their elements: the server's own AuditEvents,
drained from the audit journal (audit_log/journal.py). From one read to the next recorded and the
X-Request-Id entity change; type, subtype, action, outcome, meta, source, the patient's entities and
mostly the agents repeat.

Rows item by item. A parameter path that starts from a top-level element K and then takes only steps
that look at one item at a time (children, casts, where(x='y'), resolve() is T: no index, nothing left
to the FHIRPath engine; fhirpath._apply) gives the values of K's items one after another, and a union
gives its paths' values one after another (a FHIRPath collection keeps its order). Every kind in
ELEMENTWISE makes its rows value by value and drops repeats (kinds/*.rows), and so do the reference
:identifier and token :of-type rows. So such a parameter's rows are the rows of each item of each of
its paths, in that order, repeats dropped; and one item's rows depend on nothing but the item, the
parameter and the base URL (a reference under the base indexes as local). resolve() looks at the root
only for a "#id" target in contained: a resource holding contained, or a choice element's typed key
(valueQuantity for value[x]) a path starts from, is extracted plainly.

Each item's rows (of every parameter path starting from K) are kept in a bounded LRU keyed by the type,
K, the base URL and the item as orjson bytes in its parsed key order, which tell apart every value
JSON parses to (a value orjson cannot write exactly, such as jsonio's FhirDecimal, is not memoised;
NaN is not JSON). Once the memo is full, an item is kept only when seen a second time (a hash of its key
is remembered at the first), so the items that never repeat (recorded, the X-Request-Id entity) do not
push out those that do. Types with composites are left to extract() (its element numbering), and so are
parameters of the other kinds or with other steps (plainly, in their place).
The rows, and their order, are extract()'s (tests/search/test_extract_memo.py).
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from .extract import Rows, _add, _plans, _rows, extra_rows, extract
from .fhirpath import _apply, _choice_names, _plain_path, path_steps

ELEMENTWISE = frozenset({"token", "string", "uri", "date", "reference"})    # rows value by value, repeats dropped
_ITEM_STEPS = frozenset({"child", "cast", "where_eq", "resolves_to"})       # fhirpath._apply's steps but index
MAX_BYTES = 4096                    # larger items are not kept (4096 items: the memo stays some MB)
_EXACT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


class ExtractMemo:
    """extract(resource, base), remembering the rows of the items of top-level elements (at most `size`
    items, least recently used first out; once full, an item is kept at its second sighting among the
    last `seen` items not kept). Not thread-safe: one user at a time (the journal's drain)."""

    def __init__(self, size: int = 4096, seen: int | None = None):
        self.size = size
        self.seen = 4 * size if seen is None else seen      # hashes of items seen once, at most
        self.hits = 0
        self._parts: OrderedDict = OrderedDict()
        self._seen: dict = {}               # hashes of keys seen once, oldest first

    def extract(self, resource: dict, base: str = "") -> Rows:
        layout = _layout(resource["resourceType"])
        if layout is None or (layout.resolves and "contained" in resource) or not layout.typed.isdisjoint(resource):
            return extract(resource, base)
        parts = {}
        for k in layout.keys:
            if k in resource:
                items = resource[k] if isinstance(resource[k], list) else (resource[k],)
                parts[k] = [self._part(layout, k, item, base) for item in items]
        out: Rows = {}
        for p, refs in layout.order:
            if refs is None:
                if p.keys is None or any(k in resource for k in p.keys):
                    _extract_one(p, resource, base, out)
                continue
            own, extra = [], []
            for k, u in refs:
                for part in parts.get(k, ()):
                    rows, more = part[u]
                    if rows:
                        own.append(rows)
                    if more:
                        extra.append(more)
            if own:
                _put(out, p.kind, own)
            if extra:
                _put(out, "token", extra)
        return out

    def _part(self, layout, k: str, item, base: str) -> tuple:
        """The rows of every path starting from k, of this one item: ((rows, extra rows), ...)."""
        try:
            data = orjson.dumps(item, option=_EXACT)
        except TypeError:               # orjson.JSONEncodeError: not plain JSON data, not memoised
            return _item_rows(layout.paths[k], k, item, base)
        if len(data) > MAX_BYTES:
            return _item_rows(layout.paths[k], k, item, base)
        key = (layout.rtype, k, base, data)
        part = self._parts.get(key)
        if part is not None:
            self.hits += 1
            self._parts.move_to_end(key)
            return part
        part = _item_rows(layout.paths[k], k, item, base)
        seen = hash(key)
        if seen in self._seen or len(self._parts) < self.size:     # a second sighting, or room: kept
            self._seen.pop(seen, None)
            self._parts[key] = part
            if len(self._parts) > self.size:
                self._parts.popitem(last=False)
        else:
            self._seen[seen] = None
            if len(self._seen) > self.seen:
                del self._seen[next(iter(self._seen))]
        return part


def _put(out: Rows, kind_name: str, chunks: list) -> None:
    """Add the rows of a parameter's items, repeats dropped as its kind drops them."""
    rows = chunks[0] if len(chunks) == 1 else dict.fromkeys(r for chunk in chunks for r in chunk)
    found = out.get(kind_name)
    if found is None:
        out[kind_name] = list(rows)
    else:
        found.extend(rows)


def _item_rows(paths: tuple, k: str, item, base: str) -> tuple:
    """((rows, extra rows), ...) of each (plan, run) path from k, for one item, as extract() makes them
    (extra: a reference's :identifier rows, an identifier's :of-type rows); tuples, never changed."""
    root = {k: [item]}
    out = []
    for p, run in paths:
        values = run(root)
        if not values:
            out.append(((), ()))
            continue
        rows = tuple((p.key, 0) + tuple(r) for r in _rows(p.param, values, base))
        extra = extra_rows(p, values)
        out.append((rows, () if extra is None else tuple((extra[0], 0) + tuple(r) for r in extra[1])))
    return tuple(out)


def _extract_one(p, resource: dict, base: str, out: Rows) -> None:
    """extract()'s rows of one non-composite parameter, added to out by extract()'s own statements."""
    values = p.run(resource)
    if not values:
        return
    _add(out, p.kind, p.key, 0, _rows(p.param, values, base))
    extra = extra_rows(p, values)
    if extra is not None:
        _add(out, "token", extra[0], 0, extra[1])


@dataclass(frozen=True)
class _Layout:
    """A type's parameters as the memo reads them: `keys`, the top-level elements item-wise paths start
    from; `paths`, per key its (plan, run) paths in extract()'s order; `order`, every parameter in
    extract()'s order as (plan, ((key, index in paths[key]), ...)), or (plan, None) when extracted
    plainly; `typed`, the typed keys of the choice elements among `keys`; `resolves`, whether a path
    has resolve()."""
    rtype: str
    keys: tuple[str, ...]
    paths: dict
    order: tuple[tuple, ...]
    typed: frozenset
    resolves: bool


@functools.lru_cache(maxsize=None)
def _layout(rtype: str) -> _Layout | None:
    """None for a type with composites (extract() numbers their element instances)."""
    plans = _plans(rtype)
    if any(p.kind == "composite" or p.owner is not None for p in plans):
        return None
    paths: dict[str, list] = {}
    order = []
    resolves = False
    for p in plans:
        steps = item_paths(p, rtype)
        if steps is None:
            order.append((p, None))
            continue
        refs = []
        for path in steps:
            at = paths.setdefault(path[0][1], [])
            refs.append((path[0][1], len(at)))
            at.append((p, _plain_path(path) or functools.partial(_apply, path)))
            resolves = resolves or any(s[0] == "resolves_to" for s in path)
        order.append((p, tuple(refs)))
    typed = frozenset(key for k in paths for key, _t in _choice_names().get(k, ()))
    return _Layout(rtype, tuple(paths), {k: tuple(v) for k, v in paths.items()}, tuple(order), typed, resolves)


def item_paths(p, rtype: str) -> list | None:
    """The plan's paths when its rows are made item by item of the top-level elements they start from
    (module docstring); else None."""
    if p.kind not in ELEMENTWISE or p.owner is not None:
        return None
    paths = path_steps(p.param.expression, rtype)
    if not paths or not all(steps and steps[0][0] == "child" and all(s[0] in _ITEM_STEPS for s in steps)
                            for steps in paths):
        return None
    return paths
