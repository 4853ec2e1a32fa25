"""The audit log over HTTP (plain routes, not FHIR operations: their answers are a checkpoint note and
proofs; docs/audit.md):

- GET [base]/$audit-checkpoint: the latest signed checkpoint (text/plain, C2SP tlog-checkpoint);
- GET [base]/$audit-proof?index=N&size=S: inclusion proof of entry N in the tree of S entries;
- GET [base]/$audit-consistency?from=M&to=N: consistency proof between two tree sizes;
- GET [base]/$audit-entries?start=&end=: entries [start, end) with their leaf hashes (for mirrors).

Proofs and entries are JSON Parameters with base64 hashes. Who may call them: a regulator (user role or
regulator client), an administrator, or anyone when authorization is off. A patient (or a proxy acting
for them) may also ask $audit-proof for an entry whose AuditEvent their token can read, i.e. one in
their compartment (docs/audit.md, "Reading the log"); any other entry is refused (403).
"""
from __future__ import annotations

import base64

from flask import Response, request
from flask_smorest import Blueprint

from .. import bounds
from ..errors import BadRequest, Forbidden, NotFound
from ..governance import proxy
from ..resources import ctx
from ..resources.rendering import json_response
from . import log as audit_log
from . import merkle
from .overseers import oversees

bp = Blueprint("audit_log", __name__, description="The tamper-evident audit log: checkpoints, proofs, entries")
MAX_ENTRIES = 1000


def _allowed():
    c = ctx()
    if oversees(c.access):
        return c
    raise Forbidden("The audit log's checkpoints, proofs and entries are for regulators and administrators")


def _about_caller(c, entry) -> None:
    """A patient's (or their proxy's) proof: only of an AuditEvent their own token can read (the patient
    compartment, through the request's repository); anything else 403, whether it exists or not."""
    if c.access.claims.get("role") in ("patient", proxy.ROLE) and c.access.patient:
        try:
            c.repo.check("AuditEvent", entry.id, "read")
            return
        except (NotFound, Forbidden):
            pass
    raise Forbidden("This entry's AuditEvent is not about you: a patient may prove only the entries about "
                    "themselves; the audit log is otherwise for regulators and administrators")


def _int(name: str, default: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        if default is None:
            raise BadRequest(f"Parameter {name} is required")
        return default
    return bounds.parse_int(raw, f"Parameter {name}")      # ASCII digits, within int64 (not '²')


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _parameters(*params) -> dict:
    return {"resourceType": "Parameters", "parameter": list(params)}


@bp.route("/fhir/$audit-checkpoint", methods=["GET"])
def checkpoint():
    """The latest signed checkpoint of the audit log (text/plain; C2SP tlog-checkpoint)."""
    c = _allowed()
    text = audit_log.latest_checkpoint(c.store)
    if text is None:
        raise NotFound("The audit log has signed no checkpoint yet")
    return Response(text, content_type="text/plain; charset=utf-8")


@bp.route("/fhir/$audit-proof", methods=["GET"])
def proof():
    """Inclusion proof of entry `index` in the tree of `size` entries (default: the whole log)."""
    c = ctx()
    log_entries = audit_log.Leaves.get(c.store)
    index, size = _int("index"), _int("size", len(log_entries))
    if not oversees(c.access):
        if index >= len(log_entries):
            raise Forbidden("No entry about you at this index")
        _about_caller(c, log_entries[index])
    leaves = [e.leaf for e in log_entries]
    if not 0 <= index < size <= len(leaves):
        raise BadRequest(f"No entry {index} in a tree of {size} (the log has {len(leaves)} entries)")
    path = merkle.inclusion_proof(leaves[:size], index)
    return json_response(_parameters(
        {"name": "index", "valueInteger": index}, {"name": "size", "valueInteger": size},
        {"name": "leafHash", "valueBase64Binary": _b64(leaves[index])},
        {"name": "rootHash", "valueBase64Binary": _b64(merkle.root(leaves[:size]))},
        *({"name": "hash", "valueBase64Binary": _b64(h)} for h in path)))


@bp.route("/fhir/$audit-consistency", methods=["GET"])
def consistency():
    """Consistency proof from the tree of `from` entries to the tree of `to` (default: the whole log)."""
    c = _allowed()
    leaves = [e.leaf for e in audit_log.Leaves.get(c.store)]
    old, new = _int("from"), _int("to", len(leaves))
    if not 0 < old <= new <= len(leaves):
        raise BadRequest(f"No consistency proof from {old} to {new} (the log has {len(leaves)} entries)")
    path = merkle.consistency_proof(leaves[:new], old)
    return json_response(_parameters(
        {"name": "from", "valueInteger": old}, {"name": "to", "valueInteger": new},
        {"name": "fromRoot", "valueBase64Binary": _b64(merkle.root(leaves[:old]))},
        {"name": "toRoot", "valueBase64Binary": _b64(merkle.root(leaves[:new]))},
        *({"name": "hash", "valueBase64Binary": _b64(h)} for h in path)))


@bp.route("/fhir/$audit-entries", methods=["GET"])
def entries():
    """Entries [start, end) with their AuditEvent version and leaf hash (at most 1000 at a time)."""
    c = _allowed()
    log_entries = audit_log.Leaves.get(c.store)
    start = _int("start", 0)
    end = min(_int("end", start + MAX_ENTRIES), start + MAX_ENTRIES, len(log_entries))
    if start > len(log_entries):
        raise BadRequest(f"The log has {len(log_entries)} entries")
    return json_response(_parameters(
        {"name": "size", "valueInteger": len(log_entries)},
        *({"name": "entry", "part": [
            {"name": "index", "valueInteger": e.index},
            {"name": "auditEvent", "valueReference": {"reference": f"AuditEvent/{e.id}/_history/{e.version}"}},
            {"name": "leafHash", "valueBase64Binary": _b64(e.leaf)},
            {"name": "recorded", "valueInstant": e.at}]} for e in log_entries[start:end])))


def install(api) -> None:
    api.register_blueprint(bp)
