"""`medport audit export` and `medport audit verify --from-export`: the log as files a mirror keeps
(docs/audit.md, Export).

- OUT.ndjson: entry i of the range [start, end) is line i - start, the canonical JSON of its stored
  AuditEvent (log.canonical), so its leaf is merkle.leaf_hash(line) (RFC 9162 2.1.1).
- OUT.ndjson.checkpoint: the signed checkpoint (C2SP tlog-checkpoint) of size S >= end.
- OUT.ndjson.proof: JSON {"start", "end", "size", "left", "leaves", "right"}: the compact range of
  [0, start) (the roots of its perfect subtrees), the leaf hashes of [start, end) and the aligned
  perfect subtrees covering [end, S). Folded together they give the tree of S leaves: when that is the
  signed root, the leaf list is authenticated by the signature, and each line is checked against it,
  so a verifier names the exact index of a changed, deleted, swapped or inserted line.

Public keys are C2SP signed-note verifier keys, `<name>+<key id, 8 hex>+<base64(0x01 || key)>`
(https://c2sp.org/signed-note), printed by `medport audit public-key`.
"""
from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import checkpoint as cp
from . import log as audit_log
from . import merkle
from .keys import AuditKeys
from .overseers import oversees
from .verify import Problem, Report, pruned_below


class ExportError(RuntimeError):
    """The log cannot be exported as asked (exit 2), or does not hold what it signed (exit 1)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ---- verifier keys (signed-note) -------------------------------------------------------------------
def verifier_keys(store, settings) -> list[str]:
    """Under the name the log signs with: the latest checkpoint's origin, else the configured one."""
    latest = audit_log.latest_checkpoint(store)
    name = latest.split("\n", 1)[0] if latest else audit_log.origin(settings)
    out = []
    for _kid, public in AuditKeys(store).public_keys():
        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        out.append(f"{name}+{cp.key_id(name, public).hex()}+{base64.b64encode(cp.ED25519 + raw).decode()}")
    return out


def parse_verifier_key(line: str) -> tuple[str, Ed25519PublicKey]:
    name, kid, data = line.strip().split("+", 2)        # key data is base64: it may hold "+"
    raw = base64.b64decode(data, validate=True)
    if raw[:1] != cp.ED25519 or len(raw) != 33:
        raise ValueError(f"not an Ed25519 verifier key: {line!r}")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if cp.key_id(name, public).hex() != kid:
        raise ValueError(f"the key id of {line!r} does not match its key")
    return name, public


def check_signed(text: str, keys: list[str] | None, store=None) -> cp.Checkpoint:
    """The checkpoint if one of these verifier keys (else one of the store's keys) signed it; else ValueError."""
    if keys is None:
        return AuditKeys(store).verify(text)
    problems = []
    for line in keys:
        name, public = parse_verifier_key(line)
        try:
            return cp.verify(text, public, name)
        except ValueError as e:
            problems.append(str(e))
    raise ValueError("no key given signed the checkpoint" + (f" ({problems[0]})" if problems else ""))


# ---- compact ranges on both sides of the exported range ---------------------------------------------
def right_nodes(leaves: list[bytes], end: int) -> list[tuple[int, bytes]]:
    """[end, len(leaves)) as aligned perfect subtrees, left to right (each starts at a multiple of its width)."""
    out, pos, size = [], end, len(leaves)
    while pos < size:
        h = (pos & -pos).bit_length() - 1 if pos else size.bit_length()
        while (1 << h) > size - pos:
            h -= 1
        out.append((h, merkle.root(leaves[pos:pos + (1 << h)])))
        pos += 1 << h
    return out


def fold(left, leaves, right) -> bytes:
    """The root of the whole tree: push the leaves, then the right subtrees, onto the left compact
    range (binary addition: a subtree of height h at a multiple of 2^h merges like h carries)."""
    rng = audit_log.extend(list(left), leaves)
    for height, h in right:
        while rng and rng[-1][0] == height:
            h = merkle.node_hash(rng.pop()[1], h)
            height += 1
        rng.append((height, h))
    return audit_log.range_root(rng)


# ---- export ---------------------------------------------------------------------------------------
def fresh_checkpoint(store, settings) -> dict:
    """Integrate, and sign a checkpoint of the whole log if the latest does not cover it; while a
    server's integrator holds the lease, its latest checkpoint (it signs within audit_checkpoint_s)."""
    integrator = audit_log.Integrator(store, settings)
    if integrator.acquire():
        try:
            integrator.run_once()
            size, last = audit_log.tail(store)
            latest = store.get_record(audit_log.STATE_KIND, "checkpoint")
            if latest is None or latest["size"] < size:
                integrator.sign(size, last, latest)
        finally:
            integrator.release()
    latest = store.get_record(audit_log.STATE_KIND, "checkpoint")
    if latest is None:
        raise ExportError("the log has no signed checkpoint yet")
    return latest


def bulk_extension(store, settings, base: str, access) -> dict | None:
    """What a Bulk Data export holding AuditEvents adds to its manifest (its `extension`, export.html
    #response---complete-status), taken once its files are written: the signed checkpoint (fresh_checkpoint:
    the log integrated and signed first when no server's integrator holds the lease), the tree size it
    signs, the log's verifier keys and the endpoints that prove an exported event's place in that tree.
    None for a client that does not oversee the log (a hospital: the size of the whole log is not its to
    know, as $audit-checkpoint is not), or when the log has no checkpoint yet."""
    if not oversees(access):
        return None
    try:
        latest = fresh_checkpoint(store, settings)
    except ExportError:
        return None
    return {"checkpoint": latest["text"], "treeSize": latest["size"],
            "verifierKeys": verifier_keys(store, settings),
            "entries": f"{base}/$audit-entries", "inclusionProof": f"{base}/$audit-proof",
            "consistencyProof": f"{base}/$audit-consistency"}


def export(store, settings, out_path: str, checkpoint_path: str, start: int | None = None,
           end: int | None = None) -> tuple[int, int, int]:
    """Write the entries [start, end) of the latest checkpoint's tree; returns (start, end, size)."""
    latest = fresh_checkpoint(store, settings)
    signed = AuditKeys(store).verify(latest["text"])
    size = signed.size
    entries = audit_log.all_entries(store)[:size]
    if len(entries) < size:
        raise ExportError(f"the log holds {len(entries)} entries, its checkpoint {size}: run medport audit verify", 1)
    floor = pruned_below(store)
    start = floor if start is None else start
    end = size if end is None else min(end, size)
    if start < floor:
        raise ExportError(f"entries below {floor} were pruned (retention): export from --start {floor}")
    if not 0 <= start <= end:
        raise ExportError(f"bad range [{start}, {end}) of a log of {size} entries")
    leaves = [e.leaf for e in entries]
    left = audit_log.extend([], leaves[:start])
    right = right_nodes(leaves, end)
    if fold(left, leaves[start:end], right) != signed.root:
        raise ExportError("the stored log is not the tree its checkpoint signed: run medport audit verify", 1)
    with open(out_path, "wb") as f:
        for e in entries[start:end]:
            v = store.vread("AuditEvent", e.id, e.version)
            line = audit_log.canonical(v.body) if v is not None and v.body is not None else None
            if line is None or merkle.leaf_hash(line) != e.leaf:
                raise ExportError(f"index {e.index}: AuditEvent/{e.id}/_history/{e.version} is gone or changed: "
                                  "run medport audit verify", 1)
            f.write(line + b"\n")
    proof = {"start": start, "end": end, "size": size, "left": audit_log._range_json(left),
             "leaves": base64.b64encode(b"".join(leaves[start:end])).decode(),
             "right": audit_log._range_json(right)}
    with open(out_path + ".proof", "w", encoding="utf-8") as f:
        json.dump(proof, f)
    with open(checkpoint_path, "w", encoding="utf-8") as f:
        f.write(latest["text"])
    return start, end, size


# ---- verify an export -----------------------------------------------------------------------------
def verify_export(out_path: str, text: str, keys: list[str] | None, store=None,
                  proof_path: str | None = None) -> Report:
    """Recompute the tree from the export alone and check it against the signed checkpoint."""
    import time
    started = time.monotonic()
    report = Report()
    try:
        signed = check_signed(text, keys, store)
    except ValueError as e:
        report.problems.append(Problem(0, "bad checkpoint", str(e)))
        return report
    with open(proof_path or out_path + ".proof", encoding="utf-8") as f:
        proof = json.load(f)
    start, end = proof["start"], proof["end"]
    raw = base64.b64decode(proof["leaves"])
    expected = [raw[i:i + 32] for i in range(0, len(raw), 32)]
    left, right = audit_log._range_of(proof["left"]), audit_log._range_of(proof["right"])
    widths = sum(1 << h for h, _ in left) + len(expected) + sum(1 << h for h, _ in right)
    if (proof["size"], widths, end - start) != (signed.size, signed.size, len(expected)) or \
            fold(left, expected, right) != signed.root:
        report.problems.append(Problem(start, "bad proof", f"the export's proof is not the tree of {signed.size} "
                                                           "entries the checkpoint signed"))
        return report
    with open(out_path, "rb") as f:
        got = [merkle.leaf_hash(line.rstrip(b"\n")) for line in f]
    report.size = len(got)
    where = {leaf: start + k for k, leaf in enumerate(expected)}
    for k in range(max(len(got), len(expected))):
        if k < len(got) and k < len(expected) and got[k] == expected[k]:
            continue
        i = start + k
        if len(got) < len(expected):
            report.problems.append(Problem(i, "deleted entry", f"line {k + 1} should be entry {i}; the export "
                                                               f"has {len(expected) - len(got)} line(s) less"))
        elif len(got) > len(expected):
            report.problems.append(Problem(i, "entry inserted in the middle",
                                           f"line {k + 1} is not entry {i}; the export has "
                                           f"{len(got) - len(expected)} line(s) more"))
        elif where.get(got[k], i) != i:
            report.problems.append(Problem(i, "swapped entries", f"line {k + 1} holds entry {where[got[k]]}"))
        else:
            report.problems.append(Problem(i, "changed entry", f"line {k + 1} no longer hashes to leaf {i}"))
        break
    report.seconds = time.monotonic() - started
    return report
