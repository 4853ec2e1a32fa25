"""`medport audit verify`: recompute the log from the stored AuditEvents and report the first bad index.

What it checks, in one pass over the log (in index order) and one over the AuditEvent history:
- the batch records follow each other with no gap or overlap (else: deleted entry);
- each entry's AuditEvent exists (else: deleted entry) and hashes to the stored leaf (else: changed
  entry, or swapped entries when its hash is the stored leaf of another index);
- no AuditEvent older than the log's newest entry (by more than the grace of late commits) is missing
  from the log (else: entry inserted in the middle, at the index where its time puts it);
- every stored batch's compact range, every stored checkpoint, the latest and the one held outside
  (--checkpoint) carry a signature of the log's keys and the root of the recomputed tree at their
  size (else: the first index past the last good checkpoint); a log shorter than any of them has a
  truncated tail.

Retention (retention.py): entries below the marker `audit-log`/`pruned` whose AuditEvent is gone and
whose logged time is before the marker's horizon are counted as pruned, not deleted; their stored leaf
hashes still enter every tree and checkpoint root above.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import orjson

from . import log as audit_log
from . import merkle
from .keys import AuditKeys

HISTORY_PAGE = 50_000


@dataclass
class Problem:
    index: int
    kind: str
    detail: str


@dataclass
class Report:
    size: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    pruned: int = 0             # entries whose AuditEvent retention removed (leaf hash kept)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.index) if self.problems else None


def pruned_marker(store) -> dict:
    return store.get_record(audit_log.STATE_KIND, "pruned") or {"below": 0, "horizon": ""}


def pruned_below(store) -> int:
    return pruned_marker(store)["below"]


def verify(store, external: str | None = None, grace_s: float = audit_log.GRACE_S) -> Report:
    started = time.monotonic()
    report = Report()
    problems = report.problems
    keys = AuditKeys(store)
    marker = pruned_marker(store)

    # the entries, batch by batch: contiguous, and each batch's stored compact range right
    entries: list[audit_log.Entry] = []
    rng: list = []
    range_bad = None
    for _key, b in store.list_records(audit_log.BATCH_KIND):
        if b["start"] != len(entries):
            kind = "deleted entry" if b["start"] > len(entries) else "entry inserted in the middle"
            problems.append(Problem(min(b["start"], len(entries)), kind,
                                    f"the log jumps from index {len(entries) - 1} to {b['start']}"))
        for k, (id_, version, leaf, at) in enumerate(b["entries"]):
            entries.append(audit_log.Entry(len(entries), id_, version, bytes.fromhex(leaf), at))
            del k
        rng = audit_log.extend(rng, (bytes.fromhex(e[2]) for e in b["entries"]))
        if range_bad is None and audit_log._range_json(rng) != [list(x) for x in b["range"]]:
            range_bad = b["start"]
    report.size = size = len(entries)
    if range_bad is not None:
        problems.append(Problem(range_bad, "changed entry", "a batch's stored tree state does not match its entries"))

    # the AuditEvents as stored, in write order; large pages: every history page also counts the
    # whole history (Page.total), so small pages made this quadratic (docs/audit.md, Verify speed)
    events: dict[tuple[str, int], tuple[bytes, str]] = {}
    cursor = None
    while True:
        page = store.history("AuditEvent", limit=HISTORY_PAGE, cursor=cursor)
        for v in page.items:
            if v.body is not None:
                events[(v.id, v.version)] = (_quick_leaf(v.body), v.last_updated)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    where_leaf = {}
    for e in entries:
        where_leaf.setdefault(e.leaf, e.index)
    logged = {(e.id, e.version) for e in entries}
    for e in entries:
        found = events.get((e.id, e.version))
        if found is None and e.index < marker["below"] and e.at < marker["horizon"]:
            report.pruned += 1
            continue
        if found is None:
            problems.append(Problem(e.index, "deleted entry", f"AuditEvent/{e.id}/_history/{e.version} is gone"))
            break
        if found[0] != e.leaf:              # decide with the exact canonical form (log.leaf_of)
            v = store.vread("AuditEvent", e.id, e.version)
            found = (audit_log.leaf_of(v.body), found[1]) if v is not None and v.body is not None else found
        if found[0] != e.leaf:
            j = where_leaf.get(found[0])
            if j is not None and j != e.index:
                problems.append(Problem(e.index, "swapped entries",
                                        f"AuditEvent/{e.id} holds the content logged at index {j}"))
            else:
                problems.append(Problem(e.index, "changed entry",
                                        f"AuditEvent/{e.id}/_history/{e.version} no longer hashes to its leaf"))
            break

    # AuditEvents the log should hold but does not
    if entries:
        newest = max(e.at for e in entries)
        horizon = audit_log._minus(newest, grace_s)
        for (id_, version), (_leaf, at) in events.items():
            if (id_, version) not in logged and at < horizon:
                index = next((e.index for e in entries if e.at > at), size)
                problems.append(Problem(index, "entry inserted in the middle",
                                        f"AuditEvent/{id_}/_history/{version} ({at}) is not in the log"))

    # checkpoints: signature, size, root of the recomputed tree
    leaves = [e.leaf for e in entries]
    claimed = [("stored checkpoint", v["text"]) for v in audit_log.checkpoints(store)]
    latest = audit_log.latest_checkpoint(store)
    if latest:
        claimed.append(("latest checkpoint", latest))
    if external:
        claimed.append(("checkpoint held outside", external))
    good = []
    for what, text in claimed:
        try:
            c = keys.verify(text)
        except ValueError as e:
            problems.append(Problem(0, "bad checkpoint", f"{what}: {e}"))
            continue
        if c.size > size:
            problems.append(Problem(size, "truncated tail",
                                    f"the log has {size} entries; the {what} has {c.size}"))
            continue
        good.append((c.size, c.root, what))
    changed = first_changed(leaves, good)
    if changed is not None:
        problems.append(changed)
    if external and not problems:       # and a consistency proof, as a mirror would check it
        c = keys.verify(external)
        if 0 < c.size < size and not merkle.verify_consistency(
                c.size, size, c.root, merkle.root(leaves), merkle.consistency_proof(leaves, c.size)):
            problems.append(Problem(c.size, "inconsistent", "the log does not extend the checkpoint held outside"))
    from .journal import SET_ASIDE  # recorded events the journal could not store: the trail lacks them
    for id, kept in store.list_records(SET_ASIDE):
        problems.append(Problem(size, "set-aside entry", f"AuditEvent {id} was recorded but could not be stored "
                                f"({kept.get('error')}); sha256 {kept.get('sha256')}"))
    report.seconds = time.monotonic() - started
    return report


_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def first_changed(leaves: list[bytes], claimed: list[tuple[int, bytes, str]]) -> Problem | None:
    """The first claimed (size, root, what signed it), by size, whose root these leaves do not give:
    the change lies between the last size that holds and that one. Sizes are at most len(leaves)."""
    roots = _prefix_roots(leaves, {s for s, _r, _w in claimed})
    last_ok = 0
    for s, root, what in sorted(claimed, key=lambda c: c[0]):
        if roots[s] != root:
            return Problem(last_ok, "changed entry", f"the tree at size {s} is not the one the {what} signed "
                                                     f"(the change lies in indexes {last_ok}..{max(s - 1, last_ok)})")
        last_ok = s
    return None


def _quick_leaf(body: bytes) -> bytes | None:
    """The leaf through orjson (several times faster than log.canonical's json module). It equals the
    logged leaf only if orjson wrote exactly the logged canonical bytes: then the body parses (orjson)
    to the logged value, and the json module parses it to the same value, since the two parsers differ
    only on integers beyond 64 bits (orjson reads them as floats), which a run of 20 digits sends to the
    exact path. So a match proves the entry; a mismatch, or None (orjson refuses the body, or long
    digits), is decided again with log.leaf_of before anything is reported."""
    if isinstance(body, str) or _LONG_DIGITS.search(body):     # (a body SQL rewrote as text: exact path)
        return None
    try:
        return merkle.leaf_hash(orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS))
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError):
        return None


def _prefix_roots(leaves: list[bytes], sizes: set[int]) -> dict[int, bytes]:
    """The roots of the trees of these sizes: log.extend inlined, one pass (RFC 9162 2.1.1)."""
    out, stack, node = {}, [], merkle.node_hash
    if 0 in sizes:
        out[0] = merkle.EMPTY_ROOT
    for i, leaf in enumerate(leaves, 1):
        height, h = 0, leaf
        while stack and stack[-1][0] == height:
            h = node(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
        if i in sizes:
            out[i] = audit_log.range_root(stack)
    return out
