"""The production store: MongoDB (a replica set for a hospital network, a sharded cluster beyond).

Same contract as the SQLite store (storage/base.py); layout and indexes in mongo_layout.py and
docs/storage-mongodb.md. Every write runs in a unit of work (mongo_units.py): a multi-document
transaction on a replica set or cluster; on a standalone mongod single-resource writes only.
Versions are checked with a conditional replace on (_id, version), so two writers of the same
version cannot both win, transactions or not.
"""
from __future__ import annotations

import contextlib
import time

from bson import ObjectId
from bson.errors import BSONError
from pymongo.errors import DuplicateKeyError, PyMongoError

from ..errors import BadRequest, StoreUnavailable, VersionConflict
from . import mongo_search
from .base import Page, Store, Transaction, Version, Write, check_expected
from .mongo_blobs import MongoBlobStore
from .mongo_layout import (
    RECORDS,
    RESOURCES,
    VERSION_FIELDS,
    VERSIONS,
    expiry,
    index_doc,
    index_models,
    partition_key,
    resource_doc,
    to_version,
    version_doc,
)
from .mongo_query import MAX_LINKED, Compiler
from .mongo_units import SerialUnit, SessionUnit, StandaloneUnit, topology


def open_mongo(url: str) -> "MongoStore":
    """mongodb://host[:port]/dbname?replicaSet=... (the database comes from the URI). The tests use
    mongomock://localhost/dbname (in-memory, from the mongomock test dependency)."""
    if url.startswith("mongomock://"):
        import mongomock
        import mongomock.gridfs
        mongomock.gridfs.enable_gridfs_integration()
        client = mongomock.MongoClient("mongodb://" + url[len("mongomock://"):])
    else:
        from pymongo import MongoClient
        client = MongoClient(url, retryWrites=True, serverSelectionTimeoutMS=10000)
    try:
        db = client.get_default_database()
    except Exception:       # noqa: BLE001 - pymongo raises ConfigurationError, mongomock others
        raise SystemExit(f"The MongoDB URL {url!r} names no database: use mongodb://host/dbname") from None
    return MongoStore(client, db)


class MongoStore(Store):
    def __init__(self, client, db):
        self.client = client
        self.db = db
        self.resources = db[RESOURCES]
        self.versions = db[VERSIONS]
        self.records = db[RECORDS]
        self.blobs = MongoBlobStore(db)
        self.mock = type(client).__module__.startswith("mongomock")
        self.topology = "mock" if self.mock else topology(client)
        self.init_db()

    def init_db(self) -> dict[str, list[str]]:
        """Create every index (idempotent); returns their names by collection (`medport db init`)."""
        out = {}
        for name, models in index_models().items():
            out[name] = self.db[name].create_indexes(models)
        return out

    # ---- writes ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self):
        if self.mock:
            unit = SerialUnit(self)
        elif self.topology == "standalone":
            unit = StandaloneUnit()
        else:
            unit = SessionUnit(self.client)
        try:
            with unit:
                yield _MongoTransaction(self, unit)
        except (VersionConflict, BadRequest):
            raise
        except PyMongoError as e:
            raise StoreUnavailable(f"MongoDB store unavailable: {e}") from None

    # ---- reads -------------------------------------------------------------------------------
    def read(self, type, id):
        doc = self.resources.find_one({"_id": f"{type}/{id}"}, VERSION_FIELDS)
        return to_version(doc) if doc else None

    def vread(self, type, id, version):
        doc = self.versions.find_one({"_id": f"{type}/{id}/{version}"}, VERSION_FIELDS)
        return to_version(doc) if doc else None

    def history(self, type=None, id=None, *, since=None, limit=50, cursor=None, guard=None):
        clauses = []
        if id is not None:
            clauses.append({"r": f"{type}/{id}"})
        elif type is not None:
            clauses.append({"type": type})
        if since is not None:
            clauses.append({"last_updated": {"$gte": since}})
        if guard is not None:
            clauses.append({"r": {"$in": self._admitted(guard, type)}})
        where = {"$and": clauses} if clauses else {}
        total = self.versions.count_documents(where)
        if cursor is not None:
            try:
                where = {"$and": clauses + [{"seq": {"$lt": ObjectId(cursor)}}]}
            except Exception:       # noqa: BLE001 - bson.errors.InvalidId, TypeError
                raise BadRequest(f"Invalid paging cursor {cursor!r}") from None
        docs = list(self.versions.find(where, {**VERSION_FIELDS, "seq": 1}, sort=[("seq", -1)], limit=limit + 1))
        items = docs[:limit]
        more = len(docs) > limit and items
        return Page([to_version(d) for d in items], str(items[-1]["seq"]) if more else None, total)

    def _admitted(self, guard, rtype: str | None) -> list[str]:
        """"Type/id" of the current resources the guard admits (history under access control)."""
        from ..definitions import resource_types
        from ..search import query as q
        c = Compiler(self.resources, guard)
        filters = [c.filter(t, q.MATCH_ALL) for t in ([rtype] if rtype else sorted(resource_types()))
                   if guard(t) is not q.DENY]
        if not filters:
            return []
        keys = [d["_id"] for d in self.resources.find({"$or": filters}, {"_id": 1}, limit=MAX_LINKED + 1)]
        if len(keys) > MAX_LINKED:
            raise BadRequest(f"This history would span more than {MAX_LINKED} resources on this store; "
                             "ask for the history of one type or one resource")
        return keys

    def search(self, type, query, *, sort=(), limit=50, cursor=None, total="accurate", guard=None):
        with _query_errors():
            return mongo_search.search(self.resources, type, query, sort=sort, limit=limit, cursor=cursor,
                                       total=total, guard=guard)

    def includes(self, items, specs, guard=None):
        with _query_errors():
            return mongo_search.includes(self.resources, items, specs, guard)

    # ---- records -----------------------------------------------------------------------------
    def put_record(self, kind, key, value, expires_at=None):
        self.records.replace_one({"_id": f"{kind}/{key}"}, _record(kind, key, value, expires_at), upsert=True)

    def add_record(self, kind, key, value, expires_at=None):
        self.records.delete_one({"_id": f"{kind}/{key}", "expires_at": {"$ne": None, "$lte": time.time()}})
        try:
            self.records.insert_one(_record(kind, key, value, expires_at))
        except DuplicateKeyError:
            return False
        return True

    def get_record(self, kind, key):
        doc = self.records.find_one({"_id": f"{kind}/{key}", **_live()})
        return doc["value"] if doc else None

    def take_record(self, kind, key):
        doc = self.records.find_one_and_delete({"_id": f"{kind}/{key}"})
        if doc is None or (doc.get("expires_at") is not None and doc["expires_at"] <= time.time()):
            return None
        return doc["value"]

    def delete_record(self, kind, key):
        self.records.delete_one({"_id": f"{kind}/{key}"})

    def list_records(self, kind):
        return [(d["key"], d["value"]) for d in self.records.find({"kind": kind, **_live()}, sort=[("key", 1)])]

    # ---- maintenance -------------------------------------------------------------------------
    def reindex(self, rows_for, batch=500, progress=None):
        done, last = 0, None
        while True:
            where = {"deleted": False, **({"rid": {"$gt": last}} if last is not None else {})}
            docs = list(self.resources.find(where, {"type": 1, "id": 1, "body": 1, "rid": 1},
                                            sort=[("rid", 1)], limit=batch))
            if not docs:
                return done
            for d in docs:
                index = rows_for(d["type"], bytes(d["body"]))
                self.resources.update_one({"_id": d["_id"]}, {"$set": {
                    "ix": index_doc(index), "pk": partition_key(d["type"], d["id"], index)}})
            done += len(docs)
            last = docs[-1]["rid"]
            if progress:
                progress(done)

    def referenced_blobs(self) -> set[str]:
        return {b for b in self.versions.distinct("blob", {"blob": {"$ne": None}}) if b}

    def ping(self):
        try:
            self.db.command("ping")
        except PyMongoError as e:
            raise StoreUnavailable(f"MongoDB store unavailable: {e}") from None

    def close(self):
        """Close the client (its pool serves the whole process; `medport serve` closes the parent's
        before forking workers, which open their own)."""
        self.client.close()


class _MongoTransaction(Transaction):
    def __init__(self, store: MongoStore, unit):
        self.store = store
        self.unit = unit
        self.session = unit.session

    def read(self, type, id):
        doc = self.store.resources.find_one({"_id": f"{type}/{id}"}, VERSION_FIELDS, session=self.session)
        return to_version(doc) if doc else None

    def search(self, type, query, limit, guard=None):
        return mongo_search.matches(self.store.resources, type, query, limit, guard, self.session)

    def write(self, w: Write) -> Version:
        resources, versions, key = self.store.resources, self.store.versions, f"{w.type}/{w.id}"
        current = resources.find_one({"_id": key}, session=self.session)
        check_expected(current["version"] if current else 0, w)
        doc = resource_doc(w, current["rid"] if current else ObjectId())
        vdoc = version_doc(w)

        def apply():
            if current is not None:
                done = resources.replace_one({"_id": key, "version": current["version"]}, doc, session=self.session)
                if done.matched_count != 1:
                    raise VersionConflict(f"{key} was changed concurrently")
            else:
                try:
                    resources.insert_one(doc, session=self.session)
                except DuplicateKeyError:
                    raise VersionConflict(f"{key} was created concurrently") from None
            versions.insert_one(vdoc, session=self.session)

        if self.unit.holds_writes:
            self.unit.hold(w.type, w.id, apply)
        else:
            self.unit.record(resources, key, current)
            self.unit.record(versions, vdoc["_id"], None)
            apply()
        return Version(w.type, w.id, w.version, w.last_updated, w.method, w.body, w.blob)


@contextlib.contextmanager
def _query_errors():
    """A value BSON cannot carry (a lone surrogate) is the request's fault; a server away is not."""
    try:
        yield
    except BSONError:
        raise BadRequest("A search value cannot be encoded for MongoDB (e.g. a lone surrogate character)") from None
    except PyMongoError as e:
        raise StoreUnavailable(f"MongoDB store unavailable: {e}") from None


def _record(kind, key, value, expires_at) -> dict:
    return {"_id": f"{kind}/{key}", "kind": kind, "key": key, "value": value, "expires_at": expires_at,
            "expire": expiry(expires_at)}


def _live() -> dict:
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": time.time()}}]}
