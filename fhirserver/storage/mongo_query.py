"""Compiles the backend-neutral query tree (search/query.py) to MongoDB filter documents.

Every leaf is an $elemMatch over one kind's index entries, its condition built by the kind module
(search/kinds/*.mongo): field names come from this code, values are data (no $where, no
JavaScript; string prefixes are ranges; :contains is a regex of the re.escape()d value). A chain
or _has first selects the other side with its own indexed query (server-side, ids only) and feeds
the ids to $in; the guard (access control) is ANDed into every set of a type the search touches,
the other side of chains and _has included.

Every command of a search carries maxTimeMS, what is left of the search's time budget
(search/limits.py); a command the server stops (ExecutionTimeout) is answered 503, like SQLite's.
"""
from __future__ import annotations

import contextlib
import math

from pymongo.errors import ExecutionTimeout

from ..errors import BadRequest
from ..search import limits
from ..search import query as q
from ..search.kinds import KIND_MODULES
from ..search.kinds.special_kind import EARTH_KM
from .mongo_layout import index_field, unit_vector

NOTHING = {"_id": {"$in": []}}
MAX_LINKED = 10000      # ids a chain or _has may hand on; beyond, the search must be narrowed


def max_time(find: bool = False) -> dict:
    """The maxTimeMS keyword of the next command: `max_time_ms` for find(), `maxTimeMS` for
    aggregate() and count_documents(); none without a deadline; SearchTimedOut when spent."""
    ms = limits.remaining_ms()
    if ms is None:
        return {}
    return {"max_time_ms": ms} if find else {"maxTimeMS": ms}


@contextlib.contextmanager
def timeouts():
    """MongoDB's ExecutionTimeout (maxTimeMS exceeded) as the same error as SQLite's deadline."""
    try:
        yield
    except ExecutionTimeout:
        raise limits.timed_out() from None


class Compiler:
    def __init__(self, resources, guard=None, session=None):
        self.resources = resources
        self.guard = guard
        self.session = session
        self._scope: tuple[str, tuple[str, ...]] | None = None     # (type, ids) the set being compiled is within

    def filter(self, rtype: str, node) -> dict:
        """Current resources of rtype matching node, within the guard. When node names the ids the set
        is within (a read, a visibility check, an include: an And with an IdIn), chains and _has in the
        query and the guard start from those resources (scoped): they hand on only the ids those few
        resources reach, however many match on the other side (MAX_LINKED bounds unscoped ones). A guard
        holding chains or _has is likewise scoped by the query's own matches when they are few (a
        hospital's DiagnosticReport?patient=X starts from that patient's reports)."""
        restriction = self.guard(rtype) if self.guard else None
        if restriction is q.DENY:
            return NOTHING
        saved, ids = self._scope, _scope_ids(node)
        self._scope = (rtype, ids) if ids is not None else None     # the query's own links start there too
        try:
            query = self.node(rtype, node)
            if ids is None and restriction is not None and query and _links(restriction):
                ids = self._candidates(rtype, query)
            self._scope = (rtype, ids) if ids is not None else None
            clauses = [{"type": rtype, "deleted": False}, query]
            if restriction is not None:
                clauses.append(self.node(rtype, restriction))
        finally:
            self._scope = saved
        return {"$and": [c for c in clauses if c]}

    def _candidates(self, rtype: str, query: dict) -> tuple[str, ...] | None:
        """The ids of rtype resources matching the query's own criteria, when they are few enough to
        scope a guard's chains and _has by (None: too many; the guard is then compiled whole). Only ever
        used to narrow the guard: the set answered is still the query AND the guard."""
        cursor = self.resources.find({"$and": [{"type": rtype, "deleted": False}, query]}, {"id": 1, "_id": 0},
                                     session=self.session, limit=MAX_LINKED + 1, **max_time(find=True))
        found = tuple(d["id"] for d in cursor)
        return found if len(found) <= MAX_LINKED else None

    def _scoped(self, rtype: str) -> tuple[str, ...] | None:
        return self._scope[1] if self._scope is not None and self._scope[0] == rtype else None

    def node(self, rtype: str, n) -> dict:
        if isinstance(n, q.And):
            parts = [self.node(rtype, p) for p in n.parts]
            return {"$and": parts} if parts else {}
        if isinstance(n, q.Or):
            return {"$or": [self.node(rtype, p) or {"_id": {"$exists": True}} for p in n.parts]} if n.parts \
                else NOTHING
        if isinstance(n, q.Not):
            return {"$nor": [self.node(rtype, n.node) or {"_id": {"$exists": True}}]}
        if isinstance(n, q.IdIn):           # by _id ("Type/id"): the primary index
            return {"_id": {"$in": [f"{rtype}/{i}" for i in n.ids]}}
        if isinstance(n, q.Match) and n.kind == "special":
            return near(n.key, n.cond)
        if isinstance(n, q.Match):
            return {index_field(n.kind): {"$elemMatch": {"p": n.key, **KIND_MODULES[n.kind].mongo(n.cond)}}}
        if isinstance(n, q.Missing):
            present = {"$or": [{index_field(kind): {"$elemMatch": {"p": key}}} for kind, key in n.keys]}
            return {"$nor": [present]} if n.missing else present
        if isinstance(n, q.Composite):
            parts = {f"c{i}": {"$elemMatch": KIND_MODULES[kind].mongo(cond)} for i, (kind, cond) in enumerate(n.parts)}
            return {"ix.composite": {"$elemMatch": {"p": n.key, **parts}}}
        if isinstance(n, q.Chain):
            scoped = self._scoped(rtype)
            target = n.node if scoped is None else q.And((q.IdIn(self._targets(rtype, scoped, n)), n.node))
            with q.unguarded(self, n):
                ids = self.ids(n.target_type, target, f"the chain through {n.key}")
            return {"ix.reference": {"$elemMatch": {"p": n.key, "target_type": n.target_type,
                                                     "target_id": {"$in": ids}}}}
        if isinstance(n, q.Has):
            scoped = self._scoped(rtype)
            with q.unguarded(self, n):
                return {"_id": {"$in": [f"{rtype}/{i}" for i in self.referenced(n, rtype, scoped)]}}
        if n is q.DENY:
            return NOTHING
        raise TypeError(f"unsupported query node {n!r}")

    def ids(self, rtype: str, node, what: str) -> list[str]:
        cursor = self.resources.find(self.filter(rtype, node), {"id": 1, "_id": 0}, session=self.session,
                                     limit=MAX_LINKED + 1, **max_time(find=True))
        ids = [d["id"] for d in cursor]
        _cap(ids, what)
        return ids

    def _targets(self, rtype: str, ids: tuple[str, ...], n: q.Chain) -> tuple[str, ...]:
        """The n.target_type ids these rtype resources refer to through n.key."""
        docs = self.resources.find({"_id": {"$in": [f"{rtype}/{i}" for i in ids]}}, {"ix.reference": 1},
                                   session=self.session, **max_time(find=True))
        return tuple(sorted({r["target_id"] for d in docs for r in (d.get("ix") or {}).get("reference") or ()
                             if r.get("p") == n.key and r.get("target_type") == n.target_type}))

    def referenced(self, n: q.Has, rtype: str, scoped: tuple[str, ...] | None = None) -> list[str]:
        """Ids of rtype resources that some n.source_type resource matching n.node refers to via n.key
        (scoped: only among these ids)."""
        match = self.filter(n.source_type, n.node)
        if scoped is not None:
            match = {"$and": [match, {"ix.reference": {"$elemMatch": {"p": n.key, "target_type": rtype,
                                                                       "target_id": {"$in": list(scoped)}}}}]}
        pipeline = [
            {"$match": match},
            {"$project": {"r": "$ix.reference"}},
            {"$unwind": "$r"},
            {"$match": {"r.p": n.key, "r.target_type": rtype}},
            {"$group": {"_id": "$r.target_id"}},
            {"$limit": MAX_LINKED + 1},
        ]
        ids = [d["_id"] for d in self.resources.aggregate(pipeline, session=self.session, **max_time())]
        _cap(ids, f"_has:{n.source_type}")
        return ids


def near(key: str, cond) -> dict:
    """`near` exactly, the same on every MongoDB server and on mongomock: the kind's bounding box
    (a superset, served by the ix_special_lat_lon index) and the great-circle test on the unit
    vectors of the rows (mongo_layout.unit_vector): the haversine h of two points is a quarter of
    their squared chord, so `distance <= km` is `chord^2 <= 4 sin^2(km / 2R)`: arithmetic only
    (MongoDB refuses $expr inside $elemMatch, mongomock has neither geo operators nor $sin), at the
    top level over the rows of the parameter. A row without a unit vector (written before it was
    laid out so: `medport reindex`) is never near anything."""
    box = {index_field("special"): {"$elemMatch": {"p": key, **KIND_MODULES["special"].mongo(cond)}}}
    half_angle = cond.km / (2 * EARTH_KM)
    if not half_angle < math.pi / 2:        # half the globe's circumference or more: every point
        return box
    limit = 4 * math.sin(half_angle) ** 2
    centre = unit_vector(cond.lat, cond.lon)
    chord2 = {"$add": [{"$multiply": [d, d]} for d in (
        {"$subtract": [{"$ifNull": [f"$$r.{f}", 9.0]}, centre[f]]} for f in ("ux", "uy", "uz"))]}
    rows = {"$filter": {"input": {"$ifNull": [f"${index_field('special')}", []]}, "as": "r",
                        "cond": {"$and": [{"$eq": ["$$r.p", key]}, {"$lte": [chord2, limit]}]}}}
    return {"$and": [box, {"$expr": {"$gt": [{"$size": rows}, 0]}}]}


def _links(node) -> bool:
    """Whether a node holds a chain or _has (a guard whose evaluation hands on ids)."""
    if isinstance(node, (q.Chain, q.Has)):
        return True
    if isinstance(node, (q.And, q.Or)):
        return any(_links(p) for p in node.parts)
    return isinstance(node, q.Not) and _links(node.node)


def _scope_ids(node) -> tuple[str, ...] | None:
    """The ids a query node confines its set to: an IdIn, alone or in a top-level And."""
    if isinstance(node, q.IdIn):
        return node.ids
    if isinstance(node, q.And):
        found = [p.ids for p in node.parts if isinstance(p, q.IdIn)]
        if found:
            return tuple(sorted(set(found[0]).intersection(*found[1:])))
    return None


def _cap(ids: list, what: str) -> None:
    if len(ids) > MAX_LINKED:
        raise BadRequest(f"{what} selects more than {MAX_LINKED} resources on this store; add criteria to narrow it")
