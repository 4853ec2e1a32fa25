"""The append-only audit log: every stored AuditEvent becomes a leaf of one RFC 9162 Merkle tree
(docs/audit.md).

State, all in store records (both stores, no new table):

- kind "audit-log-batch", key = the batch's first index (12 digits, so keys sort by index):
  {"start": s, "prev": start of the batch before, "entries": [[id, version, leaf hex, lastUpdated], ...],
  "range": [...hex], "newest": lastUpdated}: the entries s..s+len-1, the compact range (the roots of
  the perfect subtrees, merkle.root's stack) of the tree after the batch, and the newest lastUpdated
  logged up to it (how far back the integrator's look-back window reaches: _logged_since). A batch is
  one record, written with add_record (create if absent): it is all or nothing, and two integrators
  can never both write index s.
- kind "audit-log", key "head": {"size": n} a hint of the tree size (the integrator probes forward);
  key "lease": the integrator's lease (one at a time across processes, like Trillian's signer);
  key "primary": the heartbeat of a primary integrator (see Integrator: web workers stand by for it).
- kind "audit-checkpoint", key = the tree size (12 digits): {"text": signed checkpoint, "size",
  "root", "kid"}; kind "audit-log", key "checkpoint": the latest one.
- kind "audit-log-key": the Ed25519 signing keys (keys.py).

leaf hash = merkle.leaf_hash(canonical JSON of the stored AuditEvent body: sorted keys, no spaces,
UTF-8). The integrator appends the AuditEvents written since the last integration, in write order
(Store.history of AuditEvent, oldest first), at most BATCH per batch.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from . import checkpoint as cp
from . import merkle
from .keys import AuditKeys

log = logging.getLogger("medport.audit_log")

BATCH_KIND = "audit-log-batch"
STATE_KIND = "audit-log"
CHECKPOINT_KIND = "audit-checkpoint"
BATCH = 1000                 # entries per batch record
LEASE_S = 10.0               # an integrator that stops renewing loses the lease after this
ROUND_EVENTS = 20000         # journal entries drained per round at most (~3 s), well inside LEASE_S
# events of one store may commit out of their write order (MongoDB: seq is an ObjectId of the writing
# process); the integrator looks back this far behind the newest entry for late commits
GRACE_S = 5.0
HISTORY_PAGE = 10000        # versions per history page (each page also counts its window)


def canonical(body: bytes) -> bytes:
    """The canonical JSON of a stored resource body: sorted keys, no spaces, UTF-8."""
    return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# where a JSON number may start: after a name's colon, first in an array or after a comma (white space
# aside). Text inside a string may match too (a false alarm: the exact path is taken), but no number
# is missed. Three searches with a literal first character: faster than one with a character class.
_NUMBER_AT = (re.compile(rb'"[ \t\r\n]*:[ \t\r\n]*[-0-9]'), re.compile(rb"\[[ \t\r\n]*[-0-9]"),
              re.compile(rb",[ \t\r\n]*[-0-9]"))
_COMPACT_NUMBER_AT = (re.compile(rb'":[-0-9]'), re.compile(rb"\[[-0-9]"), re.compile(rb",[-0-9]"))


def holds_number(body: bytes, compact: bool = False) -> bool:
    """Whether a JSON document may hold a number (False: it holds none). compact: the body has no white
    space between tokens (orjson's output), so a number directly follows ':', '[' or ',': cheaper searches."""
    return any(pattern.search(body) is not None for pattern in (_COMPACT_NUMBER_AT if compact else _NUMBER_AT))


def plain_leaf(resource: dict) -> bytes:
    """leaf_of(the body of `resource`) for a resource holding no number (holds_number False): orjson's
    sorted compact output is then byte for byte log.canonical's (strings are escaped alike, keys sorted
    by code point: tests/audit_log/test_log.py); the two differ only on numbers (1e-07 against 1e-7;
    integers past 64 bits). Raises orjson.JSONEncodeError for what orjson cannot write."""
    return merkle.leaf_hash(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS))


def leaf_of(body: bytes | str) -> bytes:
    """merkle.leaf_hash(canonical(body)); through orjson (plain_leaf) when the body holds no number."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not holds_number(body):
        try:
            return plain_leaf(orjson.loads(body))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            pass                        # e.g. a lone surrogate escape, or deep nesting: the json module
    return merkle.leaf_hash(canonical(body))


def key_of(index: int) -> str:
    return f"{index:012d}"


@dataclass
class Entry:
    index: int
    id: str
    version: int
    leaf: bytes
    at: str

    def as_json(self) -> dict:
        import base64
        return {"index": self.index, "reference": f"AuditEvent/{self.id}/_history/{self.version}",
                "leafHash": base64.b64encode(self.leaf).decode(), "lastUpdated": self.at}


# ---- the compact range: roots of the perfect subtrees of a tree, left to right -------------------------
def extend(rng: list[tuple[int, bytes]], leaves) -> list[tuple[int, bytes]]:
    stack = list(rng)
    for leaf in leaves:
        height, h = 0, leaf
        while stack and stack[-1][0] == height:
            h = merkle.node_hash(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
    return stack


def range_root(rng: list[tuple[int, bytes]]) -> bytes:
    if not rng:
        return merkle.EMPTY_ROOT
    acc = rng[-1][1]
    for _height, h in reversed(rng[:-1]):
        acc = merkle.node_hash(h, acc)
    return acc


def _range_json(rng) -> list:
    return [[h, v.hex()] for h, v in rng]


def _range_of(value) -> list[tuple[int, bytes]]:
    return [(int(h), bytes.fromhex(v)) for h, v in value]


# ---- reading the log -----------------------------------------------------------------------------------
def batches(store, start: int = 0):
    """The batch records from the one that starts at `start`, following each other (one read by key)."""
    while True:
        value = store.get_record(BATCH_KIND, key_of(start))
        if value is None:
            return
        yield value
        start += len(value["entries"])


def tail(store) -> tuple[int, dict | None]:
    """(tree size, the last batch record) as stored: from the head hint, probing forward."""
    head = store.get_record(STATE_KIND, "head") or {}
    start = head.get("last_start", 0)
    last = None
    for b in batches(store, start):
        last = b
    if last is None and start:          # the hint names a batch that is gone (tampering): scan
        records = [v for _k, v in store.list_records(BATCH_KIND)]
        last = records[-1] if records else None
    return (last["start"] + len(last["entries"]), last) if last else (0, None)


def size(store) -> int:
    return tail(store)[0]


def all_entries(store) -> list[Entry]:
    """Every entry as stored, in index order (verify reads the records themselves, not the chain)."""
    out = []
    for _key, b in store.list_records(BATCH_KIND):
        for k, (id_, version, leaf, at) in enumerate(b["entries"]):
            out.append(Entry(b["start"] + k, id_, version, bytes.fromhex(leaf), at))
    return out


class Leaves:
    """The log's entries, cached per process (the log only grows): proofs and entry ranges read
    the new batches only."""
    _lock = threading.Lock()
    _cache: dict[int, list[Entry]] = {}

    @classmethod
    def get(cls, store) -> list[Entry]:
        with cls._lock:
            entries = cls._cache.setdefault(id(store), [])
            for b in batches(store, len(entries)):
                for k, (id_, version, leaf, at) in enumerate(b["entries"]):
                    entries.append(Entry(b["start"] + k, id_, version, bytes.fromhex(leaf), at))
            return list(entries)


# ---- the integrator ------------------------------------------------------------------------------------
def origin(settings) -> str:
    if settings.audit_origin:
        return settings.audit_origin
    return f"{urlsplit(settings.base_url).netloc or 'medport'}/audit"


class LogInconsistent(RuntimeError):
    """The log would sign a checkpoint inconsistent with the previous one: it refuses."""


class Integrator:
    """One integrator per process; the one holding the lease integrates.

    role "primary": the background worker's (`medport worker`, started by `medport serve`): it beats a
    heartbeat each round. role "standby": the web workers': it integrates only while no primary beats,
    and hands the lease back when one does. Integration is CPU-heavy Python; in a web worker it takes
    the interpreter lock from that worker's requests, in its own process the kernel shares the cores
    fairly (docs/audit.md, "Who integrates"). role None: always a candidate (the CLI, tests)."""

    def __init__(self, store, settings, owner: str | None = None, role: str | None = None):
        self.store, self.settings, self.role = store, settings, role
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._logged: dict[int, tuple] = {}     # batch start -> (prev, newest lastUpdated, {(id, version)})

    # the lease: add if free, renew if ours; whoever holds an unexpired one integrates
    def acquire(self) -> bool:
        now = time.time()
        value = {"owner": self.owner, "until": now + LEASE_S}
        if self.store.add_record(STATE_KIND, "lease", value, expires_at=now + LEASE_S):
            return True
        held = self.store.get_record(STATE_KIND, "lease")
        if held is None:
            return self.store.add_record(STATE_KIND, "lease", value, expires_at=now + LEASE_S)
        if held.get("owner") == self.owner and held.get("until", 0) - now > LEASE_S / 3:
            return True
        if held.get("owner") == self.owner:     # renew well before it runs out
            self.store.put_record(STATE_KIND, "lease", value, expires_at=now + LEASE_S)
            return True
        return False

    def release(self) -> None:
        held = self.store.get_record(STATE_KIND, "lease")
        if held and held.get("owner") == self.owner:
            self.store.delete_record(STATE_KIND, "lease")

    def primary_beats(self) -> bool:
        """Whether a primary integrator (not this one) was alive within LEASE_S."""
        beat = self.store.get_record(STATE_KIND, "primary")
        return bool(beat) and beat.get("owner") != self.owner and beat.get("until", 0) > time.time()

    def run_once(self, drain_limit: int | None = None) -> int:
        """Integrate what was written since the last integration; sign a checkpoint if one is due.
        Returns how many entries were appended (0 if another process holds the lease, or this one
        stands by for a primary). drain_limit: journal entries drained at most (the background thread's
        rounds stay well inside the lease; None: all)."""
        if self.role == "standby" and self.primary_beats():
            self.release()              # the primary takes the lease at its next round
            return 0
        if not self.acquire():
            if self.role == "primary":
                self._beat()            # alive, waiting for a standby to hand the lease back
            return 0
        from .journal import drain
        drained: dict = {}                          # the leaves of what the drain stored: not hashed twice
        drain(self.store, self.settings.base_url, limit=drain_limit, leaves=drained)   # events become AuditEvents
        size, last = tail(self.store)
        new = self._new_events(size, last, drained)     # read once per round, appended in batches
        appended = 0
        for at in range(0, len(new), BATCH):
            batch = self._append(size, last, new[at:at + BATCH])
            if batch is None:                          # another integrator wrote this index: next round
                size, last = tail(self.store)
                break
            size, last = size + len(batch["entries"]), batch
            appended += len(batch["entries"])
        self._maybe_sign(size, last)
        if self.role == "primary":
            self._beat()                # only a round that got through: a failing primary is replaced
        return appended

    def _beat(self) -> None:
        now = time.time()
        self.store.put_record(STATE_KIND, "primary", {"owner": self.owner, "until": now + LEASE_S},
                              expires_at=now + LEASE_S)

    def _append(self, size: int, last: dict | None, new: list) -> dict | None:
        """The batch of `new` entries ([id, version, leaf hex, lastUpdated]) at index `size` after
        `last`, or None if that index is taken: a batch
        is only ever added where none is, so two integrators never log one event twice (the second
        one's batch at an index the first took fails, and it re-reads the log next round)."""
        rng = _range_of(last["range"]) if last else []
        entries = list(new)
        rng = extend(rng, (bytes.fromhex(e[2]) for e in entries))
        newest = max(e[3] for e in entries)
        if last is not None:
            newest = max(newest, last.get("newest") or max(e[3] for e in last["entries"]))
        record = {"start": size, "prev": last["start"] if last else None, "entries": entries,
                  "range": _range_json(rng), "newest": newest}
        if not self.store.add_record(BATCH_KIND, key_of(size), record):
            return None
        self.store.put_record(STATE_KIND, "head", {"last_start": size, "size": size + len(entries)})
        return record

    def _new_events(self, size: int, last: dict | None, leaves: dict | None = None) -> list:
        """Entries [id, version, leaf hex, lastUpdated] of the AuditEvent versions not in the log yet,
        oldest first: the history newest first, down to GRACE_S before the newest logged entry (leaves
        hashed as it goes, unless `leaves` has them: a backlog is held as hashes, not bodies).
        The window is listed without bodies (Store.type_history): when the drain gave every new leaf,
        re-reading the bodies of the whole window each round is what an integration cost."""
        leaves = leaves or {}
        known, horizon = set(), ""
        if last is not None:
            newest = max(e[3] for e in last["entries"])
            horizon = _minus(newest, look_back_s(self.store))
            known = self._logged_since(last, horizon)
        # without bodies when the drain gave leaves; again with them if it did not give every new one
        found = self._listed(horizon, known, leaves, bodies=not leaves)
        if leaves and any(e[2] is None for e in found):
            found = self._listed(horizon, known, leaves, bodies=True)
        found.reverse()                                 # oldest first
        return found

    def _logged_since(self, last: dict, horizon: str) -> set:
        """(id, version) of the logged entries in the batches back from `last` to the first whose
        "newest" (the newest lastUpdated logged up to it) is before horizon: no entry of it or of an
        earlier batch can be in the window. Batches are in write order, not time order: a late commit
        puts an early entry in a batch after later ones, so a batch starting before horizon does not
        end the window (a batch record without "newest", written before it was kept, stops the walk
        when it starts before horizon, as then). A batch record is only ever added (add_record), never
        changed: one read by this integrator is kept while it is in the window, instead of reading and
        decoding it every round."""
        known: set = set()
        logged, start, record = {}, last["start"], last
        while True:
            got = self._logged.get(start) if record is None else None
            if got is None:
                record = record or self.store.get_record(BATCH_KIND, key_of(start))
                if record is None:
                    break
                got = (record.get("prev"), record.get("newest") or min(e[3] for e in record["entries"]),
                       frozenset((e[0], e[1]) for e in record["entries"]))
            logged[start] = got
            known |= got[2]
            if start == 0 or got[1] < horizon or got[0] is None:
                break
            start, record = got[0], None
        self._logged = logged
        return known

    def _listed(self, horizon: str, known: set, leaves: dict, bodies: bool) -> list:
        """Entries of the AuditEvent versions since horizon not in `known`, newest first; without bodies
        a leaf not in `leaves` is None, with them it is hashed as the listing goes."""
        found, cursor = [], None
        while True:
            page = self.store.type_history("AuditEvent", since=horizon or None, limit=HISTORY_PAGE,
                                           cursor=cursor, bodies=bodies)
            stop = False
            for v in page.items:
                if v.last_updated < horizon:
                    stop = True
                    break
                if v.method == "DELETE" or (v.id, v.version) in known or (bodies and v.body is None):
                    continue
                leaf = leaves.get((v.id, v.version)) or (leaf_of(v.body).hex() if bodies else None)
                found.append([v.id, v.version, leaf, v.last_updated])
            if stop or page.next_cursor is None:
                return found
            cursor = page.next_cursor

    # ---- checkpoints -----------------------------------------------------------------------------------
    def _maybe_sign(self, size: int, last: dict | None) -> str | None:
        """size, last: the log's tail as this round left it."""
        latest = self.store.get_record(STATE_KIND, "checkpoint")
        if latest is not None:
            grown = size - latest["size"]
            due = grown >= self.settings.audit_checkpoint_entries or (
                grown > 0 and time.time() - latest["signed"] >= self.settings.audit_checkpoint_s)
            if not due:
                return None
        return self.sign(size, last, latest)

    def sign(self, size: int, last: dict | None, latest: dict | None) -> str:
        root = range_root(_range_of(last["range"])) if last else merkle.EMPTY_ROOT
        keys = AuditKeys(self.store)
        if latest is not None:
            check_consistent(self.store, keys, latest, size, root)
        name = origin(self.settings)
        key, kid = keys.active()
        text = cp.sign(cp.Checkpoint(name, size, root), key, name)
        value = {"text": text, "size": size, "root": root.hex(), "kid": kid, "signed": time.time(),
                 "batch": last["start"] if last else None}
        self.store.add_record(CHECKPOINT_KIND, key_of(size), value)
        self.store.put_record(STATE_KIND, "checkpoint", value)
        return text


def check_consistent(store, keys, latest: dict, size: int, root: bytes) -> None:
    """Refuse (LogInconsistent) unless the tree of `size` with `root` extends the latest checkpoint:
    its signature holds, and the stored batches, from the compact range at its size, extend to `root`."""
    old_size = latest["size"]
    checked = keys.verify(latest["text"])
    if checked.size != old_size or checked.root.hex() != latest["root"]:
        raise LogInconsistent("the latest checkpoint record does not match its signed text")
    if size < old_size:
        raise LogInconsistent(f"the log shrank from {old_size} to {size} entries: refusing to sign")
    rng: list = []
    if old_size:
        at = store.get_record(BATCH_KIND, key_of(latest["batch"])) if latest.get("batch") is not None else None
        if at is None or at["start"] + len(at["entries"]) != old_size:
            raise LogInconsistent(f"no batch ends at the checkpointed size {old_size}")
        before = _previous_batch(store, at)
        rng = extend(_range_of(before["range"]) if before else [], (bytes.fromhex(e[2]) for e in at["entries"]))
        if rng != _range_of(at["range"]):
            raise LogInconsistent(f"the entries of the batch at {at['start']} do not match its stored tree")
    if range_root(rng) != checked.root:
        raise LogInconsistent(f"the stored tree at size {old_size} is not the signed one")
    for b in batches(store, old_size):
        if b["start"] >= size:
            break
        rng = extend(rng, (bytes.fromhex(e[2]) for e in b["entries"]))
    if range_root(rng) != root:
        raise LogInconsistent(f"the tree of {size} entries does not extend the checkpoint of {old_size}")


def look_back_s(store) -> float:
    """How far behind the newest logged entry the integrator looks for events committed late: GRACE_S,
    unless the store declares a shorter window (`late_commit_s`: a store whose commits are serialised
    and stamped in commit order has none). Reading the window again each round is most of what an
    integration costs besides the drain (5 s of events re-read every second)."""
    return min(GRACE_S, float(getattr(store, "late_commit_s", GRACE_S)))


def _previous_batch(store, batch: dict) -> dict | None:
    return store.get_record(BATCH_KIND, key_of(batch["prev"])) if batch.get("prev") is not None else None


def _minus(instant: str, seconds: float) -> str:
    """An instant `seconds` earlier, in the store's fixed-width form (interactions.common.now_instant)."""
    import datetime
    t = datetime.datetime.fromisoformat(instant.replace("Z", "+00:00")) - datetime.timedelta(seconds=seconds)
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def integrate(store, settings) -> int:
    """One integration round (tests, the CLI): entries appended (0 while a server's integrator holds
    the lease: it integrates within MEDPORT_AUDIT_INTEGRATION_S anyway)."""
    integrator = Integrator(store, settings)
    try:
        return integrator.run_once()
    finally:
        integrator.release()


def latest_checkpoint(store) -> str | None:
    value = store.get_record(STATE_KIND, "checkpoint")
    return value["text"] if value else None


def checkpoints(store) -> list[dict]:
    return [v for _k, v in store.list_records(CHECKPOINT_KIND)]


# ---- the background thread -----------------------------------------------------------------------------
def wanted(settings) -> bool:
    """MEDPORT_AUDIT_INTEGRATOR: on, off, or auto (on, except under pytest: tests integrate explicitly)."""
    mode = settings.audit_integrator
    return mode == "on" or (mode == "auto" and "PYTEST_CURRENT_TEST" not in os.environ)


def start_thread(store, settings, role: str | None = None) -> threading.Thread:
    """Integrate every MEDPORT_AUDIT_INTEGRATION_S seconds, for the life of the process (a daemon), as
    a primary or standby integrator (Integrator). The thread keeps its connection, as request threads
    do: it never calls store.close(), which on MongoDB closes the client the whole process shares."""
    integrator = Integrator(store, settings, role=role)

    def loop():
        while True:
            try:
                integrator.run_once(ROUND_EVENTS)     # what keeps coming waits for the next round
            except Exception:               # noqa: BLE001 - the log catches up at the next round
                log.exception("audit log integration failed")
            time.sleep(settings.audit_integration_s)

    thread = threading.Thread(target=loop, name="medport-audit-integrator", daemon=True)
    thread.start()
    return thread
