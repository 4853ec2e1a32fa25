"""Running searches on SQLite: keyset paging, sorting, totals and includes.

Paging is keyset-based: the cursor holds the sort values and rid of the last
row served, so writes between pages never shift or repeat results
(search.html#paging asks that pages stay consistent).
"""
from __future__ import annotations

import base64
import json

from ..errors import BadRequest
from .base import Page
from .sqlite_query import Compiler

VERSION_COLS = "r.type, r.id, v.version, v.last_updated, v.method, v.body, v.blob"
MAX_INCLUDES = 1000
MAX_ITERATE = 4


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise BadRequest(f"Invalid paging cursor {cursor!r}") from None
    if not isinstance(values, list) or len(values) != n or not all(
            v is None or isinstance(v, (int, float, str)) for v in values):
        raise BadRequest("Invalid paging cursor: it does not belong to this search")
    return values


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


def search(conn, ids, rtype: str, node, *, sort=(), limit: int, cursor: str | None, total: bool,
           row_to_version) -> Page:
    c = Compiler(conn, ids)
    where, args = c.where(rtype, node)
    terms = c.sort_terms(list(sort))
    count = conn.execute(f"SELECT count(*) FROM resource r WHERE {where}", args).fetchone()[0] if total else None
    page_where, page_args = where, list(args)
    if cursor is not None:
        s, a = _after(terms, decode_cursor(cursor, len(terms)))
        page_where += " AND " + s
        page_args += a
    select_terms = ", ".join(t for t, _a, _d in terms)
    order = ", ".join(f"{t}{' DESC' if d else ''}" for t, _a, d in terms)
    term_args = [x for _t, a, _d in terms for x in a]
    rows = conn.execute(
        f"SELECT {VERSION_COLS}, {select_terms} FROM resource r JOIN version v ON v.rid = r.rid "
        f"AND v.version = r.version WHERE {page_where} ORDER BY {order} LIMIT ?",
        term_args + page_args + term_args + [limit + 1]).fetchall()
    items = rows[:limit]
    next_cursor = encode_cursor(list(items[-1][7:])) if len(rows) > limit and items else None
    return Page([row_to_version(r) for r in items], next_cursor, count)


def includes(conn, ids, page_items, specs, row_to_version) -> list:
    """Resources named by _include / _revinclude (with :iterate), current and not deleted."""
    if not specs or not page_items:
        return []
    c = Compiler(conn, ids)
    seen = {(v.type, v.id) for v in page_items}
    frontier, found = list(page_items), []
    for round_ in range(MAX_ITERATE + 1):
        new = []
        for spec in specs:
            if round_ > 0 and not spec.iterate:
                continue
            for v in _one_include(conn, c, spec, frontier, row_to_version):
                if (v.type, v.id) not in seen and len(found) + len(new) < MAX_INCLUDES:
                    seen.add((v.type, v.id))
                    new.append(v)
        if not new:
            break
        found += new
        frontier = new
    return found


def _one_include(conn, c: Compiler, spec, frontier, row_to_version):
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
        sql = (f"SELECT DISTINCT {VERSION_COLS} FROM {ref} i JOIN resource r ON r.type = i.target_type "
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
        sql = (f"SELECT DISTINCT {VERSION_COLS} FROM {ref} i JOIN resource r ON r.rid = i.rid "
               f"JOIN version v ON v.rid = r.rid AND v.version = r.version "
               f"WHERE r.deleted = 0 AND {' AND '.join(cond)} LIMIT {MAX_INCLUDES + 1}")
    return [row_to_version(row) for row in conn.execute(sql, args).fetchall()]


def matches_in_tx(conn, ids, rtype, node, limit, row_to_version) -> list:
    c = Compiler(conn, ids)
    where, args = c.where(rtype, node)
    rows = conn.execute(f"SELECT {VERSION_COLS} FROM resource r JOIN version v ON v.rid = r.rid "
                        f"AND v.version = r.version WHERE {where} ORDER BY r.rid LIMIT ?", args + [limit]).fetchall()
    return [row_to_version(r) for r in rows]

