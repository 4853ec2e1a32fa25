"""Running searches on MongoDB: keyset paging, sorting, totals and includes (the same results, in
the same order, as the SQLite store; the matcher in search/matcher.py is the reference for both).

Order: the sort keys (each resource at its smallest value for an ascending key, its largest for a
descending one; resources without a value last), then creation order (rid). Unsorted searches
walk the (type, deleted, rid) index; sorted ones are one aggregation pipeline that computes the
sort values server-side. The cursor holds the sort values and rid of the last resource served,
so writes between pages never shift or repeat results (search.html#paging). Every command carries
maxTimeMS from the search's time budget (mongo_query.max_time).
"""
from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from ..errors import BadRequest
from ..search import query as q
from ..search.kinds import KIND_MODULES
from .base import ESTIMATE_TOTAL_CAP, MAX_INCLUDES, Page, decode_cursor, encode_cursor, include_rounds
from .mongo_layout import VERSION_FIELDS, index_field, to_version
from .mongo_query import Compiler, max_time, timeouts


def search(resources, rtype: str, node, *, sort=(), limit: int, cursor: str | None, total: str,
           guard=None, session=None) -> Page:
    with timeouts():
        return _search(resources, rtype, node, sort=sort, limit=limit, cursor=cursor, total=total, guard=guard,
                       session=session)


def _search(resources, rtype: str, node, *, sort, limit: int, cursor: str | None, total: str,
            guard, session) -> Page:
    c = Compiler(resources, guard, session)
    where = c.filter(rtype, node)
    values_of, terms = sort_terms(list(sort))
    values = decode_cursor(cursor, len(terms) + 1) if cursor is not None else None
    pipeline = [{"$match": where}]
    if terms:
        pipeline += [{"$addFields": values_of}] if values_of else []
        pipeline.append({"$addFields": {name: expr for name, expr, _desc in terms}})
    if values is not None:
        order_terms = [(n, d) for n, _e, d in terms] + [("rid", False)]
        pipeline.append({"$match": _after(order_terms, values[:-1] + [_oid(values[-1])])})
    order = {name: -1 if desc else 1 for name, _e, desc in terms}
    order["rid"] = 1
    pipeline += [{"$sort": order}, {"$limit": limit + 1},
                 {"$project": {**VERSION_FIELDS, "rid": 1, **{name: 1 for name, _e, _d in terms}}}]
    docs = list(resources.aggregate(pipeline, session=session, **max_time()))
    items = docs[:limit]
    next_cursor = None
    if len(docs) > limit and items:
        last = items[-1]
        next_cursor = encode_cursor([last.get(name) for name, _e, _d in terms] + [str(last["rid"])])
    known = len(docs) if values is None and len(docs) <= limit else None
    return Page([to_version(d) for d in items], next_cursor, _count(resources, where, total, known, session))


def sort_terms(keys) -> tuple[dict, list[tuple[str, dict, bool]]]:
    """The sort values of each key (a first $addFields stage: the key's non-null values) and the
    terms: (field name, aggregation expression, descending); missing values sort last."""
    values_of, terms = {}, []
    for i, k in enumerate(keys):
        if k.kind == "_id":
            terms.append((f"_s{i}", "$id", k.descending))
            continue
        col = KIND_MODULES[k.kind].SORT_COLUMNS["desc" if k.descending else "asc"]
        rows = {"$filter": {"input": {"$ifNull": [f"${index_field(k.kind)}", []]}, "as": "r",
                            "cond": {"$and": [{"$eq": ["$$r.p", k.key]}, {"$ne": [f"$$r.{col}", None]}]}}}
        values_of[f"_v{i}"] = {"$map": {"input": rows, "as": "r", "in": f"$$r.{col}"}}
        terms.append((f"_m{i}", {"$cond": [{"$gt": [{"$size": f"$_v{i}"}, 0]}, 0, 1]}, False))
        terms.append((f"_s{i}", {"$max" if k.descending else "$min": f"$_v{i}"}, k.descending))
    return values_of, terms


def _after(terms: list[tuple[str, bool]], values: list) -> dict:
    """Documents strictly after `values` in the order of `terms` (lexicographic; None compares equal
    to a missing value, and nothing sorts after a missing value within its term)."""
    alternatives = []
    for j, (name, desc) in enumerate(terms):
        if values[j] is None:
            continue
        clause = {terms[i][0]: values[i] for i in range(j)}
        clause[name] = {"$lt" if desc else "$gt": values[j]}
        alternatives.append(clause)
    return {"$or": alternatives} if alternatives else {"_id": {"$in": []}}


def _oid(value) -> ObjectId:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        raise BadRequest("Invalid paging cursor: it does not belong to this search") from None


def _count(resources, where: dict, total: str, known: int | None, session) -> int | None:
    """Bundle.total (search.html#total), as in the SQLite store: accurate, estimate (exact up to
    ESTIMATE_TOTAL_CAP), or none; a first page that holds every match knows it for free."""
    if total == "none":
        return None
    if known is not None:
        return known
    if total == "accurate":
        return resources.count_documents(where, session=session, **max_time())
    n = resources.count_documents(where, limit=ESTIMATE_TOTAL_CAP + 1, session=session, **max_time())
    return n if n <= ESTIMATE_TOTAL_CAP else None


def matches(resources, rtype: str, node, limit: int, guard=None, session=None) -> list:
    """Up to `limit` current matches in creation order (conditional interactions, inside a transaction)."""
    with timeouts():
        where = Compiler(resources, guard, session).filter(rtype, node)
        return [to_version(d) for d in resources.find(where, VERSION_FIELDS, sort=[("rid", 1)], limit=limit,
                                                       session=session, **max_time(find=True))]


def includes(resources, page_items, specs, guard=None, session=None) -> list:
    """Resources named by _include / _revinclude (with :iterate), current, not deleted, each
    admitted by the guard for its type."""
    c = Compiler(resources, guard, session)
    with timeouts():
        return include_rounds(page_items, specs, lambda spec, frontier: _one_include(c, spec, frontier))


def _one_include(c: Compiler, spec, frontier) -> list:
    if not spec.reverse:        # frontier resources -> what they refer to
        sources = [f"{v.type}/{v.id}" for v in frontier if spec.source_type in ("*", v.type)]
        if not sources:
            return []
        ref = {"p": spec.param_key} if spec.param_key else {}
        if spec.target_type:
            ref["target_type"] = spec.target_type
        pipeline = [{"$match": {"_id": {"$in": sources}}}, {"$project": {"r": "$ix.reference"}}, {"$unwind": "$r"}]
        if ref:
            pipeline.append({"$match": {f"r.{k}": v for k, v in ref.items()}})
        pipeline.append({"$group": {"_id": {"t": "$r.target_type", "i": "$r.target_id"}}})
        targets: dict[str, list[str]] = {}
        for d in c.resources.aggregate(pipeline, session=c.session, **max_time()):
            if d["_id"].get("t") and d["_id"].get("i"):
                targets.setdefault(d["_id"]["t"], []).append(d["_id"]["i"])
        out = []
        for ttype, ids in targets.items():      # by id: the guard's chains start from these (mongo_query)
            out += _fetch(c, ttype, {"_id": {"$in": [f"{ttype}/{i}" for i in ids]}}, q.IdIn(tuple(ids)))
        return out
    targets = [v for v in frontier if spec.target_type in (None, v.type)]
    if not targets:
        return []
    ref = {"$or": [{"target_type": v.type, "target_id": v.id} for v in targets]}
    if spec.param_key:
        ref = {"$and": [{"p": spec.param_key}, ref]}
    refers = {"ix.reference": {"$elemMatch": ref}}
    if spec.source_type != "*":
        return _fetch(c, spec.source_type, refers)
    # $group, not distinct(): distinct is not allowed in transactions on sharded collections
    types = [d["_id"] for d in c.resources.aggregate(
        [{"$match": {"$and": [{"deleted": False}, refers]}}, {"$group": {"_id": "$type"}}], session=c.session,
        **max_time())]
    return [v for t in sorted(types) for v in _fetch(c, t, refers)]


def _fetch(c: Compiler, rtype: str, clause: dict, node=q.MATCH_ALL) -> list:
    where = c.filter(rtype, node)
    cursor = c.resources.find({"$and": [where, clause]}, VERSION_FIELDS, sort=[("rid", 1)],
                              limit=MAX_INCLUDES + 1, session=c.session, **max_time(find=True))
    return [to_version(d) for d in cursor]
