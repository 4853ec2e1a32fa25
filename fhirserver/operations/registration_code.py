"""Patient/[id]/$registration-code: a claim code for the patient's own account
(profiles/operations/Patient-registration-code.json; fhirserver/registration/claim_codes.py).

Staff who may update the Patient ask for it after registering a walk-in patient and hand it over
with the UHID; the person then registers with both. A patient's token (or an app acting for a patient)
is refused (403) whatever its scopes: the code is what proves that a hospital established who the
person is, so the person cannot issue it to themself. A new code does not cancel older ones (each is
single use and expires after 30 days). Every issuance is an AuditEvent."""
from __future__ import annotations

import datetime

from .. import audit
from ..errors import Conflict, Forbidden
from ..interactions import write_origin
from ..interactions.common import current_or_raise
from ..registration import claim_codes
from ..smart_auth.accounts import PATIENT_ACCOUNT_KIND, Users


def registration_code(ctx, rtype, id, params: dict) -> dict:
    if write_origin.writer(ctx.access) == "patient":        # the same answer for every id: no oracle
        raise Forbidden("$registration-code is for hospital staff: a patient's token cannot ask for a claim code")
    current_or_raise(ctx.repo.read("Patient", id, "update"), "Patient", id)
    holder = ctx.store.get_record(PATIENT_ACCOUNT_KIND, id)
    if holder is not None and Users(ctx.store).active(holder["username"]) is not None:
        raise Conflict(f"Patient/{id} already has an account; a claim code would not open another "
                       "(disable that account first to give the patient a new one)")
    code, expires = claim_codes.issue(ctx.store, id)
    audit.record(ctx, type_code=("110110", "Patient Record"), subtype=("registration-code", "claim code issued"),
                 action="E", what=f"Patient/{id}", description="a claim code for the patient's own account")
    when = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(timespec="seconds")
    return {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code},
                                                        {"name": "expires", "valueInstant": when}]}
