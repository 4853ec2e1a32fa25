"""Patient/[id]/$revoke-health-cards: every card of the patient issued until now stops verifying
(profiles/operations/Patient-revoke-health-cards.json; fhirserver/health_cards/revocation.py).

Whoever may update the Patient: staff (a card issued to the wrong person, a record merged or corrected)
and the patient themself with a token that may update their own record (a lost or stolen phone or
printout). Revoking harms nobody else: it only withdraws cards that speak for this patient, and the
patient gets new cards as before. A token that may only read the record cannot revoke (403). Recorded
as an AuditEvent naming who asked."""
from __future__ import annotations

import datetime

from .. import audit
from ..health_cards import revocation
from ..interactions.common import current_or_raise


def revoke_health_cards(ctx, rtype, id, params: dict) -> dict:
    current_or_raise(ctx.repo.read("Patient", id, "update"), "Patient", id)
    stamp = revocation.revoke(ctx.store, id)
    audit.record(ctx, type_code=("110106", "Export"), subtype=("health-card-revocation", "health cards revoked"),
                 action="D", what=f"Patient/{id}", description="every health card issued before this moment")
    when = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).isoformat(timespec="seconds")
    return {"resourceType": "Parameters", "parameter": [{"name": "revokedBefore", "valueInstant": when}]}
