"""What a hospital sees: the records its organisation holds, plus those of patients who consented to
share with it (docs/governance.md). The decision is a query node that the store ANDs into every query
of the token (smart_auth/access.py), so reads, searches, chains, `_has`, includes, history, paging,
totals and everything built on search obey it inside the query, and a revoked or expired Consent
stops sharing on the very next request.

For a resource of type T and the organisation O of the token:

    custodian(T) = O                                         what O holds (governance/custodian.py)
    OR the record is addressed to O                          a Task it owns, its order's result (addressed.py)
    OR T is about patients (its Patient-compartment links) and
       opt-in  (the default): one of them has an active Consent that permits O for T
       opt-out: none of them has an active Consent that denies O for T (deny overrides)

A Consent permits O for T (IHE PCF, LEAP decision rules, R4 consent.html) when it is `active`; its
top-level provision is `permit`; provision.actor names O or is empty (the whole exchange; the
actor's role is not examined); provision.class lists T or is empty (every type); provision.period
(if any) covers now; provision.purpose (if any) includes the requester's purpose (treatment,
v3-ActReason TREAT); and no nested provision of the opposite type applies to O and T (a nested
provision applies when its actors name O or are empty and its classes list T or are empty). A
Consent denies O for T on the same terms with a top-level `deny` provision. Several permitting
Consents add up. Not yet evaluated (documented limits): provision.dataPeriod, provision.data,
provision.securityLabel, provision.action, nested provisions' own periods and purposes.

Per request, the Consents of the exchange that may apply to O (status, top-level type and actor,
period, purpose: an indexed query) are read once; which patients they cover for each type is worked
out from them, and the guard is a flat IN list on the reference index.

Directory and conformance resources (DIRECTORY) are readable by every authenticated client, except
a directory record about a patient (directory_node: a Schedule whose actor is a Patient), which
follows the rules above.
"""
from __future__ import annotations

import datetime
import functools
import re

from ..search import query as q
from ..search.compartment import members
from ..search.kinds.reference_kind import RefCond, RefIn
from ..search.parse import parse_search
from ..search.registry import lookup
from . import addressed

RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DIRECTORY = frozenset({
    # who offers care where (Da Vinci Plan-Net's public directory)
    "Organization", "Location", "HealthcareService", "PractitionerRole", "Practitioner", "Endpoint",
    "Schedule", "Slot", "ChargeItemDefinition", "InsurancePlan",
    # conformance and terminology
    "CapabilityStatement", "StructureDefinition", "SearchParameter", "OperationDefinition",
    "CompartmentDefinition", "ImplementationGuide", "StructureMap", "GraphDefinition", "MessageDefinition",
    "TerminologyCapabilities", "CodeSystem", "ValueSet", "ConceptMap", "NamingSystem"})
SHARING_DEFAULTS = ("opt-in", "opt-out")


class ConsentSet(list):
    """The Consents one query read (reused across requests while no Consent is written: smart_auth/access.py),
    remembering which patients they cover for each type."""

    def __init__(self, consents):
        super().__init__(consents)
        self.patients: dict[str, tuple[str, ...]] = {}


MAX_LISTED = 100_000     # Consents a decision reads at most (past it: 503, never a partial decision)


def organization_guard(organization: str, consents_of, sharing_default: str = "opt-in", purpose: str = "TREAT"):
    """guard(rtype) -> the node every query of rtype is ANDed with for a hospital's token (None: open).

    consents_of(node) -> the Consent resources (dicts) matching `node` (read unguarded by the caller's
    store; at most MAX_LISTED)."""
    if sharing_default not in SHARING_DEFAULTS:
        raise ValueError(f"sharing default must be one of {SHARING_DEFAULTS}, not {sharing_default!r}")
    now, memo = _now(), {}
    effect = "permit" if sharing_default == "opt-in" else "deny"

    def consents():
        if "consents" not in memo:
            memo["consents"] = consents_of(applicable_consents(organization, effect, purpose, now))
        return memo["consents"]

    def guard(rtype: str):
        if rtype in DIRECTORY and directory_node(rtype) is None:
            return None
        if rtype not in memo:
            node = hospital_node(rtype, organization, sharing_default, purpose, now, consents)
            memo[rtype] = q.Or((node, directory_node(rtype))) if rtype in DIRECTORY else node
        return memo[rtype]
    return guard


@functools.lru_cache(maxsize=None)
def directory_node(rtype: str):
    """What everyone reads of a directory type (None: all of it): for a type that may be about a patient
    (Schedule.actor may be a Patient: the Patient CompartmentDefinition), its records about none. A
    record about a patient (her home-visit Schedule) is hers: it follows the compartment and consent
    rules, not the open directory's."""
    links = [key for key in patient_links(rtype) if key is not None] if rtype in DIRECTORY else []
    return q.Not(q.Or(tuple(_about(key, None) for key in links))) if links else None


# what no consent or emergency shares: the audit trail of other organisations' people (their staff,
# clients, addresses and queries) is theirs and the regulators'; a patient sees it in their own report.
# Messages are their thread's participants' (docs/messages.md): sharing a chart shares no conversation
MESSAGES = frozenset({"Communication", "CommunicationRequest"})
HELD_ONLY = frozenset({"AuditEvent"}) | MESSAGES


def hospital_node(rtype: str, organization: str, sharing_default: str, purpose: str, now: str, consents):
    org_id = organization.split("/", 1)[1]
    own = (q.Match("reference", f"{rtype}._custodian", RefCond("Organization", org_id)),
           *addressed.nodes(rtype, organization))
    links = patient_links(rtype)
    if not links or rtype in HELD_ONLY:
        return q.Or(own)
    found = consents()
    ids = found.patients.get(rtype) if isinstance(found, ConsentSet) else None
    if ids is None:
        ids = tuple(sorted({p for c in found if applies(c, organization, rtype) for p in _patient_of(c)}))
        if isinstance(found, ConsentSet):
            found.patients[rtype] = ids
    about = [_about(key, ids) for key in links] if ids else []
    if sharing_default == "opt-in":
        return q.Or((*own, *about))
    any_patient = q.Or(tuple(_about(key, None) for key in links))
    shared = q.And((any_patient, q.Not(q.Or(tuple(about))))) if about else any_patient
    return q.Or((*own, shared))


@functools.lru_cache(maxsize=1024)      # the same query for every request within a second
def applicable_consents(organization: str, effect: str, purpose: str, now: str):
    """Consents that may `effect` (permit | deny) `organization` now, whatever the type: active, that
    top-level provision type, naming the organisation or no actor, in period, for the purpose."""
    def one(*pairs):
        return parse_search("Consent", list(pairs)).query

    return q.And((one(("status", "active"), ("provision-type", effect)),
                  q.Or((one(("actor", organization)), one(("actor:missing", "true")))),
                  q.Or((one(("period:missing", "true")), one(("period", f"le{now}"), ("period", f"ge{now}")))),
                  q.Or((one(("purpose", f"{ACT_REASON}|{purpose}")), one(("purpose:missing", "true"))))))


def applies(consent: dict, organization: str, rtype: str) -> bool:
    """Whether this Consent (already known to apply to the organisation) decides for rtype: its
    top-level classes cover rtype and no nested provision of the opposite type applies to both."""
    top = consent.get("provision") or {}
    if not _covers(top, organization, rtype, check_actor=False):
        return False
    return not any(isinstance(p, dict) and p.get("type") != top.get("type", "permit")
                   and _covers(p, organization, rtype, check_actor=True) for p in top.get("provision") or ())


def _covers(provision: dict, organization: str, rtype: str, check_actor: bool) -> bool:
    classes = [c for c in provision.get("class") or () if isinstance(c, dict)]
    if classes and not any(c.get("system") == RESOURCE_TYPES and c.get("code") == rtype for c in classes):
        return False
    if check_actor:
        actors = [(a.get("reference") or {}).get("reference") for a in provision.get("actor") or ()
                  if isinstance(a, dict)]
        if actors and not any(_named(r) == organization for r in actors):
            return False
    return True


def _patient_of(consent: dict) -> list[str]:
    named = _named((consent.get("patient") or {}).get("reference"))
    return [named.split("/", 1)[1]] if named is not None and named.startswith("Patient/") else []


# a literal reference: relative, absolute or version-specific (references.html#literal), as the search
# index reads it (search/kinds/reference_kind.py), so the decision and the Consent query agree on it
_LITERAL = re.compile(r"^(?:.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def _named(ref) -> str | None:
    """'Type/id' that a literal reference names, whatever its form, else None."""
    m = _LITERAL.match(ref) if isinstance(ref, str) else None
    return f"{m.group('type')}/{m.group('id')}" if m else None


def _about(key: str | None, ids: tuple[str, ...] | None):
    """Resources whose `key` reference names one of these Patients (None: any Patient); key None: the
    Patient resources themselves."""
    if key is None:
        return q.IdIn(ids) if ids is not None else q.MATCH_ALL
    return q.Match("reference", key, RefIn("Patient", ids))


@functools.lru_cache(maxsize=None)
def patient_links(rtype: str) -> tuple[str | None, ...]:
    """How a resource of rtype is about a patient: its Patient-compartment reference parameters
    (None stands for the Patient resource itself)."""
    out: list[str | None] = [None] if rtype == "Patient" else []
    for code in members("Patient").get(rtype, ()):
        param = lookup(rtype, code)
        if param is not None and param.kind == "reference" and ("Patient" in param.targets or not param.targets):
            out.append(param.key)
    return tuple(out)


def _now() -> str:
    """Now to the second (consent periods are compared with it)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
