"""The production store: MongoDB (a replica set for a hospital network, a sharded cluster beyond).

Same contract as the SQLite store (storage/base.py); layout and indexes in mongo_layout.py and
docs/storage-mongodb.md. Every write runs in a unit of work (mongo_units.py): a multi-document
transaction on a replica set or cluster; on a standalone mongod single-resource writes only.
Versions are checked with a conditional replace on (_id, version), so two writers of the same
version cannot both win, transactions or not.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import threading
import time

import bson
from bson import ObjectId
from bson.errors import BSONError
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from ..bounds import parse_int
from ..definitions import resource_types
from ..errors import BadRequest, NestedUnitOfWork, PayloadTooLarge, StoreUnavailable, VersionConflict
from ..search import query as q
from . import mongo_quality, mongo_search
from .base import Page, Store, Transaction, Version, Write, check_expected
from .mongo_blobs import MongoBlobStore
from .mongo_layout import (
    CLAIMS,
    JOURNAL,
    LOCKS,
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
from .mongo_units import SerialUnits, StoreRetry, unavailable, units_for


def open_mongo(url: str) -> "MongoStore":
    """mongodb://host[:port]/dbname?replicaSet=... (the database comes from the URI): its units of work
    follow the server's topology. The tests use mongomock://localhost/dbname (in-memory, from the
    mongomock test dependency), which runs units one at a time (SerialUnits)."""
    if url.startswith("mongomock://"):
        import mongomock
        import mongomock.gridfs
        mongomock.gridfs.enable_gridfs_integration()
        client = mongomock.MongoClient("mongodb://" + url[len("mongomock://"):])
        units = SerialUnits()
    else:
        from pymongo import MongoClient
        client = MongoClient(url, retryWrites=True, serverSelectionTimeoutMS=10000)
        units = None
    try:
        db = client.get_default_database()
    except Exception:       # noqa: BLE001 - pymongo raises ConfigurationError, mongomock others
        raise SystemExit(f"The MongoDB URL {url!r} names no database: use mongodb://host/dbname") from None
    return MongoStore(client, db, units or units_for(client))


class MongoStore(Store):
    def __init__(self, client, db, units):
        """units: the kind of unit of work (mongo_units: SessionUnits, StandaloneUnits, SerialUnits),
        chosen by whoever knows the client (open_mongo); the store never asks what its client is."""
        self.client = client
        self.db = db
        self.resources = db[RESOURCES]
        self.versions = db[VERSIONS]
        self.records = db[RECORDS]
        # durable before the response it vouches for, as a unit's commit is (mongo_units.py: majority)
        self.journal = db[JOURNAL].with_options(write_concern=WriteConcern("majority", j=True))
        self.blobs = MongoBlobStore(db)
        self.units = units
        self._local = threading.local()      # the unit of work (or read snapshot) open on this thread

    @property
    def topology(self) -> str:
        return self.units.topology

    def init(self) -> None:
        """Create every index (idempotent) and the collections written inside transactions."""
        with unavailable():
            for name, models in {**index_models(), **mongo_quality.index_models()}.items():
                self.db[name].create_indexes(models)
            if CLAIMS not in self.db.list_collection_names():     # written inside transactions: made beforehand
                try:
                    self.db.create_collection(CLAIMS)
                except (CollectionInvalid, OperationFailure):     # another process made it meanwhile
                    pass

    def describe(self) -> list[str]:
        with unavailable():
            lines = [f"{name}: {len(names)} indexes ({', '.join(names)})" for name, names in
                     ((name, sorted(self.db[name].index_information())) for name in index_models())]
        return lines + [f"MongoDB topology: {self.topology}"]

    # ---- writes ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self):
        if self.open_unit() is not None:
            raise NestedUnitOfWork("A second store transaction was opened inside an open one")
        if getattr(self._local, "snapshot", False):
            raise NestedUnitOfWork("A store transaction was opened inside a read snapshot (reads only)")
        unit = self.units.open()
        self._local.unit = unit
        try:
            with unit:
                self._local.tx = _MongoTransaction(self, unit)
                yield self._local.tx
        except (VersionConflict, BadRequest, PayloadTooLarge):
            raise
        except PyMongoError as e:
            raise StoreUnavailable(f"MongoDB store unavailable: {e}") from None
        finally:
            self._local.unit = self._local.tx = None

    def open_unit(self):
        return getattr(self._local, "tx", None)

    def last_write(self, type):
        with _query_errors():
            doc = self.versions.find_one({"type": type}, {"seq": 1}, sort=[("seq", -1)], session=self._session())
        return None if doc is None else doc.get("seq")

    @contextlib.contextmanager
    def snapshot(self):
        """A replica set or cluster: one session with snapshot=True for every read inside (one point in
        time). mongomock: no unit commits meanwhile (SerialUnits' lock). A standalone mongod has no
        snapshot reads: each read sees the latest writes (docs/storage-mongodb.md)."""
        if self.open_unit() is not None or getattr(self._local, "snapshot", False):
            yield
            return
        with _query_errors(), self.units.snapshot() as session:
            self._local.snapshot, self._local.read_session = True, session
            try:
                yield
            finally:
                self._local.snapshot, self._local.read_session = False, None

    def _session(self):
        """Reads inside an open unit of work see its writes (GET entries of a transaction Bundle run
        inside it): they join its session; a standalone unit applies what it holds first. Reads inside
        a read snapshot use its session."""
        unit = getattr(self._local, "unit", None)
        if unit is None:
            return getattr(self._local, "read_session", None)
        unit.before_read()
        return unit.session

    # ---- reads -------------------------------------------------------------------------------
    def read(self, type, id):
        with _query_errors():
            doc = self.resources.find_one({"_id": f"{type}/{id}"}, VERSION_FIELDS, session=self._session())
        return to_version(doc) if doc else None

    def vread(self, type, id, version):
        with _query_errors():
            doc = self.versions.find_one({"_id": f"{type}/{id}/{version}", "r": f"{type}/{id}"}, VERSION_FIELDS,
                                         session=self._session())
        return to_version(doc) if doc else None

    def history(self, type=None, id=None, *, since=None, limit=50, cursor=None, guard=None):
        """Instance history in version order; type and system history in write order (seq: an ObjectId
        from the writing process, so versions written in the same second by two processes may swap)."""
        clauses = []
        order = "version" if id is not None else "seq"
        if id is not None:
            clauses.append({"r": f"{type}/{id}"})
        elif type is not None:
            clauses.append({"type": type})
        if since is not None:
            clauses.append({"last_updated": {"$gte": since}})
        with _query_errors():
            session = self._session()
            if guard is not None:
                clauses.append({"r": {"$in": self._admitted(guard, type, session, id)}})
            where = {"$and": clauses} if clauses else {}
            total = self.versions.count_documents(where, session=session)
            if cursor is not None:
                where = {"$and": clauses + [{order: {"$lt": _history_cursor(cursor, order)}}]}
            docs = list(self.versions.find(where, {**VERSION_FIELDS, "seq": 1}, sort=[(order, -1)], limit=limit + 1,
                                           session=session))
        items = docs[:limit]
        more = len(docs) > limit and items
        return Page([to_version(d) for d in items], str(items[-1][order]) if more else None, total)

    def type_history(self, type, *, since=None, limit=50, cursor=None, bodies=True):
        """history(type) without count (and without bodies unless asked for)."""
        clauses = [{"type": type}]
        if since is not None:
            clauses.append({"last_updated": {"$gte": since}})
        if cursor is not None:
            clauses.append({"seq": {"$lt": _history_cursor(cursor, "seq")}})
        fields = {k: 1 for k in VERSION_FIELDS if bodies or k not in ("body", "blob")}
        with _query_errors():
            docs = list(self.versions.find({"$and": clauses}, {**fields, "seq": 1}, sort=[("seq", -1)],
                                           limit=limit + 1, session=self._session()))
        items = docs[:limit]
        more = len(docs) > limit and items
        return Page([to_version(d) for d in items], str(items[-1]["seq"]) if more else None, None)

    def _admitted(self, guard, rtype: str | None, session=None, id: str | None = None) -> list[str]:
        """"Type/id" of the current resources the guard admits (history under access control; id: of
        one resource, whose guard's chains then start from it: mongo_query.Compiler.filter)."""
        c = Compiler(self.resources, guard, session)
        node = q.IdIn((id,)) if id is not None else q.MATCH_ALL
        filters = [c.filter(t, node) for t in ([rtype] if rtype else sorted(resource_types()))
                   if guard(t) is not q.DENY]
        if not filters:
            return []
        keys = [d["_id"] for d in self.resources.find({"$or": filters}, {"_id": 1}, limit=MAX_LINKED + 1,
                                                      session=session)]
        if len(keys) > MAX_LINKED:
            raise BadRequest(f"This history would span more than {MAX_LINKED} resources on this store; "
                             "ask for the history of one type or one resource")
        return keys

    def search(self, type, query, *, sort=(), limit=50, cursor=None, total="accurate", guard=None):
        with _query_errors():
            return mongo_search.search(self.resources, type, query, sort=sort, limit=limit, cursor=cursor,
                                       total=total, guard=guard, session=self._session())

    def includes(self, items, specs, guard=None):
        with _query_errors():
            return mongo_search.includes(self.resources, items, specs, guard, self._session())

    # ---- the journal (ObjectId keys: append order per process, never reused) -----------------------
    def journal_append(self, entries):
        session, unit = self._record_unit()      # inside a unit: in its session, undone with it
        if unit is None:                         # alone: a unit of its own, so all or none
            with self.transaction():
                return self.journal_append(entries)
        docs = [{"_id": ObjectId(), "id": id, "body": body} for id, body in entries]
        with unavailable():
            for doc in docs:
                unit.record(self.journal, doc["_id"], None)
            self.journal.insert_many(docs, ordered=True, session=session)

    def journal_read(self, limit):
        with unavailable():
            return [(d["_id"], d["id"], bytes(d["body"])) for d in self.journal.find(sort=[("_id", 1)], limit=limit)]

    def journal_delete(self, keys):
        with unavailable():
            self.journal.delete_many({"_id": {"$in": [k for k, _id in keys]}})

    # ---- records (a server away is a 503, as for resources) -----------------------------------
    # Inside this thread's open unit a record write joins it (Store docstring): in its session, undone
    # with it (SerialUnit's journal); a standalone mongod has no transactions, so there it applies at once.
    def _record_unit(self):
        """(session, unit) of this thread's open unit of work, else (None, None)."""
        unit = getattr(self._local, "unit", None)
        if unit is None:
            return None, None
        unit.before_read()
        return unit.session, unit

    def put_record(self, kind, key, value, expires_at=None):
        session, unit = self._record_unit()
        with unavailable():
            _id = f"{kind}/{key}"
            if unit is not None:
                unit.record(self.records, _id, self.records.find_one({"_id": _id}, session=session))
            self.records.replace_one({"_id": _id}, _record(kind, key, value, expires_at), upsert=True, session=session)

    def add_record(self, kind, key, value, expires_at=None):
        with unavailable():
            self.records.delete_one({"_id": f"{kind}/{key}", "expires_at": {"$ne": None, "$lte": time.time()}})
            try:
                self.records.insert_one(_record(kind, key, value, expires_at))
            except DuplicateKeyError:
                return False
            return True

    def get_record(self, kind, key):
        session, _unit = self._record_unit()
        with unavailable():
            doc = self.records.find_one({"_id": f"{kind}/{key}", **_live()}, session=session)
        return doc["value"] if doc else None

    def any_record(self, pairs):
        if len(pairs) < 2:
            return super().any_record(pairs)
        session, _unit = self._record_unit()
        with unavailable():
            doc = self.records.find_one({"_id": {"$in": [f"{kind}/{key}" for kind, key in pairs]}, **_live()},
                                        {"_id": 1}, session=session)
        return doc is not None

    def take_record(self, kind, key):
        with unavailable():
            doc = self.records.find_one_and_delete({"_id": f"{kind}/{key}"})
        if doc is None or (doc.get("expires_at") is not None and doc["expires_at"] <= time.time()):
            return None
        return doc["value"]

    def delete_record(self, kind, key):
        session, unit = self._record_unit()
        with unavailable():
            _id = f"{kind}/{key}"
            if unit is not None:
                before = self.records.find_one({"_id": _id}, session=session)
                if before is None:
                    return
                unit.record(self.records, _id, before)
            self.records.delete_one({"_id": _id}, session=session)

    def list_records(self, kind):
        session, _unit = self._record_unit()
        with unavailable():
            return [(d["key"], d["value"]) for d in self.records.find({"kind": kind, **_live()}, sort=[("key", 1)],
                                                                      session=session)]

    # ---- maintenance -------------------------------------------------------------------------
    def reindex(self, rows_for, batch=500, progress=None):
        done, last = 0, None
        while True:
            where = {"deleted": False, **({"_id": {"$gt": last}} if last is not None else {})}
            docs = list(self.resources.find(where, {"type": 1, "id": 1, "body": 1, "pk": 1, "version": 1},
                                            sort=[("_id", 1)], limit=batch))
            if not docs:
                return done
            for d in docs:
                index = rows_for(d["type"], bytes(d["body"]))
                # the old shard key in the filter: a change of pk is allowed only so (sharded clusters)
                self.resources.update_one({"_id": d["_id"], "pk": d.get("pk"), "version": d["version"]}, {"$set": {
                    "ix": index_doc(index), "pk": partition_key(d["type"], d["id"], index)}})
            done += len(docs)
            last = docs[-1]["_id"]
            if progress:
                progress(done)

    def expunge(self, type, versions):
        """Version by version, each delete on its own: a pass cut short is finished by the next one."""
        n = 0
        with unavailable():
            for id_, version in versions:
                key = f"{type}/{id_}"
                n += self.versions.delete_one({"_id": f"{key}/{version}", "r": key}).deleted_count
                if self.versions.find_one({"r": key}, {"_id": 1}) is None:
                    self.resources.delete_one({"_id": key})
        return n

    def quality_counts(self, custodian=None, type=None):
        with _query_errors(), self.snapshot():      # one point in time for every shard of every counter
            return mongo_quality.counts(self.db, custodian, type, self._session())

    def quality_clear(self):
        """Not one transaction (a store may hold millions of rows): run `medport quality rebuild` while
        writes are quiet (docs/data-quality.md)."""
        with unavailable():
            mongo_quality.clear(self.db, None)

    def referenced_blobs(self) -> set[str]:
        # a cursor, not distinct(): distinct's answer must fit in one 16 MiB document
        return {d["blob"] for d in self.versions.find({"blob": {"$type": "string"}}, {"blob": 1, "_id": 0})}

    def ping(self):
        with unavailable():
            self.db.command("ping")

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

    def vread(self, type, id, version):
        return self.store.vread(type, id, version)      # joins this unit's session

    def existing(self, type, ids):
        found: set[str] = set()
        for i in range(0, len(ids), 1000):
            keys = [f"{type}/{id}" for id in ids[i:i + 1000]]
            found.update(d["_id"][len(type) + 1:] for d in self.store.resources.find(
                {"_id": {"$in": keys}}, {"_id": 1}, session=self.session))
        return found

    def search(self, type, query, limit, guard=None):
        if self.session is not None:
            # snapshot isolation lets two transactions both find "no match" and both create; a write
            # to one lock document per criteria makes the second one conflict and run again
            lock = hashlib.sha256(f"{type}\n{query!r}".encode()).hexdigest()
            self.store.db[LOCKS].update_one({"_id": lock}, {"$inc": {"n": 1}, "$set": {"at": _utcnow()}},
                                            upsert=True, session=self.session)
        return mongo_search.matches(self.store.resources, type, query, limit, guard, self.session)

    def write(self, w: Write) -> Version:
        resources, versions, key = self.store.resources, self.store.versions, f"{w.type}/{w.id}"
        current = resources.find_one({"_id": key}, session=self.session)
        check_expected(current["version"] if current else 0, w)
        doc = resource_doc(w, current["rid"] if current else ObjectId())
        vdoc = version_doc(w)
        if len(bson.encode(doc)) > MAX_DOCUMENT:
            raise PayloadTooLarge(f"{key} with its search index would exceed MongoDB's 16 MiB document limit")

        def apply():
            if current is not None:     # the old shard key in the filter: pk may change (sharded clusters)
                done = resources.replace_one({"_id": key, "pk": current.get("pk"), "version": current["version"]}, doc,
                                             session=self.session)
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

    def quality_row(self, type, id):
        self.unit.before_read()         # a standalone unit applies what it holds first (as every read does)
        return mongo_quality.get(self.store.db, type, id, self.session)

    def put_quality_row(self, type, id, row):
        mongo_quality.put(self.store.db, self.unit, type, id, row)

    def quality_referrers(self, patient_id):
        self.unit.before_read()
        return mongo_quality.referrers(self.store.db, patient_id, self.session)

    def claim(self, kind, key, owner):
        """The claim document's _id is the unique index. Inside a session a concurrent claim of the same
        key conflicts (the request reruns and then sees it); a standalone server applies a claim at once,
        not with the held writes, so a claim whose write then fails stays (the key is never used)."""
        claims, _id = self.store.db[CLAIMS], f"{kind}/{key}"
        doc = claims.find_one({"_id": _id}, session=self.session)
        if doc is not None:
            return doc["owner"]
        self.unit.record(claims, _id, None)
        try:
            claims.insert_one({"_id": _id, "kind": kind, "key": key, "owner": owner}, session=self.session)
        except DuplicateKeyError:
            if self.session is not None:
                raise StoreRetry(f"{kind} {key} was claimed concurrently") from None
            return claims.find_one({"_id": _id})["owner"]
        return owner


@contextlib.contextmanager
def _query_errors():
    """A value BSON cannot carry (a lone surrogate) is the request's fault; a server away is not."""
    try:
        yield
    except BSONError:
        raise BadRequest("A search value cannot be encoded for MongoDB (e.g. a lone surrogate character)") from None
    except PyMongoError as e:
        raise StoreUnavailable(f"MongoDB store unavailable: {e}") from None


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


MAX_DOCUMENT = 16 * 1024 * 1024 - 64 * 1024       # BSON's limit, less room for the write command


def _history_cursor(cursor: str, order: str):
    """A history cursor: the last version number (instance history, bounded: bounds.py) or seq shown."""
    if order == "version":
        return parse_int(cursor, "The paging cursor _cursor")
    try:
        return ObjectId(cursor)
    except Exception:       # noqa: BLE001 - bson.errors.InvalidId, TypeError
        raise BadRequest(f"Invalid paging cursor {cursor!r}") from None


def _record(kind, key, value, expires_at) -> dict:
    return {"_id": f"{kind}/{key}", "kind": kind, "key": key, "value": value, "expires_at": expires_at,
            "expire": expiry(expires_at)}


def _live() -> dict:
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": time.time()}}]}
