"""Compile a search query tree (fhirserver/search/query.py) into one SQLite query.

Leaves become sub-selects on the index tables; every value is a bound
parameter and every table or column name comes from code, never from the
request. The most selective top-level clause (estimated by counting at most
ESTIMATE_CAP index rows) drives the query as `rid IN (...)`; the others are
correlated EXISTS probes on the (rid, param) indexes.
"""
from __future__ import annotations

import itertools

from ..search import query as q
from ..search.extract import component_keys
from ..search.kinds import KIND_MODULES
from ..search.results import SortKey
from .sqlite_index import table

ESTIMATE_CAP = 5000


def top_clauses(node) -> list:
    return list(node.parts) if isinstance(node, q.And) else [node]


_LIKELY = {"reference": 1, "token": 2, "uri": 2, "string": 3, "quantity": 4, "number": 4, "date": 5}


def _likely_size(node) -> int:
    """A rough order for counting candidate drivers: ids and references first, ranges last."""
    if isinstance(node, q.IdIn):
        return 0
    if isinstance(node, q.Match):
        return _LIKELY.get(node.kind, 6)
    if isinstance(node, q.Or) and node.parts:
        return max(_likely_size(p) for p in node.parts)
    return 6


class Compiler:
    """Compiles query trees for one statement. `guard(rtype)` may return a query node that every
    set of `rtype` resources is ANDed with, wherever it appears: the top level, chained targets,
    _has sources and includes (access control inside the query; q.DENY matches nothing)."""

    def __init__(self, conn, param_ids: dict[str, int], guard=None):
        self.conn = conn
        self.ids = param_ids
        self.guard = guard
        self._alias = itertools.count()
        self._sets: dict = {}

    def alias(self, prefix="i") -> str:
        return f"{prefix}{next(self._alias)}"

    def pid(self, key: str) -> int:
        return self.ids.get(key, -1)

    # ---- top level -------------------------------------------------------------
    def where(self, rtype: str, node, r: str = "r", use_driver: bool = True) -> tuple[str, list]:
        """WHERE clause for current resources of `rtype` matching `node`; with use_driver=False every
        clause is a per-row probe (for plans driven by something else, such as a sort index)."""
        clauses = top_clauses(node)
        restriction = self.guard(rtype) if self.guard else None
        if restriction is q.DENY:
            return "0", []
        if restriction is not None:
            clauses.append(restriction)
        driver = self._pick_driver(rtype, clauses) if use_driver else None
        # with a driver, `+` keeps the planner from scanning the type index instead (even without statistics)
        sql, args = [f"{'+' if driver is not None else ''}{r}.type = ?", f"{r}.deleted = 0"], [rtype]
        for i, clause in enumerate(clauses):
            if i == driver:
                s, a = self.rid_set(rtype, clause)
                s = f"{r}.rid IN ({s})"
            else:
                s, a = self.probe(rtype, clause, r)
            sql.append(s)
            args += a
        return " AND ".join(sql), args

    def _pick_driver(self, rtype: str, clauses) -> int | None:
        best = self._best(rtype, clauses)
        return best[0] if best else None

    def driver_estimate(self, rtype: str, node) -> int | None:
        """How many rows the best driving clause selects (capped at ESTIMATE_CAP); None: no clause can drive."""
        best = self._best(rtype, top_clauses(node), need_size=True)
        return best[1] if best else None

    def _best(self, rtype: str, clauses, need_size: bool = False) -> tuple[int, int | None] | None:
        """(index, estimated rows) of the most selective clause. Likely-selective kinds are counted first
        and later counts stop at the best so far, so choosing costs little."""
        candidates = sorted((i for i, c in enumerate(clauses) if self.rid_set(rtype, c) is not None),
                            key=lambda i: _likely_size(clauses[i]))
        if not candidates:
            return None
        if len(candidates) == 1 and not need_size:
            return candidates[0], None
        best = None
        for i in candidates:
            cap = ESTIMATE_CAP if best is None else best[1] + 1
            n = self._estimate(rtype, clauses[i], cap)
            if best is None or n < best[1]:
                best = (i, n)
        return best

    def _estimate(self, rtype: str, clause, cap: int = ESTIMATE_CAP) -> int:
        key = ("n", rtype, id(clause), cap)
        if key not in self._sets:
            s, a = self.rid_set(rtype, clause)
            self._sets[key] = self.conn.execute(f"SELECT count(*) FROM ({s} LIMIT {cap})", a).fetchone()[0]
        return self._sets[key]

    def leaf_set(self, rtype: str, node):
        """When the whole query is one index leaf, its rid set alone counts the matches: index rows
        exist only for current resources and the parameter key fixes the type."""
        clauses = top_clauses(node)
        if len(clauses) == 1 and (isinstance(clauses[0], (q.Match, q.Composite)) or (
                isinstance(clauses[0], q.Or) and clauses[0].parts
                and all(isinstance(p, q.Match) for p in clauses[0].parts))):
            return self.rid_set(rtype, clauses[0])
        return None

    # ---- driving sets: SELECT rid ... ------------------------------------------
    def rid_set(self, rtype: str, node):
        """A statement selecting the rids of `rtype` resources matching `node`, or None
        when the node can only be checked per row (negations, :missing, empty). Memoised:
        choosing the driver and emitting it must not plan nested chains twice."""
        key = (rtype, id(node))
        if key not in self._sets:
            self._sets[key] = self._rid_set(rtype, node)
        return self._sets[key]

    def _rid_set(self, rtype: str, node):
        if isinstance(node, q.IdIn):
            return (f"SELECT rid FROM resource WHERE type = ? AND id IN ({', '.join('?' * len(node.ids))})",
                    [rtype, *node.ids])
        if isinstance(node, q.Match):
            return self._leaf(node.kind, node.key, [node.cond])
        if isinstance(node, q.Composite):
            return self._composite(node)
        if isinstance(node, q.Chain):
            t = self.alias("t")
            with q.unguarded(self, node):
                inner, inner_args = self.where(node.target_type, node.node, t)
            i = self.alias()
            return (f"SELECT {i}.rid FROM {table('reference')} {i} WHERE {i}.param = ? AND {i}.target_type = ? "
                    f"AND {i}.target_id IN (SELECT {t}.id FROM resource {t} WHERE {inner})",
                    [self.pid(node.key), node.target_type] + inner_args)
        if isinstance(node, q.Has):
            i, src = self.alias(), self.alias("s")
            leaf = None if self.guard and node.guarded else self.leaf_set(node.source_type, node.node)
            if leaf is not None:     # the sources are one index leaf: no need to visit them
                return (f"SELECT h.rid FROM resource h WHERE h.type = ? AND h.id IN (SELECT {i}.target_id FROM "
                        f"{table('reference')} {i} WHERE {i}.param = ? AND {i}.target_type = ? "
                        f"AND {i}.rid IN ({leaf[0]}))", [rtype, self.pid(node.key), rtype] + leaf[1])
            with q.unguarded(self, node):
                inner, inner_args = self.where(node.source_type, node.node, src)
            return (f"SELECT h.rid FROM resource h WHERE h.type = ? AND h.id IN (SELECT {i}.target_id FROM "
                    f"{table('reference')} {i} JOIN resource {src} ON {src}.rid = {i}.rid WHERE {i}.param = ? "
                    f"AND {i}.target_type = ? AND {inner})",
                    [rtype, self.pid(node.key), rtype] + inner_args)
        if isinstance(node, q.Or) and node.parts:
            same_key = {(p.kind, p.key) for p in node.parts if isinstance(p, q.Match)}
            if len(same_key) == 1 and all(isinstance(p, q.Match) for p in node.parts):
                kind, key = same_key.pop()
                return self._leaf(kind, key, [p.cond for p in node.parts])
            subs = [self.rid_set(rtype, p) for p in node.parts]
            if all(sub is not None for sub in subs):
                return " UNION ".join(sq for sq, _ in subs), [x for _, a in subs for x in a]
        if isinstance(node, q.And) and len(node.parts) == 1:
            return self.rid_set(rtype, node.parts[0])
        return None

    def _leaf(self, kind: str, key: str, conds: list):
        a = self.alias()
        parts, args = [], [self.pid(key)]
        for cond in conds:
            sq, x = KIND_MODULES[kind].sql(cond, a)
            parts.append(sq)
            args += x
        return f"SELECT {a}.rid FROM {table(kind)} {a} WHERE {a}.param = ? AND ({' OR '.join(parts)})", args

    def _composite(self, node: q.Composite, correlate: str | None = None):
        """The rids with one element instance (grp) whose rows satisfy every component; with `correlate`,
        only the row alias `correlate`'s own rows (a probe)."""
        aliases = [self.alias("c") for _ in node.parts]
        froms, conds, args = [], [], []
        if correlate is not None:
            conds.append(f"{aliases[0]}.rid = {correlate}.rid")
        keys = component_keys(node.key)      # a base parameter's rows, or the component's own
        for i, ((kind, cond), a, key) in enumerate(zip(node.parts, aliases, keys, strict=True)):
            froms.append(f"{table(kind)} {a}")
            sq, x = KIND_MODULES[kind].sql(cond, a)
            conds.append(f"{a}.param = ? AND {sq}")
            args += [self.pid(key)] + x
            if i:
                conds.append(f"{a}.rid = {aliases[0]}.rid AND {a}.grp = {aliases[0]}.grp")
        # CROSS JOIN keeps the first component (a code, in every R4 composite with a range) as the outer
        # loop: with sampled statistics the planner would otherwise walk a wide value range first
        return f"SELECT {aliases[0]}.rid FROM {' CROSS JOIN '.join(froms)} WHERE {' AND '.join(conds)}", args

    # ---- per-row checks ----------------------------------------------------------
    def probe(self, rtype: str, node, r: str) -> tuple[str, list]:
        """A boolean on row `r`: correlated EXISTS on the (rid, param) indexes, cheap per candidate."""
        if isinstance(node, q.IdIn):
            return f"{r}.id IN ({', '.join('?' * len(node.ids))})", list(node.ids)
        if isinstance(node, (q.And, q.Or)):
            if not node.parts:
                return ("1" if isinstance(node, q.And) else "0"), []
            parts = [self.probe(rtype, p, r) for p in node.parts]
            joiner = " AND " if isinstance(node, q.And) else " OR "
            return "(" + joiner.join(sq for sq, _ in parts) + ")", [x for _, a in parts for x in a]
        if isinstance(node, q.Not):
            sq, a = self.probe(rtype, node.node, r)
            return f"NOT {sq}", a
        if isinstance(node, q.Missing):
            exists = " OR ".join(f"EXISTS (SELECT 1 FROM {table(k)} m WHERE m.rid = {r}.rid AND m.param = ?)"
                                 for k, _key in node.keys)
            args = [self.pid(key) for _k, key in node.keys]
            return (f"NOT ({exists})" if node.missing else f"({exists})"), args
        if isinstance(node, q.Match):
            a = self.alias()
            sq, x = KIND_MODULES[node.kind].sql(node.cond, a)
            return (f"EXISTS (SELECT 1 FROM {table(node.kind)} {a} WHERE {a}.rid = {r}.rid AND {a}.param = ? "
                    f"AND {sq})", [self.pid(node.key)] + x)
        if isinstance(node, q.Composite):        # per candidate: its own rows through the (rid, param) index
            sq, a = self._composite(node, correlate=r)
            return f"EXISTS ({sq})", a
        sub = self.rid_set(rtype, node)          # chain, _has: evaluate the set once
        if sub is None:
            raise TypeError(f"unsupported query node {node!r}")
        return f"{r}.rid IN ({sub[0]})", sub[1]

    # ---- sorting ---------------------------------------------------------------
    def sort_terms(self, keys: list[SortKey], r: str = "r") -> list[tuple[str, list, bool]]:
        """(sql expression, args, descending) per term; missing values sort last (search.html#sort)."""
        terms = []
        for k in keys:
            if k.kind == "_id":
                terms.append((f"{r}.id", [], k.descending))
                continue
            col = KIND_MODULES[k.kind].SORT_COLUMNS["desc" if k.descending else "asc"]
            agg = "max" if k.descending else "min"
            a = self.alias("o")
            expr = (f"(SELECT {agg}({a}.{col}) FROM {table(k.kind)} {a} INDEXED BY {table(k.kind)}_rid "
                    f"WHERE {a}.rid = {r}.rid AND {a}.param = ?)")
            terms.append((f"({expr} IS NULL)", [self.pid(k.key)], False))
            terms.append((expr, [self.pid(k.key)], k.descending))
        terms.append((f"{r}.rid", [], False))
        return terms
