"""Turning a token's grants into a guard: the query restriction the store applies to every set
of resources a search touches (matches, chained targets, _has sources, includes).

Policy for patient/ scopes: only the token's patient compartment is visible (Patient
CompartmentDefinition); the patient's own Patient resource is in it. Types outside the
compartment are not visible through patient/ scopes (user/ or system/ scopes grant them), except
definitions (conformance.CONFORMANCE_TYPES): public standards, read by every token whose scopes name
their type (and without a token: public_directory.py).
"""
from __future__ import annotations

import dataclasses
import functools
import time

from .. import jsonio
from ..conformance import CONFORMANCE_TYPES
from ..errors import BadRequest, Forbidden, NotFound, ServiceUnavailable, Unauthorized
from ..governance import addressed, binary_context, break_glass, custodian, proxy
from ..governance.policy import DIRECTORY, HELD_ONLY, MAX_LISTED, ConsentSet, directory_node, organization_guard
from ..search import query as q
from ..search.compartment import members
from ..search.kinds.reference_kind import RefCond
from ..search.matcher import matches_alone
from ..search.parse import parse_search
from ..search.registry import lookup
from ..subscriptions import ownership
from . import admission
from .scopes import INTERACTION_PERMISSION, Grants, ScopeError


def search_guard(grants: Grants, patient_id: str | None, interaction: str = "search-type"):
    """guard(rtype) -> query node, q.DENY, or None (no restriction)."""
    def guard(rtype: str):
        decision = grants.decide(interaction, rtype)
        if not decision.allowed:
            return q.DENY
        parts = []
        if decision.patient_compartment and rtype not in CONFORMANCE_TYPES:
            clause = _compartment(rtype, patient_id) if patient_id else None
            if clause is None:
                return q.DENY
            parts.append(clause)
        if decision.alternatives:
            alternatives = [a for a in (_granular(rtype, alt) for alt in decision.alternatives) if a is not None]
            if not alternatives:
                return q.DENY
            parts.append(q.Or(tuple(alternatives)))
        return q.And(tuple(parts)) if parts else None
    return guard


def _compartment(rtype: str, patient_id: str):
    """What patient/ scopes reach of rtype: the patient's compartment; a Binary follows its
    securityContext (governance/binary_context.py: the PDF of her report is hers to read)."""
    if rtype == "Binary":
        return binary_context.readable_context(patient=patient_id)
    return patient_compartment(rtype, patient_id)


def patient_compartment(rtype: str, patient_id: str):
    """Resources of rtype in Patient/patient_id's compartment, or None when rtype has no place in it."""
    codes = members("Patient").get(rtype, ())
    parts = [q.IdIn((patient_id,))] if rtype == "Patient" else []
    for code in codes:
        param = lookup(rtype, code)
        if param is not None and param.kind == "reference":
            parts.append(q.Match("reference", param.key, RefCond("Patient", patient_id)))
    return q.Or(tuple(parts)) if parts else None


def _granular(rtype: str, query: tuple[tuple[str, str], ...]):
    """A granular scope's query as a node for this type; None if it cannot apply to it."""
    try:
        return parse_search(rtype, list(query)).query
    except BadRequest:
        return None


READS = ("read", "vread", "history-instance")
# what a regulator reads across the exchange: the audit trail, provenance and consents, not care
REGULATED = frozenset({"AuditEvent", "Provenance", "Consent"})
# and the definitions the exchange's records are judged by (public standards)
REGULATOR_READS = REGULATED | CONFORMANCE_TYPES


class Access:
    """What one request may do: unrestricted (authorization off, the CLI) or the grants of a verified
    access token. Interactions ask it before acting (SMART App Launch 2.2, "Scopes and Launch Context"):

    - allow(): may this interaction touch this type at all? (403 if no scope covers it)
    - guard(): the restriction every query of a type is ANDed with (compartment, granular queries; for a
      hospital's token its organisation's records plus what patients share with it: governance/policy.py)
    - visible(): is this one resource inside the guard? If not, it answers as if it did not exist.
    - admit_write(): may this exact version be stored? (admission.py: writes cannot leave the token's reach)
    """

    def __init__(self, grants: Grants | None = None, patient: str | None = None, claims: dict | None = None,
                 sharing_default: str = "opt-in", store=None, directory: bool = False):
        self.grants, self.patient, self.claims = grants, patient, claims or {}
        self.directory = directory      # the public directory's rights: its records about no patient
        self.sharing_default, self._store = sharing_default, store   # kept for work done later (subscriptions)
        # the organisation the writer acts for (a patient acts for themselves, whatever app they use)
        patient_user = self.claims.get("role") == "patient"
        self.organization = _organization(self.claims) if grants is not None and not patient_user else None
        # a hospital's client or staff sees what its organisation holds plus what patients share with it;
        # administrators are not held to one (every use is audited)
        self.regulator = grants is not None and _regulator(self.claims, store)
        hospital = self.organization is not None and self.claims.get("role") != "admin" and not self.regulator
        self._hospital = organization_guard(self.organization, _consents_of(store), sharing_default) \
            if hospital else None
        # break the glass (governance/break_glass.py): a practitioner's live emergency sessions add
        # those patients' compartments to the hospital's view; the request is audited if it used them
        self.emergency, self.emergency_expired, self.emergency_used = {}, {}, False
        if self._hospital is not None and store is not None and self.claims.get("role") == "practitioner":
            self.emergency, self.emergency_expired = break_glass.sessions(store, self.claims.get("sub"))
            if self.emergency:
                self._hospital = self._widened(self._hospital, tuple(self.emergency))

    def _widened(self, hospital, patients: tuple[str, ...]):
        def guard(rtype: str):
            node = hospital(rtype)
            if node is None or rtype in HELD_ONLY:
                return node
            extra = [c for c in (patient_compartment(rtype, p) for p in patients) if c is not None]
            if not extra:
                return node
            self.emergency_used = True
            return q.Or((node, *extra))
        return guard

    @classmethod
    def from_claims(cls, claims: dict, sharing_default: str = "opt-in", store=None) -> "Access":
        """A patient user's user/ scopes act with that user's own rights: their own compartment.
        A family proxy (role related-person) acts with the rights of the patient its token names,
        while that patient's delegation is live (checked here, on every request: _proxy).
        A scope this server cannot read (a token from an older grammar) makes the token invalid."""
        try:
            grants = Grants.parse(str(claims.get("scope", "")))
        except ScopeError as e:
            raise Unauthorized(f"The access token's scope cannot be used: {e}") from None
        if claims.get("role") == proxy.ROLE:
            return cls._proxy(claims, grants, sharing_default, store)
        patient = claims.get("patient")
        own = own_patient(claims)
        if own is not None:
            grants = Grants([dataclasses.replace(s, context="patient") if s.context == "user" else s
                             for s in grants.scopes])
            patient = patient if patient == own else own
        return cls(grants, patient, claims, sharing_default, store)

    @classmethod
    def _proxy(cls, claims: dict, grants: Grants, sharing_default: str, store) -> "Access":
        """A proxy has the patient's own rights (user/ scopes become patient/ ones, the patient's
        compartment, the patient-confined write rule), held to no organisation, and only while the
        patient's delegation is live (governance/proxy.py); otherwise the token acts for nobody: 401."""
        patient = claims.get("patient")
        related = proxy.related_person_of(claims.get("fhirUser"))
        if store is None or not isinstance(patient, str) or proxy.live_delegation(store, related, patient) is None:
            raise Unauthorized("This token acts for a patient whose delegation to you is no longer active "
                               "(revoked, expired or never given): sign in again")
        grants = Grants([dataclasses.replace(s, context="patient") if s.context == "user" else s
                         for s in grants.scopes if s.context in ("patient", "user")])
        access = cls(grants, patient, claims, sharing_default)
        access.organization, access._hospital = None, None      # acts for the patient, not a hospital
        access._store = store                                   # its own Subscriptions (subscriptions/ownership.py)
        return access

    def confined(self, interaction: str, rtype: str) -> bool:
        """Whether this interaction on rtype is limited to some resources (a compartment, a query);
        403 when it is not granted at all."""
        if self.grants is None:
            return False
        decision = self.grants.decide(interaction, rtype)
        if not decision.allowed:
            self.allow(interaction, rtype)
        if rtype == ownership.TYPE and not ownership.unlimited(self):
            return True                     # its owner's alone (subscriptions/ownership.py)
        return decision.patient_compartment or bool(decision.alternatives) \
            or self._held_to_organization(rtype, interaction) or (self.regulator and rtype not in REGULATOR_READS) \
            or (self.directory and directory_node(rtype) is not None)

    def _held_to_organization(self, rtype: str, interaction: str) -> bool:
        return self._hospital is not None and self._hospital_part(rtype, interaction) is not None

    def _hospital_part(self, rtype: str, interaction: str):
        """The organisation policy's node; writes of directory types are judged by custody alone
        (admit_write; a hospital PUTs its Schedules), reads by the policy (policy.directory_node)."""
        if rtype in DIRECTORY and INTERACTION_PERMISSION[interaction] in "cud":
            return None
        return self._hospital(rtype)

    def allow(self, interaction: str, rtype: str) -> None:
        if self.grants is not None and INTERACTION_PERMISSION[interaction] in "cud":
            admission.check_definition_write(rtype, self.claims)    # before any lookup: 403, never 404
        if self.grants is not None and not self.grants.decide(interaction, rtype).allowed:
            raise Forbidden(f"The access token does not grant '{INTERACTION_PERMISSION[interaction]}' "
                            f"({interaction}) on {rtype}")

    def guard(self, interaction: str):
        """guard(rtype) for the store, or None when nothing is restricted: the scopes' restriction, and
        for a hospital's token the organisation policy too (the answer is their intersection);
        Subscriptions are their owner's alone (subscriptions/ownership.py)."""
        if self.grants is None:
            return None
        return ownership.wrap(self, self._store, interaction, self._guard(interaction))

    def _guard(self, interaction: str):
        scoped = search_guard(self.grants, self.patient, interaction)
        if self.directory:
            return lambda rtype: intersect(scoped(rtype), directory_node(rtype))
        if self.regulator:
            return lambda rtype: intersect(scoped(rtype), None if rtype in REGULATOR_READS else q.DENY)
        if self._hospital is None:
            return scoped
        return lambda rtype: intersect(scoped(rtype), self._hospital_part(rtype, interaction))

    def visible(self, search, interaction: str, rtype: str, id: str) -> bool:
        """Whether rtype/id is current and inside the guard; search(type, query, limit, guard) runs it."""
        if not self.confined(interaction, rtype):
            return True
        return bool(search(rtype, q.And((q.IdIn((id,)),)), 1, self.guard(interaction)))

    def check_visible(self, search, interaction: str, rtype: str, id: str) -> None:
        """No existence oracle: outside the token's reach answers like a resource that is not there."""
        self.allow(interaction, rtype)
        if not self.visible(search, interaction, rtype, id):
            raise NotFound(f"{rtype}/{id} is not known")

    def admit_write(self, interaction: str, resource: dict, base: str, replaced: bytes | None = None,
                    removed=None, uhid_system: str | None = None) -> None:
        """The rule every stored version passes (admission.py): the grant covers the interaction, the
        content and the stored version it replaces (`replaced`, its JSON) stay inside the token's reach,
        a patient-confined write is about the token's patient alone, and server-written types are never
        written with a token. A delete passes the resource's type and id and the content it removes.
        removed: over a deletion, a callable giving the content it removed (custody survives deletion);
        uhid_system: a Patient's UHID system (that identifier has rules of its own)."""
        if self.grants is None:
            return
        rtype = resource["resourceType"]
        admission.check_server_written(rtype)
        admission.check_definition_write(rtype, self.claims)
        if self.regulator:
            raise Forbidden("A regulator's token reads; it does not write (docs/governance.md, Regulators)")
        decision = self.grants.decide(interaction, rtype)
        if not decision.allowed:
            self.allow(interaction, rtype)
        if rtype == ownership.TYPE:     # about its subscriber only; the guard kept others' out of reach
            return
        # the replaced version, parsed at most once (and only if a rule needs it); the rules only read it
        old = functools.cache(lambda: jsonio.loads_stored(replaced) if replaced is not None else None)
        if self.claims.get("role") == proxy.ROLE:       # who acts for the patient is hers to decide
            admission.check_proxy_write(rtype, resource if interaction != "delete" else None, old())
        if rtype == "Consent" and self.claims.get("role") not in ("patient", "admin"):
            admission.check_consent_write(resource if interaction != "delete" else None, old())
        if self._hospital is not None and replaced is None and removed is not None:
            self._check_recreate(rtype, removed())
        if self._hospital is not None and replaced is not None:
            held = custodian.of(old())
            if held != self.organization and not addressed.may_change(
                    rtype, old(), resource if interaction != "delete" else None, self.organization):
                raise Forbidden(f"This {rtype} is held by {held or 'no organisation'}: only its custodian "
                                "organisation may change or delete it (docs/governance.md)")
        if not (decision.patient_compartment or decision.alternatives):
            return
        contents = [old()] if replaced is not None else []
        if interaction != "delete":
            contents.append(resource)
        scoped = search_guard(self.grants, self.patient, interaction)
        for content in contents:
            if not self._content_inside(content, base, scoped):
                raise Forbidden(f"The access token does not allow writing this {rtype}: it would be outside "
                                "the records the token can reach")
            if decision.patient_compartment:
                admission.check_patient_write(content, self.patient, base, interaction)
        if decision.patient_compartment and rtype == "Patient" and interaction != "delete":
            admission.check_patient_identifiers(resource, old(), uhid_system)

    def _check_recreate(self, rtype: str, removed: bytes | None) -> None:
        """Bringing back a deleted record changes it: its custodian's alone (not another hospital's)."""
        held = custodian.of(jsonio.loads_stored(removed)) if removed is not None else self.organization
        if held != self.organization:
            raise Forbidden(f"This {rtype} was deleted by its custodian {held or '(no organisation)'}: only "
                            "its custodian organisation may bring it back (docs/governance.md)")

    def versions(self, interaction: str, rtype: str | None, versions: list, base: str) -> list:
        """The versions whose own content is inside the grant. The store's guard selects resources by
        their current content; a resource that moved into the grant (say, an Observation refiled
        from one patient to another) must not show the versions from before. Deletion versions carry
        no content and are left out under a confined grant."""
        if rtype is not None and not self.confined(interaction, rtype):
            return versions
        if self.grants is None:
            return versions
        # each version is judged by the whole guard: the scopes and, for a hospital, the organisation
        # policy (an earlier version held by another hospital about a patient who shares nothing stays
        # hidden once the record is moved to one who does)
        guard = self.guard(interaction)
        return [v for v in versions if not self.confined(interaction, v.type) or (
            not v.deleted and self._content_inside(jsonio.loads_stored(v.body), base, guard))]

    @staticmethod
    def _content_inside(resource: dict, base: str, guard) -> bool:
        """Whether this content alone is inside the scopes' guard (the organisation policy is applied
        by the store to current resources, and to writes by custodian)."""
        return matches_alone(resource, base, q.MATCH_ALL, guard)


UNRESTRICTED = Access()


def _consents_of(store):
    """consents_of(node) for the organisation policy: the Consents matching node, read unguarded (the
    policy's own look), page by page; past policy.MAX_LISTED a 503 (never a partial decision). Reused
    while no Consent was written and within the second the node names (Store.last_write: one index
    lookup). Without a store there are none (fail closed: the organisation sees what it holds)."""
    def consents_of(node):
        if store is None:
            return []
        written = store.last_write("Consent")      # read first: a Consent committed meanwhile is seen next time
        key = (id(store), node)
        hit = _CONSENTS.get(key)
        if hit is not None and hit[0] == written:
            return hit[1]
        bodies, cursor = [], None
        while True:
            page = store.search("Consent", node, limit=CONSENT_PAGE, cursor=cursor, total="none")
            bodies += [jsonio.loads_stored(v.body) for v in page.items]
            if len(bodies) > MAX_LISTED:
                raise ServiceUnavailable(f"More than {MAX_LISTED} Consents apply to this organisation; the "
                                         "server does not decide on part of them")
            cursor = page.next_cursor
            if cursor is None:
                break
        found = ConsentSet(bodies)
        # only committed state is cached: a read inside a write (the subscription hook) may see a Consent
        # that rolls back, and SQLite gives the next version the same write number
        if store.open_unit() is not None:
            return found
        if len(_CONSENTS) > 4096:
            _CONSENTS.clear()
        _CONSENTS[key] = (written, found)
        return found
    return consents_of


CONSENT_PAGE = 1000
# (store, query node) -> (Store.last_write("Consent") when read, the Consents)
_CONSENTS: dict = {}


def intersect(a, b):
    """Both guard nodes (None: no restriction; DENY: nothing)."""
    if a is q.DENY or b is q.DENY:
        return q.DENY
    if a is None or b is None:
        return b if a is None else a
    return q.And((a, b))


def _organization(claims: dict) -> str | None:
    """The token's Organization ('Organization/<id>', from claim `organization`), else None."""
    org = claims.get("organization")
    if isinstance(org, str) and org.startswith("Organization/") and org.count("/") == 1 and len(org) > 13:
        return org
    return None


def _regulator(claims: dict, store) -> bool:
    """A regulator user's token, or a backend token of a client registered as a regulator
    (clients.Client.regulator; one read by key)."""
    if claims.get("role") == "regulator":
        return True
    if claims.get("role") or store is None or not claims.get("client_id"):
        return False
    key, now = (id(store), str(claims["client_id"])), time.monotonic()
    hit = _REGULATOR.get(key)
    if hit is not None and now - hit[1] < REGULATOR_TTL_S:
        return hit[0]
    record = store.get_record("client", key[1])      # clients.KIND
    flag = bool(record and record.get("regulator"))
    if len(_REGULATOR) > 4096:
        _REGULATOR.clear()
    _REGULATOR[key] = (flag, now)
    return flag


# (store, client_id) -> (registered as a regulator, when read): the flag is read at most every
# REGULATOR_TTL_S seconds per process (it runs on every request of a backend token)
REGULATOR_TTL_S = 2.0
_REGULATOR: dict = {}


def own_patient(claims: dict) -> str | None:
    """The Patient id of a patient user (fhirUser Patient/<id>), else None."""
    if claims.get("role") != "patient":
        return None
    user = str(claims.get("fhirUser") or "")
    tail = user.rsplit("/", 2)[-2:]
    return tail[1] if len(tail) == 2 and tail[0] == "Patient" else None
