"""Shared rules of the write interactions: ids, server-owned meta, validation."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from .. import bounds, jsonio, messages, orders
from ..conformance import CONFORMANCE_TYPES, definitions, trust
from ..definitions import resource_types
from ..errors import BadRequest, Gone, MethodNotAllowed, NotFound, VersionConflict
from ..governance import addressed, custodian, provenance
from ..quality import record as quality
from ..repository import GuardedTransaction
from ..search.extract import extract
from ..search.kinds import date_kind
from ..smart_auth.access import UNRESTRICTED, Access
from ..storage.base import Transaction, Version, Write
from ..subscriptions import events as subscription_events
from ..subscriptions import spec as subscription_spec
from ..uhid import patient_rules
from ..validation import validate, write_policy
from ..validation.profile.outcome import ProfileOutcome
from . import write_origin
from .instants import now_instant

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")   # datatypes.html#id


@dataclass
class Result:
    """What an interaction produced: the stored version and the HTTP status to report."""
    version: Version | None
    status: int = 200
    resource: dict | None = None      # the parsed resource when the interaction already has it
    outcome: ProfileOutcome | None = None     # its profile validation (Prefer: return=OperationOutcome shows it)


def new_id() -> str:
    return str(uuid.uuid4())


def check_type(type: str) -> None:
    if type not in resource_types():
        raise NotFound(f"Unknown resource type '{type}'")


def check_id(id: str) -> None:
    if not ID_RE.match(id):
        raise BadRequest(f"Invalid resource id '{id}': 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")


def check_body(type: str, resource) -> dict:
    """The body is a resource of the URL's type and is structurally valid R4."""
    if not isinstance(resource, dict):
        raise BadRequest("The request body must be a JSON object (a FHIR resource)")
    body_type = resource.get("resourceType")
    if body_type != type:
        raise BadRequest(f"The resource type in the body ('{body_type}') does not match the URL ('{type}')")
    validate(resource)
    return resource


def current_or_raise(version: Version | None, type: str, id: str) -> Version:
    if version is None:
        raise NotFound(f"{type}/{id} is not known")
    if version.deleted:
        raise Gone(f"{type}/{id} was deleted", headers={"ETag": f'W/"{version.version}"'})
    return version


@dataclass
class Prepared:
    """A validated resource and its index rows, computed before the write lock is taken."""
    type: str
    resource: dict
    rows: dict
    blob: str | None = None
    base: str = ""
    uhid: patient_rules.Plan | None = None     # Patients: the UHID to keep or claim
    access: Access = UNRESTRICTED              # the writer's rights, judged on what is finally stored
    keeps_custodian: bool = False              # a writer without an organisation keeps the record's custodian
    # the profile validation of the resource as stored (validation/write_policy.py); None: nothing checked
    profile_outcome: ProfileOutcome | None = None


def prepare(ctx, type: str, resource, blob: str | None = None) -> Prepared:
    """Validate and extract index rows: the expensive, lock-free half of a write."""
    check_body(type, resource)
    subscription_spec.on_prepare(ctx.settings, type, resource)
    write_origin.stamp(resource, write_origin.writer(ctx.access))
    custodian.stamp(resource, custodian.of_writer(ctx.access, ctx.settings.default_custodian))
    trust.stamp(resource, ctx.access, type in CONFORMANCE_TYPES)     # an administrator's definition
    uhid = patient_rules.plan(ctx.uhid_system, resource) if type == "Patient" else None
    # judged here, off the write lock: the resource is as stored (a Patient's UHID is in it since plan;
    # the lock only changes values the profiles do not judge: a redrawn UHID number, a kept custodian, meta)
    outcome = write_policy.judge(ctx, type, resource)
    return Prepared(type, resource, extract(resource, ctx.base), blob, ctx.base, uhid, ctx.access,
                    ctx.access.organization is None, outcome)


WRITE_INTERACTION = {"POST": "create", "PUT": "update", "PATCH": "patch"}
# the audit trail is append-only (docs/audit.md): its versions are only ever created, whoever asks,
# authorization on or off, over HTTP or from the CLI
APPEND_ONLY = frozenset({"AuditEvent"})


def _append_only(rtype: str, method: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"{rtype} is append-only: {method} is refused (the audit trail is never "
                            "changed or deleted)", headers={"Allow": "GET, HEAD, POST"})


def store_new_version(tx: Transaction | GuardedTransaction, p: Prepared, id: str, method: str,
                      current: Version | None) -> Version:
    """The one write path (a request's guarded transaction, or the raw one of server-side work). Admit,
    then stamp server-owned meta (versionId, lastUpdated) under the write lock and write the next
    version. Admission sees the final id and the version replaced, so it judges exactly what is stored.
    lastUpdated is taken here, not earlier, so that it never goes back in commit order (_since stays safe)."""
    guarded, tx = tx, _raw(tx)
    if p.type in APPEND_ONLY and method != "POST":
        raise _append_only(p.type, method)
    resource = p.resource
    resource["id"] = id
    if _replaced(current) is not None and (p.keeps_custodian or addressed.keeps_custody(p.type, p.access.organization)):
        held = custodian.of(jsonio.loads_stored(current.body))
        # a patient's or an addressee's edit leaves custody as it is (an addressee's: none stays none)
        if held != custodian.of(resource) and (held or not p.keeps_custodian):
            custodian.stamp(resource, held)
            p.rows = extract(resource, p.base)
    messages.check(tx, p, resource, _replaced(current))       # thread and sender rules (messages/)
    p.access.admit_write(WRITE_INTERACTION[method], resource, p.base, _replaced(current), _removed(tx, current),
                         p.uhid.system if p.uhid is not None else None)
    orders.check(guarded, p.access, p.base, p.type, id, resource, _replaced(current))    # docs/orders.md
    if p.uhid is not None and patient_rules.bind(tx, p.uhid, p.resource, id, current):
        p.rows = extract(p.resource, p.base)
    number = (current.version if current else 0) + 1
    stamp = now_instant()
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(number)
    meta["lastUpdated"] = stamp
    resource["meta"] = meta
    version = tx.write(Write(p.type, id, number, stamp, method, jsonio.dumps(resource),
                             restamp(p.rows, p.type, stamp), p.blob))
    provenance.note(tx, version, "CREATE" if _replaced(current) is None else "UPDATE", p.rows)
    quality.note(tx, version, resource, p.rows, p.profile_outcome,
                 p.uhid.system if p.uhid is not None else None)      # docs/data-quality.md
    subscription_events.note(tx, version, p.access, p.base, resource, _replaced(current))
    _definition_written(tx, p.type)
    return version


def store_server_written(tx, base: str, resource: dict, id: str | None = None,
                         current: Version | None = None, rows: dict | None = None) -> Version:
    """Write a resource the server built itself (its Provenance, its AuditEvents) or changed itself (a
    Slot's booking state, a request its Task completed): not validated again (its builder makes valid
    R4, which the tests check), with the server's unrestricted rights. current: the version an update
    replaces exactly (the store refuses it if the record changed since: storage/base.py check_expected);
    an update keeps the record's custodian. None: a create. rows: extract(resource, base) when the
    caller has them (the audit journal's memo, search/extract_memo.py)."""
    prepared = Prepared(resource["resourceType"], resource, extract(resource, base) if rows is None else rows,
                        None, base, None, UNRESTRICTED, keeps_custodian=current is not None)
    if current is None:
        return store_new_version(tx, prepared, id or new_id(), "POST", None)
    return store_new_version(tx, prepared, current.id, "PUT", current)


def restamp(rows: dict, rtype: str, stamp: str) -> dict:
    """Index rows with the _lastUpdated row of the server's stamp instead of the client's meta."""
    key = f"{rtype}._lastUpdated"
    dates = [r for r in rows.get("date", ()) if r[0] != key]
    dates.append((key, 0) + date_kind.date_range(stamp))       # what date_kind.rows makes of an instant
    return {**rows, "date": dates}


def _replaced(current: Version | None) -> bytes | None:
    """The stored content a write replaces (the rights judge it too)."""
    return None if current is None or current.deleted else current.body


def _removed(tx: Transaction, current: Version | None):
    """For a write over a deletion: a callable giving the content the deletion removed (its last version
    with content), read only if a rule asks (custody survives deletion: Access.admit_write); else None."""
    if current is None or not current.deleted:
        return None

    def content() -> bytes | None:
        for number in range(current.version - 1, 0, -1):
            found = tx.vread(current.type, current.id, number)
            if found is not None and not found.deleted:
                return found.body
        return None
    return content


def store_delete(ctx, tx: Transaction | GuardedTransaction, current: Version) -> Version:
    """Delete current: the request's rights must admit removing exactly this content (admission.py)."""
    guarded, tx = tx, _raw(tx)
    if current.type in APPEND_ONLY:
        raise _append_only(current.type, "DELETE")
    ctx.access.admit_write("delete", {"resourceType": current.type, "id": current.id}, ctx.base, current.body)
    orders.check(guarded, ctx.access, ctx.base, current.type, current.id, None, current.body)
    messages.check_delete(tx, ctx.access, ctx.base, current.type, current.body)
    version = tx.write(Write(current.type, current.id, current.version + 1, now_instant(), "DELETE", None))
    provenance.note(tx, version, "DELETE", body=current.body)
    quality.note(tx, version, None, None, None, None)
    subscription_events.note(tx, version, ctx.access, ctx.base, None, current.body)
    _definition_written(tx, current.type)
    return version


def _definition_written(tx, rtype: str) -> None:
    """This process forgets the definitions it looked up (conformance/definitions.py): the next write
    is judged by the new one."""
    if rtype in CONFORMANCE_TYPES:
        definitions(tx.store).changed()


def _raw(tx):
    """The store transaction under a request's guarded one (repository.py): its reads and matches are
    judged by the request's rights; the write itself is admitted here, by Prepared.access."""
    return tx.raw if isinstance(tx, GuardedTransaction) else tx


def if_match_version(header: str | None) -> int | None:
    """If-Match: W/"3" (or "3") -> 3 (http.html#concurrency)."""
    if not header:
        return None
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    if not bounds.is_digits(tag):
        raise BadRequest(f"Invalid If-Match header {header!r}: expected W/\"<versionId>\"")
    return bounds.parse_int(tag, "The If-Match version")


def check_if_match(current: Version | None, if_match: int | None, type: str, id: str) -> None:
    """If-Match names the current version, or the write fails with 412 (http.html#concurrency)."""
    if if_match is None:
        return
    have = current.version if current is not None and not current.deleted else None
    if have != if_match:
        raise VersionConflict(f"If-Match version {if_match} is not the current version of {type}/{id}"
                              + (f" ({have})" if have else " (it does not exist)"))
