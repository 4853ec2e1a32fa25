"""Who may write what: the rule every stored version passes (create, update, patch, delete; over
REST, in Bundles, conditional or not), judged on exactly what is stored, inside the write unit.

Reads confine a patient token to the patient's compartment: a resource is visible when ANY of its
compartment parameters names the patient (compartmentdefinition-patient.html). That is the wrong
rule for writes: an Observation about another patient with the caller as performer is in the
caller's compartment. So a write under a patient-confined grant must be about the token's patient
alone:

- every Patient reference the resource makes (subject, patient, performer, asserter, recorder,
  extensions, contained resources: anywhere) names the token's patient, and no other person is
  named by identifier only, by an absolute URL or as a contained Patient;
- a Patient resource may be updated only when it is the token's own (never created or deleted), and
  keeps the identifiers hospitals and the UHID registry gave it (check_patient_identifiers);
- the content (and, for an update, patch or delete, the version it replaces) is inside the grant.

Some types are written by the server alone (SERVER_WRITTEN): no access token writes them.
Definitions (conformance.CONFORMANCE_TYPES: profiles, value sets, code systems ...) apply to every
record of the exchange, so only an administrator's token (or the CLI) writes them (docs/conformance.md).
"""
from __future__ import annotations

import re

from ..conformance import CONFORMANCE_TYPES
from ..errors import Forbidden
from ..governance import proxy

SERVER_WRITTEN = frozenset({"AuditEvent", "Provenance"})    # the server's own records of what happened

_LOCAL = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$")


def patient_references(resource: dict, base: str) -> tuple[set[str], list[str]]:
    """(ids of local Patients the resource refers to, descriptions of persons it names otherwise)."""
    local: set[str] = set()
    other: list[str] = []
    prefix = base.rstrip("/") + "/"

    def visit(node, top: bool) -> None:
        if isinstance(node, dict):
            if not top and node.get("resourceType") == "Patient":
                other.append("a contained Patient")
            ref = node.get("reference")
            if isinstance(ref, str):
                target = ref[len(prefix):] if ref.startswith(prefix) else ref
                m = _LOCAL.match(target)
                if m:
                    local.add(m.group(1))
                elif "/Patient/" in target or target.startswith("Patient"):
                    other.append(f"the reference {ref!r}")
            elif node.get("type") == "Patient" and isinstance(node.get("identifier"), dict):
                other.append("a Patient named by identifier")
            for value in node.values():
                visit(value, False)
        elif isinstance(node, list):
            for value in node:
                visit(value, False)

    visit(resource, True)
    return local, other


def check_patient_write(resource: dict, patient: str | None, base: str, interaction: str) -> None:
    """A patient-confined write is about the token's patient alone (the module's rule)."""
    rtype = resource["resourceType"]
    if rtype == "Patient" and (interaction in ("create", "delete") or resource.get("id") != patient):
        raise Forbidden("A patient's access token cannot create or delete Patient resources, nor change "
                        "another patient's: only the patient's own Patient record may be updated")
    local, other = patient_references(resource, base)
    strangers = sorted(local - {patient}) if patient else sorted(local)
    if strangers or other:
        named = ", ".join([f"Patient/{s}" for s in strangers] + other)
        raise Forbidden(f"A patient's access token writes only records about that patient; this {rtype} "
                        f"also names {named}")


def check_patient_identifiers(resource: dict, replaced: dict | None, uhid_system: str | None = None) -> None:
    """A patient-confined update of the patient's own Patient adds or changes no identifier (system and
    value; it may drop one, or describe one otherwise). Identifiers are assigned by hospitals and the
    UHID registry, and records are filed by them: a patient who took another person's MRN into their
    own record (held by that hospital) would have that person's results, sent keyed by the MRN
    (Patient?identifier=...), filed into their own chart. The UHID (uhid_system) has its own rules,
    applied after this one (uhid/patient_rules.py: permanent, unique, drawn by the registry for a
    record stored before UHIDs)."""
    before = {_identifier_key(i) for i in (replaced or {}).get("identifier") or () if isinstance(i, dict)}
    added = [i for i in resource.get("identifier") or () if not isinstance(i, dict)
             or (_identifier_key(i) not in before and (uhid_system is None or i.get("system") != uhid_system))]
    if added:
        raise Forbidden("A patient's access token cannot add or change the identifiers of their Patient record "
                        "(hospitals and the UHID registry assign them); it may correct other details")


def _identifier_key(identifier: dict) -> tuple:
    return identifier.get("system"), identifier.get("value")


HOSPITAL_CONSENT_STATUSES = ("draft", "proposed")


def check_consent_write(resource: dict | None, replaced: dict | None) -> None:
    """Only the patient (or the server) makes a Consent active: a hospital or its staff may write a consent
    request (draft or proposed, naming purpose, types and period) and change it while it is one, but
    never grant itself access (consent.html#status; IHE PCF: the patient is the consenter)."""
    for content, what in ((replaced, "change a Consent that is"), (resource, "write a Consent with status")):
        status = (content or {}).get("status")
        if content is not None and status not in HOSPITAL_CONSENT_STATUSES:
            raise Forbidden(f"A hospital's token may not {what} {status!r}: only the patient activates, "
                            "narrows or revokes a Consent; a hospital proposes one (status proposed)")


PROXY_CONSENT_STATUSES = ("draft", "proposed")


def check_proxy_write(rtype: str, resource: dict | None, replaced: dict | None) -> None:
    """A family proxy (governance/proxy.py) writes as the patient would, except who may act for the
    patient: that is the patient's own decision. So a proxy writes no RelatedPerson (create, change
    or delete), and no Consent other than a draft or proposed one that is not a delegation: it cannot
    create, activate, widen, extend or revoke a delegation (its own or anyone's), nor activate a Consent
    that shares the patient's records."""
    if rtype == "RelatedPerson":
        raise Forbidden("A family proxy's token cannot write RelatedPerson resources: only the patient "
                        "decides who acts for them")
    if rtype != "Consent":
        return
    for content in (replaced, resource):
        if content is None:
            continue
        if proxy.is_delegation_consent(content):
            raise Forbidden("A family proxy's token cannot write a delegation Consent: only the patient "
                            "grants, changes or revokes a delegation")
        if content.get("status") not in PROXY_CONSENT_STATUSES:
            raise Forbidden(f"A family proxy's token may not write or change a Consent with status "
                            f"{content.get('status')!r}: only the patient activates, narrows or revokes a "
                            "Consent; a proxy may propose one (status proposed)")


def check_server_written(rtype: str) -> None:
    if rtype in SERVER_WRITTEN:
        raise Forbidden(f"{rtype} resources are written by the server alone; no client may create, "
                        "change or delete them")


def check_definition_write(rtype: str, claims: dict) -> None:
    """A definition is the exchange's shared rule book: a hospital that redefined administrative-gender
    or the Med-Port Patient profile would change it for everyone. Administrators alone write them."""
    if rtype in CONFORMANCE_TYPES and claims.get("role") != "admin":
        raise Forbidden(f"{rtype} resources are definitions shared by the whole exchange: only an "
                        "administrator (or `medport ig install`) creates, changes or deletes them")
