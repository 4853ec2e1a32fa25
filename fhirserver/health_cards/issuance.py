"""Issuing a patient's card: what goes in it, signing with the server's issuer key, and the record.

The card holds the Patient's name, birth date and UHID only (no other identifiers, no address),
and on request their completed immunizations (https://spec.smarthealth.cards/#health-cards-are-small).
The issuer is the FHIR base URL, so the keys are at [base]/.well-known/jwks.json.
"""
from __future__ import annotations

import time

from .. import audit, jsonio
from ..errors import NotFound, Unprocessable
from ..search.parse import parse_search
from ..uhid import identifier
from . import credential, jws, revocation
from .issuer_keys import IssuerKeys

IMMUNIZATION = "https://smarthealth.cards#immunization"
MAX_IMMUNIZATIONS = 20


def issue(ctx, patient_id: str, immunizations: bool = False) -> str:
    """The signed card (compact JWS) of Patient/patient_id; the caller has checked read access."""
    current = ctx.store.read("Patient", patient_id)
    if current is None or current.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    patient = jsonio.loads(current.body)
    if not identifier.value_of(patient, ctx.uhid_system):
        raise Unprocessable(f"Patient/{patient_id} has no UHID yet (it was stored before UHIDs were issued): "
                            "`medport uhid backfill` gives every such patient one")
    others = _immunizations(ctx, patient_id) if immunizations else []
    bundle = credential.minimal_bundle(card_patient(patient, ctx.uhid_system), others)
    types = (credential.HEALTH_CARD, IMMUNIZATION) if immunizations else (credential.HEALTH_CARD,)
    claims = credential.payload(ctx.base, bundle, int(time.time()), types)
    claims["vc"]["rid"] = revocation.rid(ctx.store, patient_id)
    card = jws.sign(claims, IssuerKeys(ctx.store).active())
    audit.record(ctx, type_code=("110106", "Export"), subtype=("health-card", "SMART Health Card issued"),
                 action="E", what=f"Patient/{patient_id}",
                 description=f"health card with {len(others)} immunization(s)")
    return card


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


def _immunizations(ctx, patient_id: str) -> list[dict]:
    ctx.access.allow("search-type", "Immunization")
    query = parse_search("Immunization", [("patient", f"Patient/{patient_id}"), ("status", "completed")]).query
    found = ctx.search_visible("Immunization", query, MAX_IMMUNIZATIONS, ctx.access.guard("search-type"))
    keep = ("resourceType", "id", "status", "vaccineCode", "patient", "occurrenceDateTime", "occurrenceString",
            "lotNumber", "performer")
    return [{k: v for k, v in jsonio.loads(v.body).items() if k in keep} for v in found]
