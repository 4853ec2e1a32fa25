"""Running searches on SQLite: keyset paging, sorting, totals and includes.

Paging is keyset-based: the cursor holds the sort values and rid of the last
row served, so writes between pages never shift or repeat results
(search.html#paging asks that pages stay consistent).

Statements past the search's deadline are aborted by the connection's progress handler
(search/limits.py) and answered 503; a query too large for SQLite's parser (nesting, expression
depth, compound terms) is answered 400 as too costly, never 500.
"""
from __future__ import annotations

import contextlib
import functools
import sqlite3

from ..definitions import resource_types
from ..errors import TooCostly
from ..search import limits
from ..search import query as q
from ..search.kinds import KIND_MODULES, ranges
from ..search.kinds.date_kind import DateCmp
from .base import ESTIMATE_TOTAL_CAP, MAX_INCLUDES, Page, decode_cursor, encode_cursor, include_rounds
from .sqlite_index import table
from .sqlite_query import ESTIMATE_CAP, Compiler, top_clauses

VERSION_COLS = "r.type, r.id, v.version, v.last_updated, v.method, v.body, v.blob"
_CONSTANTS = ("0", "1", "NULL")
WALK_MIN = 1000            # sorted results at least this large walk the sort index (see docs/search.md)


def _estimate_or_all(c: Compiler, rtype: str, node) -> int:
    estimate = c.driver_estimate(rtype, node)
    return ESTIMATE_CAP if estimate is None else estimate


def _after(terms, values) -> tuple[str, list]:
    """Rows strictly after `values` in the order of `terms` (lexicographic, NULL-aware)."""
    ors, args = [], []
    for j, (expr, targs, desc) in enumerate(terms):
        if values[j] is None:
            continue        # nothing sorts after NULL in this term (NULLs last)
        conj, cargs = [], []
        for i in range(j):
            conj.append(f"{terms[i][0]} IS ?")
            cargs += terms[i][1] + [values[i]]
        conj.append(f"{expr} {'<' if desc else '>'} ?")   # NULLs are ordered by the IS NULL term before
        cargs += targs + [values[j]]
        ors.append("(" + " AND ".join(conj) + ")")
        args += cargs
    return ("(" + " OR ".join(ors) + ")" if ors else "0"), args


_TOO_LARGE = ("parser stack overflow", "expression tree is too large", "too many terms in compound select",
              "too many sql variables", "too many from clause terms", "at most 64 tables in a join",
              "like or glob pattern too complex")
INCLUDE_CHUNK = 200     # frontier resources per include statement (an OR of pairs: SQLite's expression depth)


@contextlib.contextmanager
def statement_errors():
    """SQLite's complaints about a query, as the typed errors of a too costly search."""
    try:
        yield
    except sqlite3.OperationalError as e:
        message = str(e).lower()
        if "interrupt" in message and limits.expired():
            raise limits.timed_out() from None
        if any(m in message for m in _TOO_LARGE):
            raise TooCostly(f"This search is too complex for the store ({e}); narrow it: fewer values, "
                            "parameters or chain links") from None
        raise


def _bounded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with statement_errors():
            return fn(*args, **kwargs)
    return wrapper


@_bounded
def search(conn, ids, rtype: str, node, *, sort=(), limit: int, cursor: str | None, total: str,
           row_to_version, guard=None) -> Page:
    c = Compiler(conn, ids, guard)
    terms = c.sort_terms(list(sort))
    values = decode_cursor(cursor, len(terms)) if cursor is not None else None
    if sort and sort[0].kind != "_id" and _estimate_or_all(c, rtype, node) >= WALK_MIN:
        rows = _walk_sort_index(c, rtype, node, sort[0], terms, values, limit)
        where, args = c.where(rtype, node) if total != "none" else ("", [])
    else:
        where, args = c.where(rtype, node)
        rows = _page_rows(conn, where, args, terms, values, limit)
    items = rows[:limit]
    known = len(rows) if values is None and len(rows) <= limit else None
    # one index leaf (no chain): only the guard of rtype itself could narrow the count
    leaf = c.leaf_set(rtype, node) if total != "none" and known is None and (guard is None or guard(rtype) is None) \
        else None
    count = _count(conn, *(leaf or (f"SELECT r.rid FROM resource r WHERE {where}", args)), total, known)
    next_cursor = encode_cursor(list(items[-1][1:])) if len(rows) > limit and items else None
    return Page(_versions(conn, [r[0] for r in items], row_to_version), next_cursor, count)


def _count(conn, rids_sql: str, args: list, total: str, known: int | None) -> int | None:
    """Bundle.total (search.html#total): accurate counts every match; estimate counts up to
    ESTIMATE_TOTAL_CAP and leaves the total out beyond it; none leaves it out. A first page
    that holds every match knows its total for free."""
    if total == "none":
        return None
    if known is not None:
        return known
    if total == "accurate":
        return conn.execute(f"SELECT count(DISTINCT rid) FROM ({rids_sql})", args).fetchone()[0]
    n = conn.execute(f"SELECT count(DISTINCT rid) FROM ({rids_sql} LIMIT ?)",
                     args + [ESTIMATE_TOTAL_CAP + 1]).fetchone()[0]
    return n if n <= ESTIMATE_TOTAL_CAP else None


def _versions(conn, rids: list[int], row_to_version) -> list:
    """The current versions of a page, in page order (bodies are read for the page only)."""
    if not rids:
        return []
    rows = conn.execute(f"SELECT r.rid, {VERSION_COLS} FROM resource r JOIN version v ON v.rid = r.rid "
                        f"AND v.version = r.version WHERE r.rid IN ({', '.join('?' * len(rids))})", rids).fetchall()
    by_rid = {row[0]: row_to_version(row[1:]) for row in rows}
    return [by_rid[rid] for rid in rids]


def _page_rows(conn, where, args, terms, values, limit, source="resource r") -> list:
    """(rid, *term values) of one page in the order of `terms`, after the cursor position `values`."""
    page_where, page_args = where, list(args)
    if values is not None:
        s, a = _after(terms, values)
        page_where += " AND " + s
        page_args += a
    select_terms = ", ".join(t for t, _a, _d in terms)
    ordered = [(t, a, d) for t, a, d in terms if t not in _CONSTANTS]   # ORDER BY 1 would mean column 1
    order = ", ".join(f"{t}{' DESC' if d else ''}" for t, _a, d in ordered)
    select_args = [x for _t, a, _d in terms for x in a]
    order_args = [x for _t, a, _d in ordered for x in a]
    return conn.execute(
        f"SELECT r.rid, {select_terms} FROM {source} WHERE {page_where} ORDER BY {order} LIMIT ?",
        select_args + page_args + order_args + [limit + 1]).fetchall()


def _walk_sort_index(c: Compiler, rtype: str, node, key, terms, values, limit) -> list:
    """A large result sorted by a parameter: walk that parameter's index in order and stop after a
    page, instead of sorting every match (search.html#sort). Each resource is met once, at its
    sort value (min for ascending, max for descending); resources without a value come last.
    The (param, value, rid) indexes give exactly this order, ties included, with no sorting."""
    module = KIND_MODULES[key.kind]
    col = module.SORT_COLUMNS["desc" if key.descending else "asc"]
    agg, pid, t = ("max" if key.descending else "min"), c.pid(key.key), table(key.kind)
    where, args = c.where(rtype, node, use_driver=False)
    stop = _walk_stop(node, key)
    if stop is not None:                # the index range ends where no match can sort any more
        where, args = f"{where} AND w.{col} {stop[0]} ?", args + [stop[1]]
    present = (f"{t} w JOIN resource r ON r.rid = w.rid AND w.param = ? "
               f"AND w.{col} = (SELECT {agg}(x.{col}) FROM {t} x INDEXED BY {t}_rid "
               f"WHERE x.rid = w.rid AND x.param = w.param) "
               f"AND NOT EXISTS (SELECT 1 FROM {t} y INDEXED BY {t}_rid WHERE y.rid = w.rid AND y.param = w.param "
               f"AND y.{col} = w.{col} AND y.rowid < w.rowid)")
    walk_terms = [("0", [], False), (f"w.{col}", [], key.descending)] + terms[2:-1] + [("w.rid", [], False)]
    rows = []
    if values is None or values[0] == 0:
        seek, seek_args = "", []
        if values is not None and len(walk_terms) == 3:     # one key: a range the index can seek to
            cmp, v, rid = ("<" if key.descending else ">"), values[1], values[2]
            seek = f" AND w.{col} {cmp}= ? AND (w.{col} {cmp} ? OR w.rid > ?)"
            seek_args = [v, v, rid]
            rows = _page_rows(c.conn, where + seek, [pid] + args + seek_args, walk_terms, None, limit,
                              source=present)
        else:
            rows = _page_rows(c.conn, where, [pid] + args, walk_terms, values, limit, source=present)
    if len(rows) > limit or _requires_value(node, key):
        return rows
    missing = f"NOT EXISTS (SELECT 1 FROM {t} m WHERE m.rid = r.rid AND m.param = ?)"
    missing_terms = [("1", [], False), ("NULL", [], key.descending)] + terms[2:]
    after = values if values is not None and values[0] == 1 else None
    where, args = c.where(rtype, node)
    return rows + _page_rows(c.conn, f"{where} AND {missing}", args + [pid], missing_terms, after,
                             limit - len(rows))


def _same_param(node, key) -> list | None:
    """The conditions of a top-level clause that only rows of the sort parameter satisfy (a Match
    on it, or an OR of such Matches), else None."""
    parts = node.parts if isinstance(node, q.Or) and node.parts else [node]
    if all(isinstance(p, q.Match) and p.kind == key.kind and p.key == key.key for p in parts):
        return [p.cond for p in parts]
    return None


def _requires_value(node, key) -> bool:
    """Some top-level clause needs a row of the sort parameter: resources without one cannot match."""
    return any(_same_param(clause, key) is not None for clause in top_clauses(node))


def _walk_stop(node, key) -> tuple[str, object] | None:
    """Where a walk of the date sort index may stop (ranges.sort_bound): the tightest bound of the
    top-level clauses on the sort parameter (an OR: its loosest part's). Date rows always have
    low <= high and no NULLs; the walk's start is never narrowed (a matching resource may sort
    before any value the query names: see sort_bound)."""
    if key.kind != "date":
        return None
    tighter = (lambda b: (-b[1], b[0] == ">=")) if key.descending else (lambda b: (b[1], b[0] == "<="))
    best = None
    for clause in top_clauses(node):
        conds = _same_param(clause, key)
        if conds is None or not all(isinstance(cond, DateCmp) for cond in conds):
            continue
        bounds = [ranges.sort_bound(cond.prefix, cond.lo, cond.hi, key.descending) for cond in conds]
        if any(b is None for b in bounds):
            continue
        loosest = max(bounds, key=tighter)
        if best is None or tighter(loosest) < tighter(best):
            best = loosest
    return best


@_bounded
def includes(conn, ids, page_items, specs, row_to_version, guard=None) -> list:
    """Resources named by _include / _revinclude (with :iterate), current, not deleted, and
    (with a guard) only those the guard lets through for their type."""
    c = Compiler(conn, ids, guard)
    return include_rounds(page_items, specs, lambda spec, frontier: _guarded(
        c, _one_include(conn, c, spec, frontier), row_to_version))


def _guarded(c: Compiler, rows: list, row_to_version) -> list:
    """Rows (rid, *version) kept only if the guard admits them, checked in SQL per type."""
    if c.guard is None or not rows:
        return [row_to_version(r[1:]) for r in rows]
    by_type: dict[str, list] = {}
    for r in rows:
        by_type.setdefault(r[1], []).append(r)
    kept = []
    for rtype, group in by_type.items():
        where, args = c.where(rtype, q.MATCH_ALL)
        rids = [r[0] for r in group]
        ok = {rid for (rid,) in c.conn.execute(
            f"SELECT r.rid FROM resource r WHERE {where} AND r.rid IN ({', '.join('?' * len(rids))})",
            args + rids)}
        kept += [row_to_version(r[1:]) for r in group if r[0] in ok]
    return kept


def _one_include(conn, c: Compiler, spec, frontier) -> list:
    """(rid, *version columns) of what one _include/_revinclude adds to the frontier, INCLUDE_CHUNK
    frontier resources per statement."""
    rows, seen = [], set()
    for start in range(0, len(frontier), INCLUDE_CHUNK):
        for row in _one_include_chunk(conn, c, spec, frontier[start:start + INCLUDE_CHUNK]):
            if row[0] not in seen:
                seen.add(row[0])
                rows.append(row)
    return rows


def _one_include_chunk(conn, c: Compiler, spec, frontier) -> list:
    sources = [v for v in frontier if spec.source_type in ("*", v.type)] if not spec.reverse else frontier
    if not sources:
        return []
    ref = "idx_reference"
    if not spec.reverse:   # frontier resources -> what they refer to
        pairs = " OR ".join("(type = ? AND id = ?)" for _ in sources)
        cond = [f"i.rid IN (SELECT rid FROM resource WHERE {pairs})"]
        args = [x for v in sources for x in (v.type, v.id)]
        if spec.param_key:
            cond.append("i.param = ?")
            args.append(c.pid(spec.param_key))
        if spec.target_type:
            cond.append("i.target_type = ?")
            args.append(spec.target_type)
        sql = (f"SELECT DISTINCT r.rid, {VERSION_COLS} FROM {ref} i JOIN resource r ON r.type = i.target_type "
               f"AND r.id = i.target_id JOIN version v ON v.rid = r.rid AND v.version = r.version "
               f"WHERE r.deleted = 0 AND {' AND '.join(cond)}")
    else:                  # resources of source_type that refer to the frontier
        targets = [v for v in frontier if spec.target_type in (None, v.type)]
        if not targets:
            return []
        cond = ["(" + " OR ".join("(i.target_type = ? AND i.target_id = ?)" for _ in targets) + ")"]
        args = [x for v in targets for x in (v.type, v.id)]
        if spec.param_key:
            cond.append("i.param = ?")
            args.append(c.pid(spec.param_key))
        if spec.source_type != "*":
            cond.append("r.type = ?")
            args.append(spec.source_type)
        sql = (f"SELECT DISTINCT r.rid, {VERSION_COLS} FROM {ref} i JOIN resource r ON r.rid = i.rid "
               f"JOIN version v ON v.rid = r.rid AND v.version = r.version "
               f"WHERE r.deleted = 0 AND {' AND '.join(cond)} LIMIT {MAX_INCLUDES + 1}")
    return conn.execute(sql, args).fetchall()


@_bounded
def matches_in_tx(conn, ids, rtype, node, limit, row_to_version, guard=None) -> list:
    c = Compiler(conn, ids, guard)
    where, args = c.where(rtype, node)
    rows = conn.execute(f"SELECT {VERSION_COLS} FROM resource r JOIN version v ON v.rid = r.rid "
                        f"AND v.version = r.version WHERE {where} ORDER BY r.rid LIMIT ?", args + [limit]).fetchall()
    return [row_to_version(r) for r in rows]



def guarded_rids(conn, ids, guard, rtype: str | None) -> tuple[str, list]:
    """SELECT of the rids of current resources the guard admits: of one type, or of every type the
    guard does not deny (history under access control)."""
    c = Compiler(conn, ids, guard)
    parts, args = [], []
    for t in [rtype] if rtype else sorted(resource_types()):
        if guard(t) is q.DENY:
            continue
        where, a = c.where(t, q.MATCH_ALL)
        parts.append(f"SELECT r.rid FROM resource r WHERE {where}")
        args += a
    return (" UNION ALL ".join(parts) or "SELECT NULL WHERE 0"), args
