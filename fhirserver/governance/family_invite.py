"""A patient invites a family member to act for them (workflows notes, "Family proxy"; docs/auth.md).

Patient/[id]/$invite-family (the patient's own token, or the server): names a RelatedPerson of the
patient and the family member's phone or email; makes the delegation Consent live if it is not
(active, purpose FAMRQT, actor DELEGATEE = the RelatedPerson: governance/proxy.py) and sends the family
member, through the outbox, a single-use invitation code (60 bits, stored only as its SHA-256, valid
7 days). The family member redeems it at POST /api/registrations/family with a password and gets a
related-person account (a server-assigned username, as for patients): from then on they act for the
patient while her delegation stays live; she revokes it by making the Consent inactive.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time

from .. import outbox
from ..errors import BadRequest, Forbidden, NotFound
from ..registration import claim_codes
from ..smart_auth.accounts import Users
from . import proxy

KIND = "family-invite"
LIFETIME_S = 7 * 24 * 3600
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,20}$")


def delegation(patient: str, related_person: str) -> dict:
    """The delegation Consent of Patient/patient to RelatedPerson/related_person (governance/proxy.py)."""
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
            "patient": {"reference": f"Patient/{patient}"},
            "provision": {"type": "permit",
                          "purpose": [{"system": proxy.ACT_REASON, "code": proxy.FAMRQT}],
                          "actor": [{"role": {"coding": [{"system": proxy.ROLE_CODE, "code": proxy.DELEGATEE}]},
                                     "reference": {"reference": f"RelatedPerson/{related_person}"}}]}}


def check_inviter(access, patient: str) -> None:
    """Only the patient (or the server, or an administrator) decides who acts for her."""
    if access.grants is None or access.claims.get("role") == "admin":
        return
    if access.claims.get("role") != "patient" or access.patient != patient:
        raise Forbidden("Only the patient invites a family member to act for her")


def contact_channel(contact) -> str:
    if not isinstance(contact, str) or len(contact) > 200:
        raise BadRequest("contact must be the family member's phone number or email address")
    if _EMAIL.match(contact):
        return "email"
    if _PHONE.match(contact) and sum(c.isdigit() for c in contact) >= 6:
        return "sms"
    raise BadRequest("contact must be the family member's phone number or email address")


def issue(store, patient: str, related_person: str, channel: str, contact: str, patient_name: str) -> float:
    """Record a new invitation and send its code; returns when it expires."""
    raw = "".join(secrets.choice(claim_codes.ALPHABET) for _ in range(12))
    expires = time.time() + LIFETIME_S
    store.put_record(KIND, _digest(raw), {"patient": patient, "related_person": related_person},
                     expires_at=expires)
    code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
    outbox.send(store, channel, contact, "Med-Port: an invitation to act for a family member",
                f"{patient_name} invites you to see and manage their health records on Med-Port. "
                f"Your invitation code is {code} (valid 7 days, once). Choose a password at /register/family "
                "or POST /api/registrations/family.")
    return expires


def redeem(store, code, password) -> str:
    """Use the code up and open the family member's account; returns its username. NotFound for an
    unknown, used or expired code, or a RelatedPerson that is gone."""
    if not isinstance(code, str) or not isinstance(password, str):
        raise BadRequest("code and password are required")
    record = store.take_record(KIND, _digest(re.sub(r"[\s-]", "", code).upper()))
    if record is None:
        raise NotFound("This invitation code is not known, was used already or has expired")
    related = record["related_person"]
    delegate = proxy.live_related_person(store, related)
    if delegate is None or proxy.patient_of(delegate) != record["patient"]:
        raise NotFound("This invitation code is not known, was used already or has expired")
    users = Users(store)
    for _ in range(8):
        username = f"family-{''.join(secrets.choice(claim_codes.ALPHABET.lower()) for _ in range(8))}"
        if users.get(username) is None:
            try:
                users.add(username, password, proxy.ROLE, f"RelatedPerson/{related}")
            except ValueError as e:
                if "already taken" in str(e):
                    continue
                raise BadRequest(str(e)) from None
            return username
    raise BadRequest("Could not assign a username; try again")


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
