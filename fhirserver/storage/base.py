"""The storage interface: what every backend (SQLite, MongoDB) provides.

Small on purpose. A backend stores, per resource, the current version pointer
and every version ever written (http://hl7.org/fhir/R4/http.html#history), the
index entries of the current version (written atomically with it), and blobs
(Binary contents). All writes go through a Transaction so that single
interactions and transaction Bundles share one code path; a Transaction is
atomic and isolated (serialisable for the resources it touches).

Conditional interactions, versioning rules and validation live above this
layer (fhirserver.interactions); backends only enforce `expected_version`.
"""
from __future__ import annotations

import abc
import base64
import contextlib
import hashlib
import json
from typing import BinaryIO, ContextManager, Iterator

from ..errors import BadRequest, PayloadTooLarge, VersionConflict
from .types import BlobInfo, IndexEntries, Page, Version, Write

__all__ = ["BlobInfo", "BlobStore", "IndexEntries", "Metered", "Page", "Store", "Transaction", "Version", "Write",
           "check_expected", "decode_cursor", "encode_cursor", "include_rounds"]

class Metered:
    """The chunks of an upload, counted and hashed as they pass: PayloadTooLarge as soon as they
    exceed max_bytes (every blob store streams through one of these)."""

    def __init__(self, chunks: Iterator[bytes], max_bytes: int):
        self._chunks, self.max_bytes = iter(chunks), max_bytes
        self.size, self.digest = 0, hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"Binary content exceeds the limit of {self.max_bytes} bytes")
        self.digest.update(chunk)
        return chunk

    def info(self, key: str) -> "BlobInfo":
        return BlobInfo(key, self.size, self.digest.hexdigest())


class BlobStore(abc.ABC):
    """Large binary contents, streamed; never held whole in memory."""

    @abc.abstractmethod
    def put(self, chunks: Iterator[bytes], max_bytes: int) -> BlobInfo:
        """Store the stream; raises PayloadTooLarge past max_bytes (and stores nothing)."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable binary file object for reading."""

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a blob no version refers to (an upload whose write was refused)."""

    @abc.abstractmethod
    def keys(self, min_age_s: float = 0) -> Iterator[str]:
        """Keys of stored blobs at least min_age_s seconds old."""


class Transaction(abc.ABC):
    """Reads and writes inside one atomic, isolated unit of work. `store`: the Store it belongs to
    (whatever is written along with it, records included, joins it through store.unit())."""
    store: "Store"

    @abc.abstractmethod
    def read(self, type: str, id: str) -> Version | None:
        """The current version (possibly a delete), or None if the id was never used."""

    @abc.abstractmethod
    def vread(self, type: str, id: str, version: int) -> Version | None:
        """One version, as this transaction sees it."""

    def existing(self, type: str, ids: list[str]) -> set[str]:
        """Those of ids that read() finds (a delete included): what a store may answer in one query."""
        return {id for id in ids if self.read(type, id) is not None}

    @abc.abstractmethod
    def search(self, type: str, query, limit: int, guard=None) -> list[Version]:
        """Current, non-deleted versions matching a search query tree (fhirserver.search.query),
        restricted by the guard as in Store.search."""

    @abc.abstractmethod
    def write(self, w: Write) -> Version:
        """Store `w` if the current version is w.version - 1, else raise VersionConflict."""

    @abc.abstractmethod
    def claim(self, kind: str, key: str, owner: str) -> str:
        """Bind a unique key (a UHID) to an owner for good, as part of this transaction; returns the
        key's owner afterwards: `owner` if it was free (or already theirs), else whoever holds it.
        Claims are never released, so a key is never given twice (the unique index of the store)."""

    # ---- quality facts (fhirserver/quality/, docs/data-quality.md), part of this transaction -------
    @abc.abstractmethod
    def quality_row(self, type: str, id: str) -> dict | None:
        """The facts row of a resource (quality/facts.py), as this transaction sees it; None if none."""

    @abc.abstractmethod
    def put_quality_row(self, type: str, id: str, row: dict | None) -> None:
        """Replace the resource's facts row (None: remove it) and move the counters by the difference
        (storage/quality_diff.py): each [dimension, key] of the old row's "dims" -1 under its (custodian,
        type), each of the new row's +1 under its own; a counter back at 0 is removed."""

    @abc.abstractmethod
    def quality_referrers(self, patient_id: str) -> list[tuple[str, str, dict]]:
        """(type, id, row) of every facts row whose "subjects" name this Patient id."""


class Store(abc.ABC):
    """One unit of work per request: a thread holds at most one open transaction. Opening a second
    while the first is open raises NestedUnitOfWork at once; what must be written along with the open
    unit (records, audit events) joins it through unit()."""
    blobs: BlobStore

    @abc.abstractmethod
    def transaction(self) -> ContextManager[Transaction]:
        """Commit on normal exit, roll back on exception; NestedUnitOfWork if this thread has one open."""

    @abc.abstractmethod
    def open_unit(self) -> Transaction | None:
        """The transaction this thread has open, if any."""

    @abc.abstractmethod
    def last_write(self, type: str) -> int | None:
        """A number that grows with every committed write of a `type` resource (create, update, delete),
        None before the first: whoever caches something derived from those resources checks it (one
        index lookup)."""

    @contextlib.contextmanager
    def unit(self):
        """Join this thread's open transaction (it commits or rolls back with it), else open one."""
        joined = self.open_unit()
        if joined is not None:
            yield joined
            return
        with self.transaction() as tx:
            yield tx

    @abc.abstractmethod
    def snapshot(self) -> ContextManager[None]:
        """A read unit: every read on this thread inside it (search, includes, read, history) sees one
        committed state, so what _include adds matches the page its search returned. Inside an open
        transaction it joins it; a write unit opened inside it raises NestedUnitOfWork (reads only)."""

    @abc.abstractmethod
    def init(self) -> None:
        """Create what the store needs beyond its tables (indexes, collections): idempotent, safe to run
        from several processes at once. `medport db init` and `medport serve` run it (with the app's own
        init step, context.initialize); opening a store never writes beyond creating its SQLite schema."""

    @abc.abstractmethod
    def describe(self) -> list[str]:
        """Lines saying what the store is and holds (`medport db init` prints them)."""

    @abc.abstractmethod
    def read(self, type: str, id: str) -> Version | None: ...

    @abc.abstractmethod
    def vread(self, type: str, id: str, version: int) -> Version | None: ...

    @abc.abstractmethod
    def history(self, type: str | None = None, id: str | None = None, *, since: str | None = None,
                limit: int = 50, cursor: str | None = None, guard=None) -> Page:
        """Versions newest first; type/id narrow it (instance, type or system history).
        With a guard, only the history of current resources the guard admits (access control)."""

    def type_history(self, type: str, *, since: str | None = None, limit: int = 50, cursor: str | None = None,
                     bodies: bool = True) -> Page:
        """history(type), without its total; unless bodies are asked for, a store may leave them out
        (Version.body None; a deletion's method is "DELETE"): this default keeps them. The audit log's
        integrator lists its look-back window with it, reading bodies only for leaves its drain did not
        give (audit_log/log.py)."""
        return self.history(type, since=since, limit=limit, cursor=cursor)

    @abc.abstractmethod
    def search(self, type: str, query, *, sort=(), limit: int = 50, cursor: str | None = None,
               total: str = "accurate", guard=None) -> Page:
        """Current, non-deleted resources matching the query tree, ordered by the sort keys
        (fhirserver.search.results.SortKey) then insertion; keyset-paged by an opaque cursor.
        total: accurate | estimate (exact when small, else left out) | none.
        guard(type) -> query node | query.DENY | None restricts every set of that type the search
        touches (matches, chained targets, _has sources): access control inside the query."""

    @abc.abstractmethod
    def includes(self, items: list[Version], specs, guard=None) -> list[Version]:
        """Current resources that _include / _revinclude specs (search.results.Include) add to a page,
        each admitted by the guard for its type."""

    # ---- small records: auth state (clients, users, codes, tokens, jti), jobs -------------------
    @abc.abstractmethod
    def put_record(self, kind: str, key: str, value: dict, expires_at: float | None = None) -> None:
        """Create or replace a record (value is JSON-serialisable; expires_at is a Unix time)."""

    @abc.abstractmethod
    def add_record(self, kind: str, key: str, value: dict, expires_at: float | None = None) -> bool:
        """Create a record only if none (unexpired) exists under that key: False if one does.
        Atomic across processes, so it detects replays (jti) and double use."""

    @abc.abstractmethod
    def get_record(self, kind: str, key: str) -> dict | None:
        """An unexpired record, or None."""

    def commit_stamp(self) -> bytes | None:
        """A value that changes whenever any process commits to this store (SQLite: its wal-index
        header, storage/sqlite_read_cache.py), so that what was read under one stamp is still current
        while the stamp is unchanged; None when the store has none (MongoDB) or inside a transaction."""
        return None

    def any_record(self, pairs: list[tuple[str, str]]) -> bool:
        """Whether any of these (kind, key) records exists unexpired: one question where a store can
        ask it at once (MongoDB: one round trip for a token's jti and grant revocations, issue 16)."""
        return any(self.get_record(kind, key) is not None for kind, key in pairs)

    @abc.abstractmethod
    def take_record(self, kind: str, key: str) -> dict | None:
        """Read and delete in one step (single-use authorization codes): only one caller gets it."""

    @abc.abstractmethod
    def delete_record(self, kind: str, key: str) -> None: ...

    @abc.abstractmethod
    def list_records(self, kind: str) -> list[tuple[str, dict]]:
        """(key, value) of every unexpired record of a kind, by key."""

    # ---- the journal: a cheap durable append, drained into resources later (audit_log/journal.py) --
    @abc.abstractmethod
    def journal_append(self, entries: list[tuple[str, bytes]]) -> None:
        """Append (id, body) entries durably, all or none: in the open unit of work if there is one
        (committed or rolled back with it), else alone, where the store makes that cheapest (SQLite:
        the process's side journal, storage/sqlite_side_journal.py). journal_read sees both."""

    @abc.abstractmethod
    def journal_read(self, limit: int) -> list[tuple[object, str, bytes]]:
        """The oldest entries: (key, id, body), in append order."""

    @abc.abstractmethod
    def journal_delete(self, keys: list[tuple[object, str]]) -> None:
        """Remove the entries (key, id) read with journal_read (the id too: a key is never mistaken
        for a newer entry's)."""

    @abc.abstractmethod
    def expunge(self, type: str, versions: list[tuple[str, int]]) -> int:
        """Remove these (id, version) of `type` for good, and a resource (with its index rows) once no
        version of it is left; returns how many versions went. Server maintenance only (audit retention,
        fhirserver/audit_log/retention.py): no request reaches it."""

    @abc.abstractmethod
    def reindex(self, rows_for, batch: int = 500, progress=None) -> int:
        """Recompute the index rows of every current resource with rows_for(type, body_json)
        (after a search-parameter change); returns how many resources were reindexed."""

    @abc.abstractmethod
    def quality_counts(self, custodian: str | None = None, type: str | None = None) -> list[tuple]:
        """(custodian, type, dimension, key, n) of every counter above 0 (Transaction.put_quality_row),
        narrowed to one custodian ("" for none) and/or one type; a committed state."""

    @abc.abstractmethod
    def quality_clear(self) -> None:
        """Remove every facts row and counter at once (quality/rebuild.py then recomputes them)."""

    @abc.abstractmethod
    def referenced_blobs(self) -> set[str]:
        """Blob keys that some version refers to."""

    def analyze(self) -> None:  # noqa: B027 - stores without a cost-based planner need nothing
        """Refresh query-planner statistics (after bulk loads)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    def close(self) -> None:  # noqa: B027 - optional hook: stores without connections need nothing
        """Release this thread's connection."""


def check_expected(have: int, w: Write) -> None:
    """The optimistic-locking rule every backend applies inside its transaction
    (`have`: the current version number, 0 if the id was never used)."""
    if have != w.expected_version:
        raise VersionConflict(
            f"{w.type}/{w.id} is at version {have}, not {w.expected_version}: it was changed concurrently")


ESTIMATE_TOTAL_CAP = 10000      # _total=estimate counts this many matches at most


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise BadRequest(f"Invalid paging cursor {cursor!r}") from None
    if not isinstance(values, list) or len(values) != n or not all(
            v is None or isinstance(v, (float, str)) or (isinstance(v, int) and -2 ** 63 <= v < 2 ** 63)
            for v in values):      # 64-bit integers only: both stores compare them natively
        raise BadRequest("Invalid paging cursor: it does not belong to this search")
    return values


MAX_INCLUDES = 1000     # resources _include/_revinclude may add to one page
MAX_ITERATE = 4         # rounds of :iterate after the first


def include_rounds(page_items: list[Version], specs, one_include) -> list[Version]:
    """What _include / _revinclude add to a page (search.html#include), with :iterate: each round
    applies the specs to what the previous round added (the page itself first), never adding a
    resource twice, at most MAX_INCLUDES in all. one_include(spec, frontier) -> versions is the
    store's own query (already within the access guard)."""
    if not specs or not page_items:
        return []
    seen = {(v.type, v.id) for v in page_items}
    frontier, found = list(page_items), []
    for round_ in range(MAX_ITERATE + 1):
        new = []
        for spec in specs:
            if round_ > 0 and not spec.iterate:
                continue
            for v in one_include(spec, frontier):
                if (v.type, v.id) not in seen and len(found) + len(new) < MAX_INCLUDES:
                    seen.add((v.type, v.id))
                    new.append(v)
        if not new:
            break
        found += new
        frontier = new
    return found
