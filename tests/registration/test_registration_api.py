"""Self-registration through POST /api/registrations, on every store."""
from __future__ import annotations

import pytest

from fhirserver.health_cards import jws
from fhirserver.smart_auth.accounts import Users
from fhirserver.uhid import number
from tests._uhid import uhid_in
from tests.conftest import make_settings, patient, post

ASHA = {"given": "Asha", "family": "Sharma", "birthDate": "1950-04-02", "gender": "female",
        "phone": "+91 98100 00000", "email": "asha@example.in", "username": "asha", "password": "correct horse",
        "allergies": ["Penicillin"], "conditions": ["Type 2 diabetes"], "emergencyContactName": "Ravi Sharma",
        "emergencyContactPhone": "+91 98100 11111", "emergencyContactRelationship": "son"}


def register(client, **fields):
    return client.post("/api/registrations", json={**ASHA, **fields})


def test_registration_creates_patient_account_records_and_card(client, ctx):
    r = register(client)
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.json
    pid = body["patient"].split("/")[1]
    assert r.headers["Location"].endswith(body["patient"]) and number.canonical(body["uhid"]) == body["uhid"]
    stored = client.get(f"/fhir/{body['patient']}").json
    assert uhid_in(stored) == body["uhid"]
    assert stored["birthDate"] == "1950-04-02" and stored["name"][0]["given"] == ["Asha"]
    assert stored["contact"][0]["name"]["text"] == "Ravi Sharma"
    assert stored["contact"][0]["relationship"][0]["coding"][0]["code"] == "C"
    allergy = client.get("/fhir/AllergyIntolerance", query_string={"patient": pid}).json["entry"][0]["resource"]
    assert allergy["code"]["text"] == "Penicillin" and allergy["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    condition = client.get("/fhir/Condition", query_string={"subject": f"Patient/{pid}"}).json["entry"][0]["resource"]
    assert condition["code"]["text"] == "Type 2 diabetes" and condition["asserter"] == {"reference": f"Patient/{pid}"}
    user = Users(ctx.store).authenticate("asha", "correct horse")
    assert user.role == "patient" and user.fhir_user == f"Patient/{pid}"
    card = body["healthCard"]["verifiableCredential"][0]
    subject = jws.parse(card)[1]["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]
    assert subject["identifier"][0]["value"] == body["uhid"] and body["qr"].startswith("shc:/")
    audit = client.get("/fhir/AuditEvent", query_string={"entity": body["patient"]}).json
    assert sorted(e["resource"]["subtype"][0]["code"] for e in audit["entry"]) == ["health-card", "registration"]
    assert all(e["resource"]["agent"][0]["who"] == {"reference": body["patient"]} for e in audit["entry"])


def test_a_possible_duplicate_gets_a_choice_and_nothing_is_created(client):
    first = register(client).json
    r = register(client, username="asha2", phone="098100-00000", email=None, given="ASHA")
    assert r.status_code == 409
    issues = r.json["issue"]
    assert issues[0]["code"] == "duplicate"
    assert [i["details"]["coding"][0]["code"] for i in issues[1:]] == ["sign-in", "claim-with-uhid",
                                                                        "confirm-new-identity"]
    text = r.get_data(as_text=True)       # the answer does not say whose record it found
    assert first["uhid"] not in text and first["patient"].split("/")[1] not in text and "asha@" not in text
    assert client.get("/fhir/Patient").json["total"] == 1
    # the person says they are someone else: a second identity, made on purpose
    r = register(client, username="asha2", phone="098100-00000", email=None, confirmNewIdentity=True)
    assert r.status_code == 201 and client.get("/fhir/Patient").json["total"] == 2
    # a different birth date is not a duplicate
    assert register(client, username="asha3", birthDate="1951-04-02").status_code == 201


def test_claiming_the_record_a_hospital_made(client):
    walk_in = post(client, patient(name=[{"family": "Sharma", "given": ["Asha"]}])).json
    uhid = uhid_in(walk_in)
    assert client.get(f"/fhir/Patient/{walk_in['id']}/$registration-code").status_code == 405   # POST only
    r = client.post(f"/fhir/Patient/{walk_in['id']}/$registration-code")
    assert r.status_code == 200
    code = r.json["parameter"][0]["valueString"]
    assert len(code) == 14 and code.count("-") == 2
    # what a health card shows (UHID, name, birth date) is not enough
    r = register(client, uhid=uhid)
    assert r.status_code == 400 and r.json["issue"][0]["expression"] == ["claimCode"]
    for wrong in ({"claimCode": "AAAA-AAAA-AAAA"}, {"claimCode": code, "birthDate": "1950-04-03"},
                  {"claimCode": code, "family": "Other"}):
        r = register(client, uhid=uhid, **wrong)
        assert r.status_code == 404 and "No record has this UHID" in r.json["issue"][0]["diagnostics"], wrong
    r = register(client, uhid=uhid.replace("-", " "), claimCode=code.lower().replace("-", ""))
    assert r.status_code == 201 and r.json["claimed"] is True and r.json["patient"] == f"Patient/{walk_in['id']}"
    assert r.json["uhid"] == uhid and client.get("/fhir/Patient").json["total"] == 1
    # the code is used up, and the record has its one account
    again = register(client, uhid=uhid, claimCode=code, username="someone-else")
    assert again.status_code == 404
    r = client.post(f"/fhir/Patient/{walk_in['id']}/$registration-code")
    assert r.status_code == 409 and "already has an account" in r.json["issue"][0]["diagnostics"]


def test_one_account_per_patient_whatever_made_it(client, ctx):
    """An account made by `medport user add` or the admin API blocks a second one for that Patient,
    until it is disabled (a locked-out patient can be given a new account)."""
    walk_in = post(client, patient()).json
    users = Users(ctx.store)
    users.add("mira", "a long password", "patient", f"Patient/{walk_in['id']}")
    uhid = uhid_in(walk_in)
    code = client.post(f"/fhir/Patient/{walk_in['id']}/$registration-code")
    assert code.status_code == 409
    with pytest.raises(ValueError, match="already has an account"):
        users.add("other", "a long password", "patient", f"Patient/{walk_in['id']}")
    assert users.disable("mira")
    code = client.post(f"/fhir/Patient/{walk_in['id']}/$registration-code").json["parameter"][0]["valueString"]
    r = register(client, uhid=uhid, claimCode=code, username="other")
    assert r.status_code == 201
    assert [(u.username, u.disabled) for u in users.list()] == [("mira", True), ("other", False)]


def test_accounts_made_before_links_existed_are_linked_at_start(tmp_path):
    from fhirserver import create_app
    from fhirserver.storage import open_store
    settings = make_settings(tmp_path)
    store = open_store(settings)
    store.put_record("user", "legacy", {"username": "legacy", "role": "patient", "fhir_user": "Patient/p1",
                                        "organization": None, "disabled": False, "password_hash": ""})
    create_app(settings, store)
    with pytest.raises(ValueError, match="already has an account"):
        Users(store).add("second", "a long password", "patient", "Patient/p1")


def test_the_same_person_registering_twice_at_once_gets_one_record(client, ctx, monkeypatch):
    """A double click: the second request runs while the first is between its check and its commit."""
    from fhirserver.registration import service
    real, inner = service._create, []

    def create_while_another_arrives(c, reg):
        if not inner:
            inner.append(register(client, username="asha-again"))     # arrives before this one commits
        return real(c, reg)
    monkeypatch.setattr(service, "_create", create_while_another_arrives)
    first = register(client)
    assert first.status_code == 201 and inner[0].status_code == 409
    assert client.get("/fhir/Patient").json["total"] == 1
    assert register(client, username="asha-3").status_code == 409      # and afterwards, as before


def test_a_conflict_after_the_commit_does_not_undo_or_repeat_the_registration(client, ctx, monkeypatch):
    from fhirserver import audit
    from fhirserver.storage.mongo_units import StoreRetry
    from tests._faults import failing_once
    monkeypatch.setattr("fhirserver.registration.service.audit.record",
                        failing_once(audit.record, StoreRetry("write conflict")))
    r = register(client)
    assert r.status_code == 201 and r.json["healthCard"] and client.get("/fhir/Patient").json["total"] == 1


@pytest.mark.parametrize("fields, where", [
    ({"birthDate": "2999-01-01"}, "birthDate"), ({"birthDate": "02/04/1950"}, "birthDate"),
    ({"gender": "f"}, "gender"), ({"phone": None, "email": None}, "phone"), ({"email": "not-an-email"}, "email"),
    ({"password": "short"}, "password"), ({"username": "a b"}, "username"), ({"uhid": "12-3456", "claimCode": "X"}, "uhid"),
    ({"allergies": [1, 2]}, "allergies"), ({"given": "x" * 101}, "given"), ({"phone": "call me"}, "phone"),
    ({"phone": "------"}, "phone"), ({"family": "Sharma\u0000"}, "family"), ({"allergies": ["a\u0007b"]}, "allergies"),
])
def test_bad_fields_are_named_and_nothing_is_stored(client, fields, where):
    r = register(client, **fields)
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
    assert any(where in i.get("expression", ()) for i in r.json["issue"]), r.json
    assert client.get("/fhir/Patient").json["total"] == 0


def test_malformed_and_hostile_bodies(client):
    for data, ctype in ((b"{not json", "application/json"), (b"[1]", "application/json"),
                        (b"[" * 200 + b"]" * 200, "application/json")):
        r = client.post("/api/registrations", data=data, headers={"Content-Type": ctype})
        assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient").json["total"] == 0


def test_a_taken_username_stores_nothing(client):
    assert register(client).status_code == 201
    r = register(client, given="Ravi", phone="+91 90000 00000", email="ravi@example.in")
    assert r.status_code == 409 and "already taken" in r.json["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient").json["total"] == 1


def test_self_registration_can_be_switched_off(tmp_path):
    from fhirserver import create_app
    client = create_app(make_settings(tmp_path, self_registration="off")).test_client()
    assert client.post("/api/registrations", json=ASHA).status_code == 404
    assert client.get("/register").status_code == 404


def test_registrations_per_address_are_limited(tmp_path):
    from fhirserver import create_app
    client = create_app(make_settings(tmp_path, registration_limit=3)).test_client()
    answers = [client.post("/api/registrations", json={**ASHA, "username": f"user{i}", "phone": f"+91 90000 0000{i}",
                                                       "given": f"G{i}"}) for i in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    assert int(answers[3].headers["Retry-After"]) > 3000 and answers[3].json["issue"][0]["code"] == "throttled"
    assert client.get("/fhir/Patient").json["total"] == 3
    # refused attempts are not recorded: the window ends, and the records stay bounded
    for _ in range(20):
        assert client.post("/api/registrations", json=ASHA).status_code == 429
    store = client.application.config["MEDPORT"].store
    assert len(store.list_records("rate:registration:127.0.0.1")) == 3


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(tmp_path):
    from fhirserver import create_app
    client = create_app(make_settings(tmp_path, registration_limit=1, proxy_hops=1)).test_client()

    def attempt(n, address):
        return client.post("/api/registrations", headers={"X-Forwarded-For": address}, json={
            **ASHA, "username": f"user{n}", "phone": f"+91 90000 0000{n}", "given": f"G{n}"}).status_code
    assert [attempt(0, "203.0.113.1"), attempt(1, "203.0.113.2"), attempt(2, "203.0.113.1")] == [201, 201, 429]
