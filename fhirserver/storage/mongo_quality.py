"""The MongoDB store's quality facts (fhirserver/quality/, docs/data-quality.md), written in the write's
own unit of work (mongo_units.py: its session; mongomock's journal undoes them; a standalone mongod,
which has no transactions, applies the unit's held write first and its counters right after, so the
two always agree, as for any read inside a standalone unit).

quality_facts   {_id: "Type/id", row: the facts row (quality/facts.py), subjects: [Patient ids]}
quality_counts  {_id: "<digest>.<shard>", c: custodian, t: type, d: dimension, k: key, s: shard, n}

Counters are split into SHARDS documents by the resource written (crc32 of Type/id), so concurrent
transactions writing records of one (custodian, type) rarely $inc the same document (a WriteConflict
makes one of them run again); a report sums the shards.
"""
from __future__ import annotations

import hashlib
import json
import zlib

from pymongo import ASCENDING, IndexModel

from .quality_diff import counter_deltas

FACTS, COUNTS = "quality_facts", "quality_counts"
SHARDS = 8


def index_models() -> dict[str, list[IndexModel]]:
    return {FACTS: [IndexModel([("subjects", ASCENDING)], name="subjects")],
            COUNTS: [IndexModel([("c", ASCENDING), ("t", ASCENDING)], name="custodian_type")]}


def get(db, rtype: str, id: str, session) -> dict | None:
    doc = db[FACTS].find_one({"_id": f"{rtype}/{id}"}, {"row": 1}, session=session)
    return doc["row"] if doc else None


def put(db, unit, rtype: str, id: str, row: dict | None) -> None:
    """Apply the change in the unit: in its session (mongomock: journalled first); a standalone unit
    applies what it holds first."""
    unit.before_read()
    session = unit.session
    old = get(db, rtype, id, session)
    shard = zlib.crc32(f"{rtype}/{id}".encode()) % SHARDS
    deltas = counter_deltas(old, row)
    ids = [_counter_id(k, shard) for k in deltas]
    ops = [(_id, {"$inc": {"n": n}, "$setOnInsert": {"c": k[0], "t": k[1], "d": k[2], "k": k[3], "s": shard}})
           for _id, (k, n) in zip(ids, deltas.items(), strict=True)]
    key = f"{rtype}/{id}"

    def apply():
        for _id, update in ops:        # one update each (a record moves a handful of counters)
            db[COUNTS].update_one({"_id": _id}, update, upsert=True, session=session)
        if any(n < 0 for n in deltas.values()):
            db[COUNTS].delete_many({"_id": {"$in": ids}, "n": {"$lte": 0}}, session=session)
        if row is None:
            db[FACTS].delete_one({"_id": key}, session=session)
        elif old != row:
            db[FACTS].replace_one({"_id": key}, {"_id": key, "row": row, "subjects": row.get("subjects", [])},
                                  upsert=True, session=session)

    if unit.keeps_journal:
        unit.record(db[FACTS], key, db[FACTS].find_one({"_id": key}))
        before = {d["_id"]: d for d in db[COUNTS].find({"_id": {"$in": ids}})}
        for _id in ids:
            unit.record(db[COUNTS], _id, before.get(_id))
    apply()


def referrers(db, patient: str, session) -> list[tuple[str, str, dict]]:
    out = []
    for doc in db[FACTS].find({"subjects": patient}, {"row": 1}, session=session):
        rtype, _, id = doc["_id"].partition("/")
        out.append((rtype, id, doc["row"]))
    return out


def counts(db, custodian: str | None, rtype: str | None, session) -> list[tuple]:
    where = {**({"c": custodian} if custodian is not None else {}), **({"t": rtype} if rtype is not None else {})}
    summed: dict[tuple, int] = {}
    for d in db[COUNTS].find(where, {"c": 1, "t": 1, "d": 1, "k": 1, "n": 1, "_id": 0}, session=session):
        k = (d["c"], d["t"], d["d"], d["k"])
        summed[k] = summed.get(k, 0) + d["n"]
    return [(*k, n) for k, n in summed.items() if n > 0]


def clear(db, session) -> None:
    db[FACTS].delete_many({}, session=session)
    db[COUNTS].delete_many({}, session=session)


def _counter_id(k: tuple, shard: int) -> str:
    """A fixed-length _id whatever the (possibly long or hostile) custodian, type, dimension and key."""
    return hashlib.sha256(json.dumps(k).encode()).hexdigest()[:32] + f".{shard}"
