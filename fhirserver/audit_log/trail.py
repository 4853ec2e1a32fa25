"""The audit trail of one request: what it touched and wrote, recorded as BALP AuditEvents (balp.py)
durably before the response leaves (docs/audit.md, "What is recorded").

A request (and each entry of a batch or transaction Bundle) is a Record. The Repository reports every
version it hands out (touched), the write path every version it stores (wrote, from
governance/provenance.note). Events are one per patient the record touched:

- a record that wrote is audited INSIDE the unit of work that wrote, in the same store transaction
  (persist, called by governance/provenance.unit): the write and its AuditEvent commit or roll back
  together, so a failing audit write fails the request and commits nothing. A transaction Bundle's
  records, reads included, are all audited in its one unit;
- everything else (reads, searches, failures, auth events) is audited after the handler ran and
  before the response is sent (install: after_request), through the group commit (group_commit.py):
  if that fails the client gets 503 instead of the answer.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from .. import jsonio
from ..governance import custodian
from . import balp
from .classify import Call, classify

log = logging.getLogger("medport.audit_trail")
_current: contextvars.ContextVar["Trail | None"] = contextvars.ContextVar("medport_audit_trail", default=None)
# the FHIR API's own documents: not interactions with data
UNAUDITED = ("/fhir/.well-known/", "/fhir/openapi.json", "/fhir/docs")
PATIENT_PARAMS = frozenset({"patient", "subject", "patient:Patient", "subject:Patient", "beneficiary"})
MAX_PATIENTS = 1000       # events of one record at most (a page is at most MEDPORT_MAX_COUNT resources)
_ID = rb"[A-Za-z0-9\-.]{1,64}"
_ID_RE = re.compile(_ID.decode())


@dataclass
class Record:
    call: Call
    query: str | None = None
    status: int | None = None
    description: str | None = None
    url_patient: str | None = None
    touched: list = field(default_factory=list)        # Versions handed out
    written: list = field(default_factory=list)        # (versioned reference, patients)
    persisted: bool = False

    def fail(self, status: int, description: str | None) -> None:
        self.status, self.description = status, description


class Trail:
    def __init__(self, base: str, method: str, path: str | None, query: str | None, request_id: str | None,
                 actor=None):
        self.base = base
        self.request_id = request_id
        self._actor = actor            # a balp.Actor, or a function making it (once) when first needed
        self.top = _record(method, path, query) if path is not None else Record(Call("none"))
        self.extra: list[dict] = []    # events built elsewhere (auth events)
        self.current = self.top
        self.records = [self.top]
        self._unit_writes: list[tuple[Record, str, tuple]] = []
        self._in_flight: list[Record] = []
        self._patient_ref = _patient_reference(base)

    @property
    def actor(self) -> balp.Actor:
        if not isinstance(self._actor, balp.Actor):
            self._actor = self._actor() if callable(self._actor) else balp.Actor()
        return self._actor

    # ---- what the request did -------------------------------------------------------------------
    @contextlib.contextmanager
    def entry(self, method: str | None, url: str | None):
        """A batch/transaction entry: what happens inside is its own Record."""
        path, _, query = (url or "").partition("?")
        rec = _record(method or "GET", path, query or None)
        self.records.append(rec)
        outer, self.current = self.current, rec
        try:
            yield rec
        finally:
            self.current = outer

    def unit_started(self) -> None:
        self._unit_writes, self._in_flight = [], []

    def wrote(self, reference: str, patients: tuple) -> None:
        self._unit_writes.append((self.current, reference, patients))

    def persist(self, store) -> None:
        """Inside the unit, before it commits: append the AuditEvents of what it wrote (and, for a
        transaction Bundle, of all its entries and itself) to the audit journal, in the unit (they
        commit or roll back with the writes). One journal row each, not an indexed resource: a
        Bundle's events cost the writer lock next to nothing (issue 16); the integrator drains them
        into AuditEvents as it does every read's (journal.py)."""
        from . import journal  # (it imports interactions.common, which imports this module)
        journal.append(store, self.unit_events())

    def unit_events(self) -> list[dict]:
        """The AuditEvents of the unit's writes (see persist), its records then awaiting unit_committed."""
        records: dict[int, Record] = {}          # by identity, in order (Records are mutable dataclasses:
        for rec, reference, patients in self._unit_writes:     # == compares every field, a list scan is
            rec.written.append((reference, patients))          # quadratic in a Bundle's entries)
            records.setdefault(id(rec), rec)
        if self.top.call.code == "transaction":
            for r in self.records:
                if not r.persisted:
                    records.setdefault(id(r), r)
            self.top.status = self.top.status or 200
        self._in_flight = list(records.values())
        return [e for rec in self._in_flight for e in self.events(rec, default_status=200)]

    def unit_committed(self) -> None:
        for rec in self._in_flight:
            rec.persisted = True
        self._unit_writes, self._in_flight = [], []

    # ---- the events ------------------------------------------------------------------------------
    def pending(self) -> list[dict]:
        """The events not yet stored, once the response's status is known (top.status)."""
        failed_transaction = self.top.call.code == "transaction" and (self.top.status or 200) >= 400
        out, self.extra = self.extra, []
        for rec in self.records:
            if rec.persisted:
                continue
            if rec is not self.top and failed_transaction and (rec.status or 200) < 400:
                continue            # rolled back with the transaction: it did not happen
            if rec.written and (rec.status or 200) >= 400:
                rec.written = []    # its unit rolled back
            out += self.events(rec)
        return out

    def events(self, rec: Record, default_status: int = 500) -> list[dict]:
        out: list[dict] = []
        if rec.call.code == "none":
            return out
        return [self._held(e) for e in self._events(rec, default_status)]

    def _held(self, event: dict) -> dict:
        """The acting organisation holds its people's events (its privacy officer searches them)."""
        if self.actor.organization:
            custodian.stamp(event, self.actor.organization)
        return event

    def _events(self, rec: Record, default_status: int) -> list[dict]:
        out: list[dict] = []
        status = rec.status or default_status
        recorded = balp.now()
        if rec.written:
            for reference, patients in rec.written:
                what = balp.Interaction(rec.call.code, status, reference, rec.query, rec.call.operation,
                                        rec.description)
                out += [balp.event(self.base, self.actor, what, p, self.request_id, recorded)
                        for p in (patients or (None,))]
            return out
        target = self._target(rec)
        nothing_written = rec.call.code in ("create", "update", "patch", "delete") and status < 400
        if nothing_written and target is None and rec.touched:     # e.g. If-None-Exist matched: 200, the match
            v = rec.touched[0]
            target = f"{v.type}/{v.id}/_history/{v.version}"
        whole = balp.Interaction(rec.call.code, status, target, rec.query, rec.call.operation, rec.description,
                                 done=not nothing_written)
        patients = self.patients(rec)
        if not patients:
            return [balp.event(self.base, self.actor, whole, None, self.request_id, recorded)]
        # what a patient reads of a query about them names no one else: the events in patients'
        # compartments carry the query's parameter names only, one event outside them the query itself
        query = rec.query if self._confined() else redacted(rec.query)
        what = whole if query == rec.query else dataclasses.replace(whole, query=query)
        out = [balp.event(self.base, self.actor, what, p, self.request_id, recorded) for p in patients]
        if what is not whole:
            out.append(balp.event(self.base, self.actor, whole, None, self.request_id, recorded))
        return out

    def _target(self, rec: Record) -> str | None:
        call = rec.call
        if self._confined() and (rec.status or 500) >= 400:
            return None     # what a patient's token failed to reach is not named (see patients())
        if call.code in ("read", "vread", "history-instance") or (call.code == "operation" and call.id):
            for v in rec.touched:
                if v.type == call.type and v.id == call.id:
                    return f"{v.type}/{v.id}/_history/{v.version}" if call.code != "history-instance" \
                        else f"{v.type}/{v.id}"
        return call.target

    def patients(self, rec: Record) -> list[str]:
        """The patients a record touched: of the versions it handed out, named by its URL or query,
        else the token's patient context."""
        found: dict[str, None] = {}
        named = [rec.url_patient] if rec.url_patient else []
        named += self._query_patients(rec)
        own = self._confined()
        if own is not None:
            # a patient's (or proxy's) token reaches its own compartment alone: a patient it names
            # but cannot reach is recorded as its own query, never as an event about (shown to) that
            # other patient, which would tell them who was probing
            named = [own] if named else []
        for pid in named:
            found[pid] = None
        for v in rec.touched:
            if v.type == "Patient":
                found[v.id] = None
            elif v.body:
                for m in self._patient_ref.finditer(v.body):
                    found[m.group(1).decode()] = None
        if not found and self.actor.patient_context:
            found[self.actor.patient_context] = None
        if len(found) > MAX_PATIENTS:
            log.warning("request %s touched %d patients: the first %d are recorded", self.request_id,
                        len(found), MAX_PATIENTS)
        return list(found)[:MAX_PATIENTS]

    def _confined(self) -> str | None:
        """The patient whose compartment alone a patient's (or proxy's) token reaches."""
        return self.actor.patient_context if self.actor.confined else None

    @staticmethod
    def _query_patients(rec: Record) -> list[str]:
        """Patients a search names: patient/subject parameters, and _id of a Patient search."""
        out = []
        for name, value in _query_pairs(rec.query):
            if name in PATIENT_PARAMS or (name == "_id" and rec.call.type == "Patient"):
                for one in value.split(","):
                    pid = one.rsplit("Patient/", 1)[-1] if "Patient/" in one else (one if "/" not in one else "")
                    if pid and _ID_RE.fullmatch(pid):
                        out.append(pid)
        return out


@functools.lru_cache(maxsize=8)
def _patient_reference(base: str) -> re.Pattern:
    """A local Patient reference in a stored (compact JSON) body: its id in group 1."""
    return re.compile(rb'"reference":"(?:' + re.escape(base.encode()) + rb'/)?Patient/(' + _ID
                      + rb')(?:/_history/[^"]*)?"')


def _record(method: str, path: str, query: str | None) -> Record:
    call = classify(method, path)
    parts = [p for p in path.strip("/").split("/") if p]
    url_patient = parts[1] if len(parts) > 1 and parts[0] == "Patient" and not parts[1].startswith(("$", "_")) \
        else None
    if call.code in ("search-type", "search-system"):      # BALP Query: the request as sent, never empty
        query = path.strip("/") + ("?" + query if query else "") or "?"
    elif call.code not in ("history-type", "history-system", "history-instance", "operation"):
        query = None
    return Record(call, query or None, url_patient=url_patient)


def redacted(query: str | None) -> str | None:
    """The query with every value replaced by '*' (its path and parameter names kept)."""
    if not query:
        return query
    path, _, params = query.partition("?")
    names = [name for name, _value in _query_pairs("?" + params)]
    return path + "?" + "&".join(f"{quote(name, safe=':._-')}=*" for name in names)


def _query_pairs(query: str | None):
    if not query:
        return []
    from urllib.parse import parse_qsl
    try:
        return parse_qsl(query.partition("?")[2] if "?" in query else query, keep_blank_values=True,
                         max_num_fields=200)
    except ValueError:
        return []


# ---- the hooks the rest of the server calls -----------------------------------------------------------
def current() -> Trail | None:
    return _current.get()


def touched(versions) -> None:
    """The Repository handed these versions out (read, vread, search, includes, history)."""
    trail = _current.get()
    if trail is not None:
        trail.current.touched.extend(v for v in versions if v is not None)


def wrote(reference: str, patients: tuple) -> None:
    trail = _current.get()
    if trail is not None:
        trail.wrote(reference, patients)


@contextlib.contextmanager
def entry(method: str | None, url: str | None):
    trail = _current.get()
    if trail is None:
        yield Record(Call("none"))
        return
    with trail.entry(method, url) as rec:
        yield rec


def restart() -> None:
    """The request is dispatched again from the start (resources/retry.py): forget what the failed
    attempt touched, wrote or met (its records), keeping the request's own identity."""
    trail = _current.get()
    if trail is not None:
        top = trail.top
        trail.top = trail.current = Record(top.call, top.query, url_patient=top.url_patient)
        trail.records, trail.extra = [trail.top], []
        trail._unit_writes, trail._in_flight = [], []


def set_interaction(code: str) -> None:
    """The view knows better than the URL (POST [base]: batch or transaction)."""
    trail = _current.get()
    if trail is not None:
        trail.top.call = Call(code)


def note_event(event: dict) -> None:
    """An event built by another part of the server (auth events) for this request's trail; without
    a trail (the CLI) it is not recorded here."""
    trail = _current.get()
    if trail is not None:
        trail.extra.append(event)


def error_text(body: bytes) -> str | None:
    """The first issue's diagnostics of an OperationOutcome answer."""
    try:
        outcome = jsonio.loads_stored(body)
        issue = (outcome.get("issue") or [{}])[0]
        return str(issue.get("diagnostics") or (issue.get("details") or {}).get("text") or "") or None
    except Exception:          # noqa: BLE001 - not an OperationOutcome: the status says enough
        return None
