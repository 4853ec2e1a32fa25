"""events.Bucket keeps a patient-confined subscriber under the patient its rights read (Access.from_claims):
an event is judged only for the patients it names, so a subscriber kept under another id misses hers."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.access import Access
from fhirserver.subscriptions.events import _confined_to

CLAIMS = [
    {"scope": "patient/*.rs", "patient": "x"},
    {"scope": "patient/*.rs user/Practitioner.rs", "patient": "x"},
    # a patient user's token whose launch context names someone else (an EHR launch) reads her own
    {"role": "patient", "fhirUser": "Patient/own", "scope": "patient/*.rs", "patient": "x"},
    {"role": "patient", "fhirUser": "Patient/own", "scope": "user/*.rs"},
    {"role": "patient", "fhirUser": "Practitioner/p", "scope": "patient/*.rs", "patient": "x"},
    {"scope": "system/*.rs", "organization": "Organization/a"},
]


@pytest.mark.parametrize("claims", CLAIMS)
def test_a_subscriber_is_kept_under_the_patient_it_reads(claims):
    access = Access.from_claims(claims)
    patient = _confined_to(claims)
    only_patient = all(g.context == "patient" for g in access.grants.scopes)
    assert patient == (access.patient if only_patient and access.patient else None), claims
