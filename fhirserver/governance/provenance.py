"""Provenance of every write (provenance.html), written by the server in the write's own unit of work.

Every create, update, patch and delete (single interactions, transaction Bundles, each batch entry,
`medport load`) stores, in the SAME store transaction as what it wrote, Provenance resources whose
targets are the exact versions written (`Type/id/_history/n`): one per patient the written versions
are about (Patient compartment) and per operation, plus one without a patient for versions about
no patient. So the target and its Provenance commit or roll back together (no window, no orphan).
A standalone mongod has no transactions (storage/mongo_units.py: a unit writes one resource): there
each Provenance is written in its own unit right after the write commits, the best it can do.

- recorded: the write's time (the versions' lastUpdated);
- activity: v3-DataOperation CREATE, UPDATE (patch too) or DELETE;
- agent author: the token's fhirUser, else its client (identifier .../sid/client); for a proxy (a
  RelatedPerson user acting for the token's patient) onBehalfOf that Patient; writes made without a
  token (the CLI, `medport load`, authorization off) name the server (Device "Med-Port");
- agent custodian: the writer's Organization (the token's `organization`; for the server's own writes
  the deployment's default custodian), which also holds the Provenance (governance/custodian.py);
- the patient link: the `patient` search parameter (and so the Patient compartment) is
  `target.where(resolve() is Patient)`, so a Provenance about a patient whose Patient record was not
  itself written carries one more target, `Patient/<id>` without a version, marked with the
  extension PATIENT_LINK (it names whom the records are about; it was not written).

The `X-Provenance` header (provenance.html#header) is a Provenance in JSON sent with a write; it must
carry no target, be at most MAX_HEADER_BYTES, name no author but the token's own identity and no
custodian (the server names the writer's organisation: a header cannot forge another custody). Its
agents, reasons, activity codings, entities and policies are merged into every Provenance the write
produces; anything wrong is refused with 400 before anything is stored (from_header).

Provenance is SERVER_WRITTEN (smart_auth/admission.py): no token writes it directly.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
from dataclasses import dataclass, field

from .. import jsonio
from ..audit_log import trail
from ..errors import BadRequest, FhirError
from . import custodian
from .policy import MESSAGES

HEADER = "X-Provenance"
MAX_HEADER_BYTES = 8 * 1024
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PATIENT_LINK = "https://medport.health/fhir/StructureDefinition/provenance-patient-link"
SERVER_NAME = "Med-Port"
NOT_RECORDED = frozenset({"Provenance", "AuditEvent"})     # the server's own records have none
MERGED = ("agent", "reason", "entity", "policy")           # lists the header adds to
OPERATION_DISPLAY = {"CREATE": "create", "UPDATE": "revise", "DELETE": "delete"}

_active: contextvars.ContextVar["_Recorder | None"] = contextvars.ContextVar("provenance_recorder", default=None)


@dataclass(frozen=True)
class Written:
    type: str
    id: str
    version: int
    last_updated: str
    operation: str               # CREATE | UPDATE | DELETE
    patients: tuple[str, ...]    # the Patients whose compartment the version is in


@dataclass
class _Recorder:
    ctx: object
    tx: object
    template: dict | None
    written: list[Written] = field(default_factory=list)


@contextlib.contextmanager
def unit(ctx, template: dict | None = None):
    """ctx.store.transaction() that records what is written in it and, when its body ends normally,
    writes the Provenance of those versions in the same transaction (before it commits). A body that
    raises stores nothing, Provenance included."""
    alone = getattr(ctx.store, "topology", None) == "standalone"
    audit = trail.current()         # the request's audit trail: its writes' AuditEvents join the unit
    if audit is not None:
        audit.unit_started()
    with ctx.store.transaction() as tx:
        recorder = _Recorder(ctx, tx, template)
        token = _active.set(recorder)
        try:
            yield tx
        finally:
            _active.reset(token)
        if not alone:
            _write(recorder)
            if audit is not None:
                audit.persist(ctx.store)
    if alone:       # a standalone mongod has no transactions: one resource per unit, each Provenance right after
        for resource in _resources(recorder):
            with ctx.store.transaction() as tx:
                store(tx, ctx, resource, _new_id())
        if audit is not None:           # one resource per unit there: the events go to the journal
            from ..audit_log import journal
            journal.append(ctx.store, audit.unit_events())
    if audit is not None:
        audit.unit_committed()


def note(tx, version, operation: str, rows: dict | None = None, body: bytes | None = None) -> None:
    """Called by every write (interactions/common.py): remember `version` for the Provenance of the unit
    recording in `tx`, if any. rows: the version's index rows; body: the stored content (deletes)."""
    recorder = _active.get()
    if recorder is None or recorder.tx is not tx or version.type in NOT_RECORDED:
        return
    if rows is None:
        from ..search.extract import extract
        rows = extract(jsonio.loads_stored(body), recorder.ctx.base) if body else {}
    written = Written(version.type, version.id, version.version, version.last_updated, operation,
                      patients_of(version.type, version.id, rows))
    recorder.written.append(written)
    trail.wrote(f"{version.type}/{version.id}/_history/{version.version}", written.patients)


def patients_of(rtype: str, id: str, rows: dict) -> tuple[str, ...]:
    """The local Patients whose compartment a resource with these index rows is in."""
    if rtype == "Patient":
        return (id,)
    keys = _compartment_keys(rtype)
    if not keys:
        return ()
    found = {r[3] for r in rows.get("reference", ()) if r[0] in keys and r[2] == "Patient" and r[3]}
    return tuple(sorted(found))


@functools.lru_cache(maxsize=None)
def _compartment_keys(rtype: str) -> frozenset[str]:
    from ..search.compartment import members
    from ..search.registry import lookup
    keys = set()
    for code in members("Patient").get(rtype, ()):
        param = lookup(rtype, code)
        if param is not None and param.kind == "reference":
            keys.add(param.key)
    return frozenset(keys)


# ---- what is written --------------------------------------------------------------------------------

def _write(recorder: _Recorder) -> None:
    for resource in _resources(recorder):
        store(recorder.tx, recorder.ctx, resource, _new_id())


def _new_id() -> str:
    from ..interactions.common import new_id
    return new_id()


def _resources(recorder: _Recorder) -> list[dict]:
    """The Provenance resources of what the unit wrote: one per (patient, operation)."""
    groups: dict[tuple[str | None, str], list[Written]] = {}
    for w in recorder.written:
        # a message's Provenance links no patient: a Consent sharing the patient's Provenance would
        # otherwise tell another organisation who wrote which message when (docs/messages.md)
        for patient in (w.patients if w.type not in MESSAGES else ()) or (None,):
            groups.setdefault((patient, w.operation), []).append(w)
    if not groups:
        return []
    ctx = recorder.ctx
    agents = _agents(ctx, recorder.template)
    holder = custodian.of_writer(ctx.access, ctx.settings.default_custodian)
    out = []
    for (patient, operation), versions in groups.items():
        resource = build(versions, patient, operation, agents, recorder.template)
        custodian.stamp(resource, holder)
        out.append(resource)
    return out


def store(tx, ctx, resource: dict, id: str):
    """Write one Provenance built by the server (build() makes it valid, and the parts a client added
    were validated by from_header)."""
    from ..interactions.common import store_server_written
    return store_server_written(tx, ctx.base, resource, id)


def build(versions: list[Written], patient: str | None, operation: str, agents: list[dict],
          template: dict | None) -> dict:
    targets = [{"reference": f"{w.type}/{w.id}/_history/{w.version}"} for w in versions]
    if patient is not None and not any(w.type == "Patient" and w.id == patient for w in versions):
        targets.append({"extension": [{"url": PATIENT_LINK, "valueBoolean": True}],
                        "reference": f"Patient/{patient}"})
    activity = {"coding": [{"system": DATA_OPERATION, "code": operation, "display": OPERATION_DISPLAY[operation]}]}
    resource = {"resourceType": "Provenance", "target": targets,
                "recorded": max(w.last_updated for w in versions),
                "activity": activity, "agent": copy.deepcopy(agents)}
    if template:
        given = template.get("activity") or {}
        activity["coding"] += copy.deepcopy(given.get("coding") or [])
        if given.get("text"):
            activity["text"] = given["text"]
        for key in ("occurredPeriod", "occurredDateTime", "location"):
            if key in template:
                resource[key] = copy.deepcopy(template[key])
        for key in MERGED[1:]:
            if template.get(key):
                resource[key] = copy.deepcopy(template[key])
    return resource


def _agents(ctx, template: dict | None) -> list[dict]:
    """The author (the writer), the custodian (its organisation), then the header's other agents."""
    given = list((template or {}).get("agent") or [])
    own = [a for a in given if _is_author(a)]
    extra = {k: copy.deepcopy(v) for k, v in own[0].items() if k != "onBehalfOf"} if own else {}
    author = {**extra, **_author(ctx)}     # the header's own author adds role, extensions...
    agents = [author]
    holder = custodian.of_writer(ctx.access, ctx.settings.default_custodian)
    if holder:
        agents.append({"type": _concept("custodian", "Custodian"), "who": {"reference": holder}})
    agents += [copy.deepcopy(a) for a in given if not _is_author(a)]
    return agents


def _author(ctx) -> dict:
    agent = {"type": _concept("author", "Author"), "who": identity(ctx)}
    claims = ctx.access.claims if ctx.access.grants is not None else {}
    user = _relative(ctx, str(claims.get("fhirUser") or ""))
    patient = claims.get("patient") or ctx.access.patient
    proxy = user.startswith("RelatedPerson/") or claims.get("role") == "related-person"
    if proxy and patient:         # a proxy (governance/proxy.py) acts for the patient
        agent["onBehalfOf"] = {"reference": f"Patient/{patient}"}
    return agent


def identity(ctx) -> dict:
    """The Reference naming who writes: the token's fhirUser, else its client, else the server."""
    if ctx.access.grants is None:
        return {"type": "Device", "display": SERVER_NAME}
    claims = ctx.access.claims
    if claims.get("fhirUser"):
        return {"reference": _relative(ctx, str(claims["fhirUser"]))}
    return {"identifier": {"system": f"{ctx.base}/sid/client", "value": str(claims.get("client_id") or "")}}


def _relative(ctx, reference: str) -> str:
    return reference.removeprefix(ctx.base.rstrip("/") + "/")


def _concept(code: str, display: str) -> dict:
    return {"coding": [{"system": PARTICIPANT, "code": code, "display": display}]}


def _is_author(agent: dict) -> bool:
    """An agent of type author, or of no type (read as an author: who else would it be?)."""
    codings = (agent.get("type") or {}).get("coding") or []
    return not codings or any(c.get("code") == "author" for c in codings if isinstance(c, dict))


def _is_custodian(agent: dict) -> bool:
    codings = (agent.get("type") or {}).get("coding") if isinstance(agent.get("type"), dict) else None
    return any(isinstance(c, dict) and c.get("code") == "custodian" for c in codings or ())


# ---- the X-Provenance header ------------------------------------------------------------------------

def from_header(ctx, value: str | None) -> dict | None:
    """The X-Provenance header checked, as a template for build(); BadRequest when it is malformed,
    too long, carries a target or names an author other than the writer."""
    if value is None:
        return None
    if len(value.encode("utf-8", "surrogatepass")) > MAX_HEADER_BYTES:
        raise BadRequest(f"The {HEADER} header may be at most {MAX_HEADER_BYTES} bytes")
    try:
        given = jsonio.loads(value.encode("utf-8", "replace"))
    except FhirError:
        raise BadRequest(f"The {HEADER} header is not valid JSON (a Provenance resource)") from None
    if not isinstance(given, dict) or given.get("resourceType", "Provenance") != "Provenance":
        raise BadRequest(f"The {HEADER} header must be a JSON Provenance resource")
    if "target" in given:
        raise BadRequest(f"The {HEADER} header must carry no target: the server fills it in with the "
                         "versions the request writes")
    for key in MERGED:
        if key in given and not (isinstance(given[key], list) and all(isinstance(x, dict) for x in given[key])):
            raise BadRequest(f"{HEADER}: {key} must be an array of objects")
    if "activity" in given and not isinstance(given["activity"], dict):
        raise BadRequest(f"{HEADER}: activity must be a CodeableConcept")
    mine = identity(ctx)
    for agent in given.get("agent", ()):
        if _is_custodian(agent):
            raise BadRequest(f"{HEADER}: a custodian agent is named by the server (the writer's "
                             "organisation); no request may record one")
        if _is_author(agent) and not _same(ctx, agent.get("who"), mine):
            raise BadRequest(f"{HEADER}: an author agent must be the writer itself ({_describe(mine)}); "
                             "no request may record another identity as author")
    template = {k: given[k] for k in (*MERGED, "activity", "occurredPeriod", "occurredDateTime", "location")
                if k in given}
    trial = build([Written("Basic", "x", 1, "2000-01-01T00:00:00Z", "CREATE", ())], None, "CREATE",
                  _agents(ctx, template), template)
    from ..validation import validate
    try:
        validate(trial)
    except FhirError as e:
        raise BadRequest(f"{HEADER}: not a valid Provenance: {e.issues[0].diagnostics}") from None
    return template


def _same(ctx, who, mine: dict) -> bool:
    if who is None:
        return True           # the author with no `who`: the writer (filled in)
    if not isinstance(who, dict) or ctx.access.grants is None:
        return False          # without a token nobody's identity can be vouched for
    if "reference" in who:
        return "reference" in mine and _relative(ctx, str(who["reference"])) == mine["reference"]
    if "identifier" in who:
        ident = who["identifier"] if isinstance(who["identifier"], dict) else {}
        return "identifier" in mine and (ident.get("system"), ident.get("value")) == \
            (mine["identifier"]["system"], mine["identifier"]["value"])
    return False


def _describe(who: dict) -> str:
    if "reference" in who:
        return who["reference"]
    if "identifier" in who:
        return f"client {who['identifier']['value']}"
    return f"the server ({SERVER_NAME})"
