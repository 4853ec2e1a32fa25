"""Self-registration through POST /api/registrations, on every store."""
from __future__ import annotations

import re

import pytest

from fhirserver import outbox
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


def store_of(client):
    return client.application.config["MEDPORT"].store


def messages_to(client, to: str) -> list[str]:
    """The bodies of the outbox messages to one phone or email, oldest first."""
    store = client.application.config["MEDPORT"].store
    return [m["body"] for _id, m in outbox.messages(store, include_sent=True) if m["to"] == to]


def code_in(body: str) -> str:
    return re.search(r"code is ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{2})", body).group(1)


def enrol(client, **fields):
    """Register and confirm with the code sent to the phone (or the email): the confirmation's answer."""
    reg = {**ASHA, **fields}
    r = register(client, **fields)
    assert r.status_code == 202, r.get_data(as_text=True)
    code = code_in(messages_to(client, reg.get("phone") or reg.get("email"))[-1])
    return client.post("/api/registrations/confirm", json={"code": code})


def test_registration_creates_patient_account_records_and_card(client, ctx):
    r = enrol(client)
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
    user = Users(ctx.store).authenticate(body["username"], "correct horse")
    assert body["username"].startswith("asha-") and f"username {body['username']}" in messages_to(
        client, ASHA["phone"])[-1] and body["uhid"] in messages_to(client, ASHA["email"])[-1]
    assert user.role == "patient" and user.fhir_user == f"Patient/{pid}"
    card = body["healthCard"]["verifiableCredential"][0]
    subject = jws.parse(card)[1]["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]
    assert subject["identifier"][0]["value"] == body["uhid"] and body["qr"].startswith("shc:/")
    audit = client.get("/fhir/AuditEvent", query_string={"entity": body["patient"], "_count": 100}).json
    # the sensitive acts (fhirserver/audit.py); the BALP trail and auth events are tested in tests/audit_log and
    # tests/smart_auth/test_auth_audit.py
    acts = [e for e in audit["entry"] if e["resource"]["subtype"][0]["system"].endswith("/CodeSystem/medport-audit")]
    assert sorted(e["resource"]["subtype"][0]["code"] for e in acts) == ["health-card", "registration"]
    assert all(e["resource"]["agent"][0]["who"] == {"reference": body["patient"]} for e in acts)


def test_registering_answers_alike_whoever_is_registered(client):
    """Security issue 12, finding 9: no answer tells whether a person (or a username) is registered;
    the outcome goes to the phone or email (the outbox)."""
    fresh = register(client, given="Ravi", phone="+91 90000 22222", email="ravi@example.in")
    assert enrol(client).status_code == 201                          # asha is registered now
    again = register(client, given="ASHA", phone="098100-00000", email=None, username="admin")
    walk_in = post(client, patient(name=[{"family": "Iyer", "given": ["Meera"]}], birthDate="1960-01-01",
                                   telecom=[{"system": "email", "value": "meera@example.in"}]))
    hospital_made = register(client, given="Meera", family="Iyer", birthDate="1960-01-01", phone=None,
                             email="meera@example.in")
    answers = [fresh, again, hospital_made]
    assert {r.status_code for r in answers} == {202} and len({r.get_data() for r in answers}) == 1
    assert "already" not in fresh.get_data(as_text=True).split("(")[0]
    # out of band: the contact on record hears that it is registered; nothing is created
    assert "already exists" in messages_to(client, "098100-00000")[-1]
    assert "already exists" in messages_to(client, "meera@example.in")[-1]
    assert "code is" in messages_to(client, "+91 90000 22222")[-1]
    assert client.get("/fhir/Patient").json["total"] == 2 and walk_in.status_code == 201
    # the person says they are someone else: a second identity, made on purpose, once they confirm
    r = enrol(client, phone="098100-00000", email=None, confirmNewIdentity=True)
    assert r.status_code == 201 and client.get("/fhir/Patient").json["total"] == 3
    # a different birth date is not a duplicate
    assert enrol(client, birthDate="1951-04-02").status_code == 201


def test_a_code_registers_only_the_contacts_it_reached(client):
    """An attacker who types a victim's email beside their own phone learns nothing: the email gets
    'already registered', the phone a code that registers the person with the phone only."""
    assert enrol(client).status_code == 201
    r = register(client, phone="+91 90000 33333", email=ASHA["email"])
    assert r.status_code == 202 and "already exists" in messages_to(client, ASHA["email"])[-1]
    code = code_in(messages_to(client, "+91 90000 33333")[-1])
    r = client.post("/api/registrations/confirm", json={"code": code})
    assert r.status_code == 201
    stored = client.get(f"/fhir/{r.json['patient']}").json
    assert [t["value"] for t in stored["telecom"]] == ["+91 90000 33333"]


def test_confirmation_codes_are_single_use_and_unguessable_answers_alike(client):
    register(client)
    code = code_in(messages_to(client, ASHA["phone"])[-1])
    for wrong in ("AAAA-AAAA-AA", "", 5):
        r = client.post("/api/registrations/confirm", json={"code": wrong})
        assert r.status_code == 404 and r.json["issue"][0]["expression"] == ["code"]
    assert client.post("/api/registrations/confirm", json={"code": code.lower()}).status_code == 201
    assert client.post("/api/registrations/confirm", json={"code": code}).status_code == 404
    pending = client.application.config["MEDPORT"].store.list_records("registration-pending")
    assert pending == []


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
    assert sorted((u.username, u.disabled) for u in users.list()) == sorted([("mira", True), (r.json["username"], False)])


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
    """Two codes confirmed at once (a double click): the second runs while the first is between its
    check and its commit."""
    from fhirserver.registration import service
    register(client)
    register(client)
    first, second = (code_in(m) for m in messages_to(client, ASHA["phone"])[-2:])
    real, inner, started = service._create, [], []

    def create_while_another_arrives(c, reg, password_hash):
        if not started:        # (called directly: a nested test request would share the outer's g)
            started.append(True)
            with pytest.raises(service.PossibleDuplicate) as e:
                service.confirm(c, second)
            inner.append(e.value)
        return real(c, reg, password_hash)
    monkeypatch.setattr(service, "_create", create_while_another_arrives)
    r = client.post("/api/registrations/confirm", json={"code": first})
    assert r.status_code == 201 and inner[0].status == 409 and inner[0].issues[0].code == "duplicate"
    assert client.get("/fhir/Patient").json["total"] == 1
    assert register(client).status_code == 202                         # and afterwards: "already registered"
    assert "already exists" in messages_to(client, ASHA["phone"])[-1]


def test_a_conflict_after_the_commit_does_not_undo_or_repeat_the_registration(client, ctx, monkeypatch):
    from fhirserver import audit
    from fhirserver.errors import StoreRetry
    from tests._faults import failing_once
    monkeypatch.setattr("fhirserver.registration.service.audit.record",
                        failing_once(audit.record, StoreRetry("write conflict")))
    r = enrol(client)
    assert r.status_code == 201 and r.json["healthCard"] and client.get("/fhir/Patient").json["total"] == 1


@pytest.mark.parametrize("fields, where", [
    ({"birthDate": "2999-01-01"}, "birthDate"), ({"birthDate": "02/04/1950"}, "birthDate"),
    ({"gender": "f"}, "gender"), ({"phone": None, "email": None}, "phone"), ({"email": "not-an-email"}, "email"),
    ({"password": "short"}, "password"), ({"uhid": "12-3456", "claimCode": "X"}, "uhid"),
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


def test_usernames_are_assigned_so_a_taken_one_is_never_told(client, ctx):
    Users(ctx.store).add("admin", "a long password", "admin")
    r = enrol(client, username="admin")
    assert r.status_code == 201 and r.json["username"] != "admin" and r.json["username"].startswith("asha-")
    assert "admin" not in r.get_data(as_text=True)
    assert Users(ctx.store).get("admin").role == "admin"


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
    assert [r.status_code for r in answers] == [202, 202, 202, 429]
    assert int(answers[3].headers["Retry-After"]) > 3000 and answers[3].json["issue"][0]["code"] == "throttled"
    assert len(store_of(client).list_records("registration-pending")) == 3
    # refused attempts are not recorded: the window ends, and the records stay bounded
    for _ in range(20):
        assert client.post("/api/registrations", json=ASHA).status_code == 429
    assert len(store_of(client).list_records("rate:registration:127.0.0.1")) == 3


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(tmp_path):
    from fhirserver import create_app
    client = create_app(make_settings(tmp_path, registration_limit=1, proxy_hops=1)).test_client()

    def attempt(n, address):
        return client.post("/api/registrations", headers={"X-Forwarded-For": address}, json={
            **ASHA, "username": f"user{n}", "phone": f"+91 90000 0000{n}", "given": f"G{n}"}).status_code
    assert [attempt(0, "203.0.113.1"), attempt(1, "203.0.113.2"), attempt(2, "203.0.113.1")] == [202, 202, 429]
