"""Units of work for the MongoDB store: the one seam between the store and MongoDB's transactions.

- SessionUnit (a replica set or a sharded cluster): a multi-document transaction in a client
  session, snapshot reads, majority writes; the commit is retried while its outcome is unknown,
  and a transient error (a write conflict with a concurrent transaction, an election) aborts it
  and raises StoreRetry, upon which the whole request is run again (resources/retry.py).
- StandaloneUnit (a single mongod, no transactions): writes wait until the end of the unit and are
  then applied in an order that never loses an acknowledged version; a unit that writes more than
  one resource is refused before anything is applied (transaction Bundles need a replica set).
- SerialUnit (mongomock, used by the tests: it has no sessions): one unit at a time per process,
  with an undo journal that restores every touched document if the unit fails.

The store is given its kind of unit by whoever opens it (storage.open_store: the topology of a real
server picks SessionUnits or StandaloneUnits, a mongomock:// URL SerialUnits): the store itself
never asks what its client is. Each kind also says what a read snapshot is (Store.snapshot()).
"""
from __future__ import annotations

import contextlib
import threading

from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from ..errors import BadRequest, ServiceUnavailable, StoreRetry, StoreUnavailable

__all__ = ["SerialUnits", "SessionUnits", "StandaloneUnits", "StoreRetry", "unavailable", "units_for"]


class SessionUnits:
    """A replica set or a sharded cluster: transactions in sessions; snapshot reads in a session with
    snapshot=True (one point in time for every read, MongoDB 5.0+)."""

    def __init__(self, client, topology: str = "replica-set"):
        self.client, self.topology = client, topology

    def open(self):
        return SessionUnit(self.client)

    @contextlib.contextmanager
    def snapshot(self):
        with self.client.start_session(snapshot=True) as session:
            yield session


class StandaloneUnits:
    """A single mongod: no transactions, no snapshot reads (each read sees the latest writes)."""
    topology = "standalone"

    def open(self):
        return StandaloneUnit()

    @contextlib.contextmanager
    def snapshot(self):
        yield None


class SerialUnits:
    """mongomock (the tests): units one at a time in the process. A read snapshot holds the same lock,
    so no unit commits while it reads: the one isolation mongomock can show."""
    topology = "serial (in-memory, tests)"

    def __init__(self):
        self.lock = threading.RLock()

    def open(self):
        return SerialUnit(self.lock)

    @contextlib.contextmanager
    def snapshot(self):
        with self.lock:
            yield None


def units_for(client):
    """The kind of unit of a real server, from its topology."""
    kind = topology(client)
    return StandaloneUnits() if kind == "standalone" else SessionUnits(client, kind)


class SessionUnit:
    holds_writes = False
    keeps_journal = False        # record() is a no-op: the session's transaction undoes a failure

    def __init__(self, client):
        self.client = client
        self.session = None

    def __enter__(self):
        self.session = self.client.start_session()
        self.session.start_transaction(read_concern=ReadConcern("snapshot"),
                                       write_concern=WriteConcern("majority"))
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                if self.session.in_transaction:
                    self.session.abort_transaction()
                if isinstance(exc, PyMongoError) and _transient(exc):
                    raise StoreRetry(f"A concurrent change interrupted this transaction: {exc}") from None
                return False
            for _attempt in range(5):
                try:
                    self.session.commit_transaction()
                    return False
                except PyMongoError as e:
                    if e.has_error_label("UnknownTransactionCommitResult"):
                        continue
                    if _transient(e):
                        raise StoreRetry(f"The transaction could not commit: {e}") from None
                    raise
            raise StoreUnavailable("The transaction's commit could not be confirmed")
        finally:
            self.session.end_session()

    def record(self, *_args):
        pass

    def before_read(self):
        pass


class StandaloneUnit:
    """Buffers writes and applies them at the end (see the module docstring)."""
    holds_writes = True
    keeps_journal = False

    def __init__(self, client=None):
        self.session = None
        self.pending: list = []
        self.resources: set = set()         # every resource this unit writes

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        self.apply()
        return False

    def apply(self) -> None:
        for _type, _id, apply in self.pending:
            apply()
        self.pending = []

    def before_read(self):
        """A read inside the unit (a GET entry after the writes of its Bundle) sees them: what is held
        is applied now (still refused whole if it spans several resources)."""
        self.apply()

    def hold(self, rtype: str, id: str, apply) -> None:
        self.resources.add((rtype, id))
        if len(self.resources) > 1:        # refused as soon as it shows, before anything is applied
            raise BadRequest("This MongoDB server is a standalone mongod without transactions: a change to "
                             "several resources at once (a transaction Bundle) needs a replica set. "
                             "Nothing was written.")
        self.pending.append((rtype, id, apply))

    def record(self, *_args):
        pass


class SerialUnit:
    """mongomock: one unit at a time per store, undone from a journal on failure."""
    holds_writes = False
    keeps_journal = True         # record() is how a failure is undone: callers pass what they change

    def __init__(self, lock: threading.RLock):
        self.session = None
        self.journal: list = []
        self.lock = lock

    def __enter__(self):
        self.lock.acquire()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                for collection, _id, before in reversed(self.journal):
                    if before is None:
                        collection.delete_one({"_id": _id})
                    else:
                        collection.replace_one({"_id": _id}, before, upsert=True)
            return False
        finally:
            self.lock.release()

    def record(self, collection, _id, before) -> None:
        """Remember a document as it was before this unit changed it (None: it did not exist)."""
        self.journal.append((collection, _id, before))

    def before_read(self):
        pass


@contextlib.contextmanager
def unavailable():
    """The MongoDB server away (or refusing) as the store's 503 with Retry-After: records, blobs and
    resources alike."""
    try:
        yield
    except PyMongoError as e:
        raise StoreUnavailable(f"MongoDB store unavailable: {e}") from None


def _transient(e: PyMongoError) -> bool:
    return e.has_error_label("TransientTransactionError") or isinstance(e, ConnectionFailure) or (
        isinstance(e, OperationFailure) and e.code == 112)      # WriteConflict


def topology(client) -> str:
    """replica-set | sharded | standalone, from the server's hello answer."""
    try:
        hello = client.admin.command("hello")
    except PyMongoError as e:
        raise ServiceUnavailable(f"MongoDB does not answer: {e}") from None
    if hello.get("msg") == "isdbgrid":
        return "sharded"
    return "replica-set" if hello.get("setName") else "standalone"
