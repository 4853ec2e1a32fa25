"""What a card attests (docs/uhid.md): the Patient as a hospital or the registration flow last wrote it,
and immunizations a hospital recorded, never what the patient wrote themself (write_origin.py tags
every version written with a token). $registration-code is for staff; a patient may revoke their own
cards."""
from __future__ import annotations

import pytest

from fhirserver import jsonio
from fhirserver.health_cards import jws
from fhirserver.interactions import write_origin
from fhirserver.storage.base import Write
from tests._uhid import uhid_for
from tests.smart_auth._tokens import auth, make_app, mint

FHIR_JSON = "application/fhir+json"
CVX = "http://hl7.org/fhir/sid/cvx"
ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"


@pytest.fixture
def app(tmp_path, backend):
    return make_app(tmp_path, backend)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def hospital(app):
    return mint(app, "system/*.cruds", subject="backend", client_id="backend")


def write(client, token, method, path, body):
    r = client.open(f"/fhir/{path}", method=method, json=body, headers=auth(token, **{"Content-Type": FHIR_JSON}))
    # here every POST creates (201) and every PUT updates a record that exists (200): http.html#update
    assert r.status_code == (201 if method == "POST" else 200), r.get_data(as_text=True)
    return r.get_json()


def patient_token(app, pid, scope="patient/*.cruds"):
    return mint(app, scope, subject=f"user-{pid}", client_id="phone-app", patient=pid, fhirUser=f"Patient/{pid}")


def card_bundle(client, token, pid, **params):
    r = client.get(f"/fhir/Patient/{pid}/$health-card", query_string=params, headers=auth(token))
    assert r.status_code == 200, r.get_data(as_text=True)
    card = r.get_json()["parameter"][0]["valueString"]
    return [e["resource"] for e in jws.parse(card)[1]["vc"]["credentialSubject"]["fhirBundle"]["entry"]]


def immunization(pid, lot, **fields):
    return {"resourceType": "Immunization", "status": "completed", "patient": {"reference": f"Patient/{pid}"},
            "vaccineCode": {"coding": [{"system": CVX, "code": "207"}]}, "occurrenceDateTime": "2021-05-01",
            "lotNumber": lot, **fields}


def origin(code):
    return {"coding": [{"system": ORIGIN, "code": code}]}


def test_a_patients_own_edits_do_not_change_what_the_card_says(app, client, hospital):
    pid = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Das", "given": ["Mina"]}],
                                                      "birthDate": "1980-02-03"})["id"]
    own = patient_token(app, pid)
    edited = write(client, own, "PUT", f"Patient/{pid}", {"resourceType": "Patient", "id": pid,
                                                          "identifier": client.get(f"/fhir/Patient/{pid}", headers=auth(hospital)).get_json()["identifier"],
                                                          "name": [{"family": "Impostor", "given": ["Eve"]}],
                                                          "birthDate": "2001-01-01"})
    assert write_origin.of(edited) == "patient"
    [card_patient] = card_bundle(client, own, pid)
    assert card_patient["name"] == [{"family": "Das", "given": ["Mina"]}] and card_patient["birthDate"] == "1980-02-03"
    # staff confirm a new name: that is what the card says from then on
    staff = mint(app, "user/Patient.cruds", subject="dr", client_id="ehr", fhirUser="Practitioner/dr")
    current = client.get(f"/fhir/Patient/{pid}", headers=auth(hospital)).get_json()
    write(client, staff, "PUT", f"Patient/{pid}", {**current, "name": [{"family": "Das-Roy", "given": ["Mina"]}],
                                                   "birthDate": "1980-02-03"})
    [card_patient] = card_bundle(client, own, pid)
    assert card_patient["name"] == [{"family": "Das-Roy", "given": ["Mina"]}]


def test_no_card_for_a_patient_whose_identity_no_hospital_established(app, client, hospital):
    """A Patient every version of which the patient wrote (as one made before patients lost the right to
    create Patients): 422, whoever asks; nothing is recorded as issued."""
    ctx = app.config["MEDPORT"]
    uhid = uhid_for("self-made")
    for n, family in ((1, "Self"), (2, "Made")):
        body = {"resourceType": "Patient", "id": "self-made", "name": [{"family": family}], "birthDate": "1990-01-01",
                "identifier": [{"system": ctx.uhid_system, "value": uhid}], "meta": {"versionId": str(n)}}
        write_origin.stamp(body, "patient")
        with ctx.store.transaction() as tx:
            tx.write(Write("Patient", "self-made", n, f"2024-01-0{n}T00:00:00.000000Z", "PUT" if n > 1 else "POST",
                           jsonio.dumps(body)))
    for token in (hospital, patient_token(app, "self-made", "patient/*.rs")):
        r = client.get("/fhir/Patient/self-made/$health-card", headers=auth(token))
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.json["resourceType"] == "OperationOutcome"
        assert "identity has not been established by a hospital or registration" in r.json["issue"][0]["diagnostics"]
    # no card-issued AuditEvent (fhirserver/audit.py, by its subtype); the refused requests leave BALP events
    issued = f"{ctx.base}/CodeSystem/medport-audit|health-card"
    assert client.get("/fhir/AuditEvent", query_string={"entity": "Patient/self-made", "subtype": issued},
                      headers=auth(hospital)).json.get("total", 0) == 0
    # a hospital that has checked who the patient is writes the record: now there is a card, with its words
    current = client.get("/fhir/Patient/self-made", headers=auth(hospital)).get_json()
    write(client, hospital, "PUT", "Patient/self-made", {**current, "name": [{"family": "Checked"}]})
    [card_patient] = card_bundle(client, hospital, "self-made")
    assert card_patient["name"] == [{"family": "Checked"}] and card_patient["identifier"][0]["value"] == uhid


def test_a_record_brought_back_after_a_delete_is_established_anew(app, client, hospital):
    ctx = app.config["MEDPORT"]
    pid = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Old"}]})["id"]
    uhid = client.get(f"/fhir/Patient/{pid}", headers=auth(hospital)).get_json()["identifier"]
    assert client.delete(f"/fhir/Patient/{pid}", headers=auth(hospital)).status_code in (200, 204)  # delete: either
    body = {"resourceType": "Patient", "id": pid, "name": [{"family": "Back"}], "identifier": uhid}
    write_origin.stamp(body, "patient")
    with ctx.store.transaction() as tx:
        tx.write(Write("Patient", pid, 3, "2030-01-01T00:00:00.000000Z", "PUT", jsonio.dumps(body)))
    r = client.get(f"/fhir/Patient/{pid}/$health-card", headers=auth(hospital))
    assert r.status_code == 422 and "not been established" in r.json["issue"][0]["diagnostics"]


def test_only_immunizations_a_hospital_recorded_are_on_the_card(app, client, hospital):
    pid = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Rao"}]})["id"]
    own = patient_token(app, pid)
    write(client, hospital, "POST", "Immunization", immunization(pid, "HOSPITAL"))
    write(client, hospital, "POST", "Immunization", immunization(pid, "PRIMARY-TRUE", primarySource=True))
    write(client, hospital, "POST", "Immunization", immunization(pid, "FROM-RECORD", primarySource=False,
                                                                 reportOrigin=origin("record")))
    write(client, hospital, "POST", "Immunization", immunization(pid, "FROM-PROVIDER", primarySource=False,
                                                                 reportOrigin=origin("provider")))
    write(client, hospital, "POST", "Immunization", immunization(pid, "RECALLED", primarySource=False,
                                                                 reportOrigin=origin("recall")))
    write(client, hospital, "POST", "Immunization", immunization(pid, "NO-ORIGIN", primarySource=False))
    self_written = write(client, own, "POST", "Immunization", immunization(pid, "SELF"))
    assert write_origin.of(self_written) == "patient"
    # a hospital's record the patient later edited is the patient's word now
    edited = write(client, hospital, "POST", "Immunization", immunization(pid, "EDITED"))
    write(client, own, "PUT", f"Immunization/{edited['id']}", {**immunization(pid, "EDITED-BY-PATIENT"),
                                                                "id": edited["id"]})
    bundle = card_bundle(client, own, pid, immunizations="true")
    lots = sorted(r["lotNumber"] for r in bundle if r["resourceType"] == "Immunization")
    assert lots == ["FROM-PROVIDER", "FROM-RECORD", "HOSPITAL", "PRIMARY-TRUE"]


def test_a_patient_cannot_crowd_the_hospitals_immunizations_off_the_card(app, client, hospital):
    from fhirserver.health_cards.issuance import MAX_IMMUNIZATIONS
    pid = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Rao"}]})["id"]
    own = patient_token(app, pid)
    for n in range(MAX_IMMUNIZATIONS + 1):
        write(client, own, "POST", "Immunization", immunization(pid, f"SELF-{n}"))
    write(client, hospital, "POST", "Immunization", immunization(pid, "HOSPITAL"))
    bundle = card_bundle(client, own, pid, immunizations="true")
    assert [r["lotNumber"] for r in bundle if r["resourceType"] == "Immunization"] == ["HOSPITAL"]


def test_registration_codes_are_for_staff_only(app, client, hospital):
    pid = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Rao"}]})["id"]
    own = patient_token(app, pid, "patient/*.cruds")
    r = client.post(f"/fhir/Patient/{pid}/$registration-code", headers=auth(own))
    assert r.status_code == 403 and r.json["resourceType"] == "OperationOutcome"
    assert "staff" in r.json["issue"][0]["diagnostics"]
    staff = mint(app, "user/Patient.cruds", subject="clerk", client_id="ehr", fhirUser="Practitioner/clerk")
    r = client.post(f"/fhir/Patient/{pid}/$registration-code", headers=auth(staff))
    assert r.status_code == 200 and r.json["parameter"][0]["name"] == "code"
    # state-changing: POST only
    assert client.get(f"/fhir/Patient/{pid}/$registration-code", headers=auth(staff)).status_code == 405


def test_a_patient_may_revoke_their_own_cards_only(app, client, hospital):
    pid = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Rao"}]})["id"]
    other = write(client, hospital, "POST", "Patient", {"resourceType": "Patient", "name": [{"family": "Kumar"}]})["id"]
    own = patient_token(app, pid, "patient/Patient.rus")
    assert client.post(f"/fhir/Patient/{pid}/$revoke-health-cards", headers=auth(own)).status_code == 200
    assert client.post(f"/fhir/Patient/{other}/$revoke-health-cards", headers=auth(own)).status_code == 404
    reader = patient_token(app, pid, "patient/*.rs")       # no right to change the record, none to revoke
    assert client.post(f"/fhir/Patient/{pid}/$revoke-health-cards", headers=auth(reader)).status_code == 403
