"""Issuing a patient's card: what goes in it, signing with the server's issuer key, and the record.

A card carries only what this server, as issuer, attests (https://spec.smarthealth.cards/#health-cards-are-small
for the minimal contents; docs/uhid.md, "What a card attests"):

- the Patient's name, birth date and UHID as the latest version of the Patient that a hospital or
  the server wrote (write_origin.attested: not self-reported by the patient) shows them; a Patient
  no such version exists for has no card (422): its identity was never established;
- on request, their completed Immunizations whose current version a hospital or the server wrote,
  and that are not self-reported (primarySource false counts only when reportOrigin says the
  record came from another provider or a written record).

No other identifiers, no address. The issuer is the FHIR base URL, so the keys are at
[base]/.well-known/jwks.json. Issuance is recorded (an AuditEvent) only for a card actually handed
out: sign() makes it, record() records it once it is delivered.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from .. import audit, jsonio
from ..errors import NotFound, Unprocessable
from ..interactions import write_origin
from ..search.parse import parse_search
from ..smart_auth.access import UNRESTRICTED
from ..uhid import identifier
from . import credential, jws, revocation
from .issuer_keys import IssuerKeys

IMMUNIZATION = "https://smarthealth.cards#immunization"
MAX_IMMUNIZATIONS = 20
SCAN_IMMUNIZATIONS = 500        # candidates read at most to find them (the rest are left out)
HISTORY_PAGE = 100
IMMUNIZATION_ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"
RECORDED_ORIGINS = {"provider", "record"}   # a secondary report taken from another provider or a written record


@dataclass(frozen=True)
class Card:
    jws: str
    patient_id: str
    immunizations: int


def issue(ctx, patient_id: str, immunizations: bool = False) -> str:
    """The signed card (compact JWS) of Patient/patient_id, recorded as issued (for callers that
    hand it out whatever its form: registration, the CLI); the caller has checked read access."""
    card = sign(ctx, patient_id, immunizations)
    record(ctx, card)
    return card.jws


def sign(ctx, patient_id: str, immunizations: bool = False) -> Card:
    """The signed card, not yet recorded: the caller records it once it is sure to deliver it."""
    current = _issuer(ctx).read("Patient", patient_id)
    if current is None or current.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    patient = attested_patient(ctx, patient_id)
    if not identifier.value_of(patient, ctx.uhid_system):
        raise Unprocessable(f"Patient/{patient_id} has no UHID yet (it was stored before UHIDs were issued): "
                            "`medport uhid backfill` gives every such patient one")
    others = _immunizations(ctx, patient_id) if immunizations else []
    bundle = credential.minimal_bundle(card_patient(patient, ctx.uhid_system), others)
    types = (credential.HEALTH_CARD, IMMUNIZATION) if immunizations else (credential.HEALTH_CARD,)
    claims = credential.payload(ctx.base, bundle, int(time.time()), types)
    claims["vc"]["rid"] = revocation.rid(ctx.store, patient_id)
    return Card(jws.sign(claims, IssuerKeys(ctx.store).active()), patient_id, len(others))


def _issuer(ctx):
    """The repository as the issuer reads the Patient it attests: the whole record, every version, whoever
    asks (the caller's read access was checked: operations.invoke, registration, the CLI)."""
    return ctx.acting_as(UNRESTRICTED).repo


def record(ctx, card: Card) -> None:
    """The AuditEvent of an issued card (DICOM 110106 Export), naming who asked."""
    audit.record(ctx, type_code=("110106", "Export"), subtype=("health-card", "SMART Health Card issued"),
                 action="E", what=f"Patient/{card.patient_id}",
                 description=f"health card with {card.immunizations} immunization(s)")


def attested_patient(ctx, patient_id: str) -> dict:
    """The latest version of the Patient a hospital or the server wrote (newest first through its
    history, back to its creation or its last deletion: a record brought back after a delete is
    established anew). A patient's own later edits are not what the issuer attests."""
    cursor = None
    while True:
        page = _issuer(ctx).history("Patient", patient_id, limit=HISTORY_PAGE, cursor=cursor, max_total=0)
        for version in page.items:
            if version.deleted:
                return _not_established(patient_id)
            body = jsonio.loads(version.body)
            if write_origin.attested(body):
                return body
        cursor = page.next_cursor
        if cursor is None:
            return _not_established(patient_id)


def _not_established(patient_id: str):
    raise Unprocessable(f"Patient/{patient_id} has no health card: the patient's identity has not been "
                        "established by a hospital or registration (every version of the record was written "
                        "by the patient). A hospital that has checked who the patient is updates the record first")


def card_patient(patient: dict, system: str) -> dict:
    """The Patient as the card shows it: id (for references inside the card), name, birth date, UHID."""
    out = {"resourceType": "Patient", "id": patient["id"]}
    uhid = identifier.value_of(patient, system)
    if uhid:
        out["identifier"] = [{"system": system, "value": uhid}]
    names = [n for n in patient.get("name") or () if n.get("use") == "official"] or patient.get("name") or []
    if names:
        out["name"] = [{k: v for k, v in names[0].items() if k in ("family", "given", "text")}]
    if patient.get("birthDate"):
        out["birthDate"] = patient["birthDate"]
    return out


def attested_immunization(immunization: dict) -> bool:
    """Whether the issuer attests this Immunization: its current version was not written by the
    patient, and it is not a self-reported dose (primarySource false is accepted only with a
    reportOrigin of another provider or a written record; a patient's or guardian's recall, a school
    record, or no origin at all are not)."""
    if not write_origin.attested(immunization) or immunization.get("status") != "completed":
        return False
    if immunization.get("primarySource") is not False:
        return True
    origin = immunization.get("reportOrigin") or {}
    codes = {c.get("code") for c in origin.get("coding") or () if isinstance(c, dict)
             and c.get("system") == IMMUNIZATION_ORIGIN}
    return bool(codes & RECORDED_ORIGINS)


def _immunizations(ctx, patient_id: str) -> list[dict]:
    """At most MAX_IMMUNIZATIONS attested ones, the oldest recorded first. Versions the patient
    wrote are left out by the search itself (_tag:not), so they cannot crowd out the hospital's."""
    query = parse_search("Immunization", [("patient", f"Patient/{patient_id}"), ("status", "completed"),
                                          ("_tag:not", f"{write_origin.ORIGIN_SYSTEM}|patient")]).query
    keep = ("resourceType", "id", "status", "vaccineCode", "patient", "occurrenceDateTime", "occurrenceString",
            "lotNumber", "performer")
    found, cursor, scanned = [], None, 0
    while len(found) < MAX_IMMUNIZATIONS and scanned < SCAN_IMMUNIZATIONS:
        page = ctx.repo.search("Immunization", query, limit=50, cursor=cursor)
        for version in page.items:
            body = jsonio.loads(version.body)
            if attested_immunization(body) and len(found) < MAX_IMMUNIZATIONS:
                found.append({k: v for k, v in body.items() if k in keep})
        scanned += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found
