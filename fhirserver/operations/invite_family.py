"""Patient/[id]/$invite-family: the patient invites a family member to act for them
(profiles/operations/Patient-invite-family.json; the flow is governance/family_invite.py)."""
from __future__ import annotations

import datetime

from .. import audit, jsonio
from ..errors import BadRequest, NotFound
from ..governance import family_invite, proxy
from ..interactions import create as create_i
from ..interactions.common import current_or_raise
from .parameters import first


def invite_family(ctx, rtype, id, params: dict) -> dict:
    family_invite.check_inviter(ctx.access, id)
    channel = family_invite.contact_channel(first(params, "contact"))
    target = first(params, "relatedPerson")
    related = proxy.related_person_of(target.get("reference") if isinstance(target, dict) else None)
    if related is None:
        raise BadRequest("relatedPerson must be a reference to a RelatedPerson, e.g. RelatedPerson/123")
    delegate = proxy.live_related_person(ctx.store, related)
    if delegate is None or proxy.patient_of(delegate) != id:
        raise NotFound(f"RelatedPerson/{related} is not an active RelatedPerson of Patient/{id}")
    patient = jsonio.loads_stored(current_or_raise(ctx.repo.read("Patient", id), "Patient", id).body)
    consent = proxy.live_delegation(ctx.store, related, id)
    if consent is None:
        consent = create_i.create(ctx, "Consent", family_invite.delegation(id, related)).resource
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    who = " ".join([*(names[0].get("given") or ()), names[0].get("family") or ""]).strip() if names else ""
    expires = family_invite.issue(ctx.store, id, related, channel, first(params, "contact"), who or "A patient")
    audit.record(ctx, type_code=("110110", "Patient Record"), subtype=("invite-family", "family member invited"),
                 action="E", what=f"Patient/{id}", description=f"an invitation for RelatedPerson/{related}")
    when = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(timespec="seconds")
    return {"resourceType": "Parameters", "parameter": [
        {"name": "consent", "valueReference": {"reference": f"Consent/{consent['id']}"}},
        {"name": "expires", "valueInstant": when}]}
