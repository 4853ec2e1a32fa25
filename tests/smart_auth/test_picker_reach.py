"""The patient picker of a hospital's practitioner names only the patients the practitioner's own rights
reach (docs/governance.md: a hospital sees what it holds plus what patients consented to share with it;
docs/auth.md, the patient picker). The picker used to search every Patient of the exchange: a
practitioner of hospital B typing a name, a UHID or a Patient id read the name, birth date and UHID of
hospital A's patients, which no FHIR request of B's reaches. On every store.
"""
from __future__ import annotations

import json

import pytest

from fhirserver.interactions.create import create
from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.access import Access
from fhirserver.smart_auth.keys import SigningKeys
from tests.smart_auth._browser_form import offered, submit
from tests.smart_auth.test_oauth_helpers import (
    BASE,
    PASSWORD,
    begin,
    consent_page,
    login,
    make_world,
)

A, B = "Organization/hosp-a", "Organization/hosp-b"
SCOPE = "openid fhirUser launch/patient patient/*.rs"
UHID = "/sid/uhid"
IRCP_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def held_by(world, organization: str, family: str, given: str) -> str:
    rights = Access.from_claims({"scope": "system/*.cruds", "client_id": "ehr", "organization": organization},
                                store=world.store)
    body = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "birthDate": "1950-04-02"}
    return create(world.ctx.acting_as(rights), "Patient", body).version.id


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend=backend)
    w.asha = held_by(w, A, "Sharma", "Asha")           # A's patient
    w.bina = held_by(w, B, "Sharma", "Bina")           # B's own
    w.users.add("drb", PASSWORD, "practitioner", fhir_user="Practitioner/9", organization=B)
    return w


def uhid_of(world, pid: str) -> str:
    body = world.ctx.store.read("Patient", pid).body
    return next(i["value"] for i in json.loads(body)["identifier"] if i["system"].endswith(UHID))


def signed_in(world):
    client, _ = world.app_client()
    http, request_id = begin(world, client.client_id, SCOPE)
    assert login(http, request_id, "drb").status_code == 303
    return http, consent_page(http, request_id).get_data(as_text=True)


def search(http, page: str, text: str) -> str:
    r = submit(http, page, ("decision", "search"), fill={"patient_search": text})
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_the_picker_of_a_hospitals_practitioner_names_none_of_another_hospitals_patients(world):
    http, page = signed_in(world)
    for text in ("Sharma", "Asha Sharma", world.asha, uhid_of(world, world.asha)):
        found = search(http, page, text)
        assert world.asha not in offered(found, "patient"), text
        shown = found.replace(f'value="{text}"', "")          # the search box keeps what was typed
        assert "Asha" not in shown and uhid_of(world, world.asha) not in shown, text
    assert world.bina in offered(search(http, page, "Sharma"), "patient")
    # choosing her id anyway (a forged form) gives no code, the answer for an id that does not exist
    refused = submit(http, page, ("decision", "approve"), choose={"patient": world.asha})
    absent = submit(http, page, ("decision", "approve"), choose={"patient": "no-such-patient"})
    assert refused.status_code == absent.status_code == 400
    assert "Asha" not in refused.get_data(as_text=True)


def test_once_the_patient_shares_her_record_the_picker_finds_her(world):
    consent = {"resourceType": "Consent", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                     "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": f"Patient/{world.asha}"},
               "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": IRCP_SYSTEM, "code": "IRCP"}]},
                                                           "reference": {"reference": B}}]}}
    create(world.ctx, "Consent", consent)
    http, page = signed_in(world)
    assert world.asha in offered(search(http, page, "Asha Sharma"), "patient")
    r = submit(http, search(http, page, "Asha Sharma"), ("decision", "approve"), choose={"patient": world.asha})
    assert r.status_code == 302, r.get_data(as_text=True)


def test_an_ehr_launch_is_only_for_a_patient_and_encounter_the_practitioner_reaches(world):
    """POST /auth/launch answered 200 for any Patient of the exchange and 400 for an id that exists
    nowhere (an oracle), and the consent page then showed that patient's name and UHID."""
    encounter = create(world.ctx, "Encounter", {
        "resourceType": "Encounter", "status": "finished", "subject": {"reference": f"Patient/{world.asha}"},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}).version.id
    token, _ = tokens.issue(SigningKeys(world.store), BASE, BASE, "drb", "ehr", "user/*.cruds", role="practitioner",
                            fhirUser="Practitioner/9", organization=B)
    auth = {"Authorization": f"Bearer {token}"}

    def launch(**body):
        r = world.http.post("/auth/launch", json=body, headers=auth)
        return r.status_code, r.get_json()

    assert launch(patient=world.asha) == launch(patient="no-such-patient")
    assert launch(patient=world.asha)[0] == 400
    assert launch(patient=world.bina, encounter=encounter) == launch(patient=world.bina, encounter="no-such-one")
    status, body = launch(patient=world.bina)
    assert status == 200, body
