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
from ..search.kinds import KIND_MODULES
from ..search.results import SortKey
from .sqlite_index import table

ESTIMATE_CAP = 5000


class Compiler:
    def __init__(self, conn, param_ids: dict[str, int]):
        self.conn = conn
        self.ids = param_ids
        self._alias = itertools.count()

    def alias(self, prefix="i") -> str:
        return f"{prefix}{next(self._alias)}"

    def pid(self, key: str) -> int:
        return self.ids.get(key, -1)

    # ---- top level -------------------------------------------------------------
    def where(self, rtype: str, node, r: str = "r") -> tuple[str, list]:
        """WHERE clause for current resources of `rtype` matching `node`."""
        sql, args = [f"{r}.type = ?", f"{r}.deleted = 0"], [rtype]
        clauses = list(node.parts) if isinstance(node, q.And) else [node]
        driver = self._pick_driver(clauses)
        for i, clause in enumerate(clauses):
            s, a = self.node(clause, r, driver=(i == driver))
            sql.append(s)
            args += a
        return " AND ".join(sql), args

    def _pick_driver(self, clauses) -> int | None:
        best, best_n = None, None
        for i, clause in enumerate(clauses):
            n = self._estimate(clause)
            if n is not None and (best_n is None or n < best_n):
                best, best_n = i, n
        return best

    def _estimate(self, clause) -> int | None:
        if isinstance(clause, q.IdIn):
            return len(clause.ids)
        sub = self._rid_set(clause, "r")
        if sub is None:
            return None
        s, a = sub
        return self.conn.execute(f"SELECT count(*) FROM ({s} LIMIT {ESTIMATE_CAP})", a).fetchone()[0]

    # ---- nodes -----------------------------------------------------------------
    def node(self, node, r: str, driver: bool = False) -> tuple[str, list]:
        if isinstance(node, q.IdIn):
            return f"{r}.id IN ({', '.join('?' * len(node.ids))})", list(node.ids)
        if isinstance(node, q.And):
            if not node.parts:
                return "1", []
            parts = [self.node(p, r) for p in node.parts]
            return "(" + " AND ".join(s for s, _ in parts) + ")", [x for _, a in parts for x in a]
        if isinstance(node, q.Not):
            s, a = self.node(node.node, r)
            return f"NOT {s}", a
        if isinstance(node, q.Missing):
            exists = " OR ".join(f"EXISTS (SELECT 1 FROM {table(k)} m WHERE m.rid = {r}.rid AND m.param = ?)"
                                 for k, _key in node.keys)
            args = [self.pid(key) for _k, key in node.keys]
            return (f"NOT ({exists})" if node.missing else f"({exists})"), args
        sub = self._rid_set(node, r)
        if sub is not None:
            s, a = sub
            if driver:
                return f"{r}.rid IN ({s})", a
            return f"EXISTS ({s} AND {self._last_alias}.rid = {r}.rid)", a   # correlated probe
        if isinstance(node, q.Or):
            parts = [self.node(p, r) for p in node.parts]
            return "(" + " OR ".join(s for s, _ in parts) + ")", [x for _, a in parts for x in a]
        if isinstance(node, q.Chain):
            return self._chain(node, r)
        if isinstance(node, q.Has):
            return self._has(node, r)
        raise TypeError(f"unsupported query node {node!r}")

    def _rid_set(self, node, r: str):
        """A `SELECT i.rid FROM idx ... WHERE ...` for index leaves (and Ors of one key), else None."""
        if isinstance(node, q.Match):
            matches = [node]
        elif isinstance(node, q.Or) and node.parts and all(isinstance(p, q.Match) for p in node.parts) \
                and len({(p.kind, p.key) for p in node.parts}) == 1:
            matches = list(node.parts)
        elif isinstance(node, q.Composite):
            return self._composite(node)
        else:
            return None
        kind, key = matches[0].kind, matches[0].key
        a = self.alias()
        conds, args = [], [self.pid(key)]
        for m in matches:
            s, x = KIND_MODULES[kind].sql(m.cond, a)
            conds.append(s)
            args += x
        self._last_alias = a
        return f"SELECT {a}.rid FROM {table(kind)} {a} WHERE {a}.param = ? AND ({' OR '.join(conds)})", args

    def _composite(self, node: q.Composite):
        aliases = [self.alias("c") for _ in node.parts]
        froms, conds, args = [], [], []
        for i, ((kind, cond), a) in enumerate(zip(node.parts, aliases)):
            froms.append(f"{table(kind)} {a}")
            s, x = KIND_MODULES[kind].sql(cond, a)
            conds.append(f"{a}.param = ? AND {s}")
            args += [self.pid(f"{node.key}#{i}")] + x
            if i:
                conds.append(f"{a}.rid = {aliases[0]}.rid AND {a}.grp = {aliases[0]}.grp")
        self._last_alias = aliases[0]
        return f"SELECT {aliases[0]}.rid FROM {', '.join(froms)} WHERE {' AND '.join(conds)}", args

    def _chain(self, node: q.Chain, r: str):
        """References of `key` whose target (type, id) is a current resource matching the inner node."""
        i, t = self.alias(), self.alias("t")
        inner, inner_args = self.where(node.target_type, node.node, t)
        return (f"EXISTS (SELECT 1 FROM {table('reference')} {i} WHERE {i}.rid = {r}.rid AND {i}.param = ? "
                f"AND {i}.target_type = ? AND {i}.target_id IN (SELECT {t}.id FROM resource {t} WHERE {inner}))",
                [self.pid(node.key), node.target_type] + inner_args)

    def _has(self, node: q.Has, r: str):
        """Some current source resource matching the inner node refers to r through `key`."""
        i, s = self.alias(), self.alias("s")
        inner, inner_args = self.where(node.source_type, node.node, s)
        return (f"{r}.id IN (SELECT {i}.target_id FROM {table('reference')} {i} JOIN resource {s} "
                f"ON {s}.rid = {i}.rid WHERE {i}.param = ? AND {i}.target_type = {r}.type AND {inner})",
                [self.pid(node.key)] + inner_args)

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
            expr = f"(SELECT {agg}({a}.{col}) FROM {table(k.kind)} {a} WHERE {a}.rid = {r}.rid AND {a}.param = ?)"
            terms.append((f"({expr} IS NULL)", [self.pid(k.key)], False))
            terms.append((expr, [self.pid(k.key)], k.descending))
        terms.append((f"{r}.rid", [], False))
        return terms
