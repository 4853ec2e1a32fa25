"""Every auth event leaves a DICOM-typed AuditEvent (smart_auth/auth_audit.py): sign-in and sign-out,
the consent decision, tokens issued, refreshed, refused and revoked, a replayed code, and the
administration of users and clients (admin API and CLI) and self-registered accounts. Each conforms to
BALP's generic rules (tests/audit_log/balp_profile.py), names who acted and carries no secret."""
from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from fhirserver.audit_log import balp, journal
from fhirserver.cli import main
from fhirserver.config import Settings
from fhirserver.smart_auth import client_assertion, tokens
from fhirserver.smart_auth.keys import SigningKeys
from fhirserver.storage import open_store
from tests.audit_log.balp_profile import assert_balp
from tests.smart_auth.test_oauth_helpers import (
    BASE,
    PASSWORD,
    TOKEN_URL,
    begin,
    decide,
    get_code,
    login,
    make_world,
    query,
    redeem,
)
from tests.smart_auth.test_picker_reach import held_by

DCM = balp.DCM
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DRWHO_ORG = "Organization/7"     # its practitioner picks patients it holds (the picker names no other)


@pytest.fixture
def world(tmp_path, monkeypatch):
    client_assertion.clear_cache()
    w = make_world(tmp_path, monkeypatch, refresh_token_lifetime=3600, session_lifetime=3600)
    w.users.add("drwho", PASSWORD, "practitioner", fhir_user="Practitioner/9", organization=DRWHO_ORG)
    return w


def security_events(store) -> list[dict]:
    """The stored auth events (DICOM-typed, not the FHIR interactions' rest events), each checked."""
    out = []
    journal.drain(store, BASE)          # the requests' events wait in the audit journal (docs/audit.md)
    for version in store.history("AuditEvent", limit=10000).items:
        event = json.loads(version.body)
        if event["subtype"][0]["system"] in (balp.AUTH_EVENTS, DCM):
            assert_balp(event, BASE)
            out.append(event)
    return out


def of(events, code: str) -> list[dict]:
    return [e for e in events if e["subtype"][0]["code"] == code]


def one(events, code: str) -> dict:
    found = of(events, code)
    assert len(found) == 1, [e["subtype"][0]["code"] for e in events]
    return found[0]


def client_of(event) -> str | None:
    return ((event["agent"][0]["who"].get("identifier") or {}).get("value"))


def user_of(event) -> dict | None:
    users = [a for a in event["agent"] if a["type"]["coding"][0]["system"] == balp.PARTICIPATION]
    return users[0]["who"] if users else None


def patient_of(event) -> str | None:
    refs = [e["what"]["reference"] for e in event.get("entity", []) if e.get("role", {}).get("code") == "1"]
    return refs[0] if refs else None


def about(event) -> str | None:
    ids = [e["what"]["identifier"]["value"] for e in event.get("entity", []) if e.get("role", {}).get("code") == "13"]
    return ids[0] if ids else None


def assert_no_secret(store, *secrets: str) -> None:
    stored = json.dumps(security_events(store))
    for secret in secrets:
        assert secret and secret not in stored, f"a secret is in the audit trail: {secret[:12]}..."


def test_sign_in_consent_tokens_refresh_revoke_and_sign_out(world):
    pid = held_by(world, DRWHO_ORG, "Sharma", "Asha")
    app, _ = world.app_client()
    # a wrong password, then the right one, in the browser that started the authorization request
    http, rid = begin(world, app.client_id, "launch/patient patient/*.rs offline_access openid fhirUser")
    assert login(http, rid, "drwho", "not the password").status_code == 401
    assert login(http, rid, "drwho").status_code == 303
    r = decide(http, rid, patient=pid)
    assert r.status_code == 302, r.get_data(as_text=True)
    code = query(r.headers["Location"])["code"]
    events = security_events(world.store)
    failed, signed_in = sorted(of(events, "110122"), key=lambda e: e["outcome"], reverse=True)
    assert failed["outcome"] == "4" and signed_in["outcome"] == "0"
    assert failed["type"]["code"] == "110114" and "not the password" not in json.dumps(failed)
    assert user_of(failed) == {"identifier": {"system": f"{BASE}/sid/user", "value": "drwho"}}
    assert user_of(signed_in) == {"reference": "Practitioner/9"} and client_of(signed_in) == app.client_id
    consent = one(events, "consent-given")
    assert consent["outcome"] == "0" and patient_of(consent) == f"Patient/{pid}"
    assert "patient/*.rs" in consent["outcomeDesc"] and client_of(consent) == app.client_id
    assert consent["meta"]["extension"][0]["valueReference"] == {"reference": "Organization/7"}    # its custodian

    # the code redeemed, refreshed, then a bad code and a bad refresh token
    body = redeem(world, app.client_id, code, "x" * 43).get_json()
    assert body["error"] == "invalid_grant"          # a wrong code_verifier: refused, and recorded
    assert one(security_events(world.store), "token-refused")["outcome"] == "4"


def _token_flow(world, app, pid):
    code, verifier, _q = get_code(world, app.client_id, "drwho", "launch/patient patient/*.rs offline_access",
                                  fields={"patient": pid})
    r = redeem(world, app.client_id, code, verifier)
    assert r.status_code == 200, r.get_data(as_text=True)
    return code, verifier, r.get_json()


def test_tokens_issued_refreshed_refused_revoked(world):
    pid = held_by(world, DRWHO_ORG, "Sharma", "Asha")
    app, _ = world.app_client()
    code, verifier, first = _token_flow(world, app, pid)
    second = world.http.post("/auth/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": first["refresh_token"]}).get_json()
    assert "access_token" in second
    assert world.http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": app.client_id,
                                                "refresh_token": "not-a-refresh-token"}).status_code == 400
    assert redeem(world, app.client_id, "not-a-code", verifier).status_code == 400
    r = world.http.post("/auth/revoke", data={"token": second["refresh_token"], "client_id": app.client_id,
                                              "token_type_hint": "refresh_token"})
    assert r.status_code == 200
    events = security_events(world.store)
    issued, refreshed = one(events, "token-issued"), one(events, "token-refreshed")
    for event in (issued, refreshed):
        assert event["type"]["code"] == "110114" and event["outcome"] == "0"
        assert client_of(event) == app.client_id and user_of(event) == {"reference": "Practitioner/9"}
        assert patient_of(event) == f"Patient/{pid}"          # in the patient's access report
    assert "grant_type authorization_code" in issued["outcomeDesc"] and "jti " in issued["outcomeDesc"]
    assert about(issued) == about(refreshed)                  # the grant id: one authorization
    refused = of(events, "token-refused")
    assert len(refused) == 2 and {e["outcome"] for e in refused} == {"4"}
    assert all(client_of(e) == app.client_id for e in refused)
    assert {"invalid_grant"} == {e["outcomeDesc"].split(": ")[1] for e in refused}
    revoked = one(events, "token-revoked")
    assert revoked["outcome"] == "0" and about(revoked) == about(issued) and patient_of(revoked) == f"Patient/{pid}"
    assert_no_secret(world.store, PASSWORD, code, verifier, first["access_token"], first["refresh_token"],
                     second["access_token"], second["refresh_token"])


def test_introspection_is_recorded_with_who_asked(world):
    import base64
    pid = held_by(world, DRWHO_ORG, "Sharma", "Asha")
    app, _ = world.app_client()
    _code, _verifier, issued = _token_flow(world, app, pid)
    rs, secret = world.app_client(type="confidential-symmetric")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{rs.client_id}:{secret}".encode()).decode()}
    r = world.http.post("/auth/introspect", data={"token": issued["access_token"]}, headers=basic)
    assert r.status_code == 200 and r.get_json()["active"] is True
    assert world.http.post("/auth/introspect", data={"token": "not-a-token"}, headers=basic).get_json() == \
        {"active": False}
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{rs.client_id}:wrong".encode()).decode()}
    assert world.http.post("/auth/introspect", data={"token": issued["access_token"]}, headers=wrong).status_code == 401
    events = security_events(world.store)
    asked = of(events, "token-introspected")
    assert len(asked) == 2 and {client_of(e) for e in asked} == {rs.client_id}
    active = next(e for e in asked if e["outcomeDesc"].startswith("active true"))
    assert active["type"]["code"] == "110114" and active["outcome"] == "0"
    assert f"client_id {app.client_id}" in active["outcomeDesc"] and patient_of(active) == f"Patient/{pid}"
    assert any(e["outcomeDesc"] == "active false" for e in asked)
    refused = [e for e in of(events, "token-refused") if e["outcomeDesc"].startswith("introspection request refused")]
    assert len(refused) == 1 and refused[0]["outcome"] == "4" and client_of(refused[0]) == rs.client_id
    assert_no_secret(world.store, secret, issued["access_token"], issued["refresh_token"])


def test_a_replayed_code_is_a_security_alert(world):
    app, _ = world.app_client()
    code, verifier, first = _token_flow(world, app, held_by(world, DRWHO_ORG, "Sharma", "Asha"))
    assert redeem(world, app.client_id, code, verifier).status_code == 400
    events = security_events(world.store)
    alert = one(events, "token-replayed")
    assert alert["type"]["code"] == "110113" and alert["outcome"] == "4" and client_of(alert) == app.client_id
    assert about(alert) == about(one(events, "token-issued"))
    assert_no_secret(world.store, code, verifier, first["access_token"])


def test_consent_refused_and_sign_out(world):
    pid = world.patient("Kumar", "Ravi")
    world.users.add("ravi", PASSWORD, "patient", fhir_user=f"Patient/{pid}")
    app, _ = world.app_client()
    http, rid = begin(world, app.client_id, "launch/patient patient/*.rs")
    login(http, rid, "ravi")
    r = decide(http, rid, decision="deny")
    assert query(r.headers["Location"])["error"] == "access_denied"
    page = http.get("/auth/logout").get_data(as_text=True)
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert http.post("/auth/logout", data={"csrf": csrf}).status_code == 200
    events = security_events(world.store)
    refused = one(events, "consent-refused")
    assert refused["outcome"] == "4" and patient_of(refused) == f"Patient/{pid}"
    assert user_of(refused) == {"reference": f"Patient/{pid}"} and client_of(refused) == app.client_id
    out = one(events, "110123")
    assert out["outcome"] == "0" and user_of(out) == {"identifier": {"system": f"{BASE}/sid/user", "value": "ravi"}}


def _assertion(client_id, key, aud=TOKEN_URL):
    now = int(time.time())
    return jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"},
                      {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 240, "jti": uuid.uuid4().hex},
                      key, algorithms=["RS384"])


def test_backend_services_token_and_a_bad_assertion(world):
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    backend, _ = world.clients.add("Lab", "confidential-asymmetric", scopes=["system/Patient.rs"],
                                   jwks={"keys": [key.as_dict(private=False)]}, organization="Organization/7")
    good = _assertion(backend.client_id, key)
    r = world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs",
                                             "client_assertion_type": ASSERTION_TYPE, "client_assertion": good})
    assert r.status_code == 200, r.get_data(as_text=True)
    forged = _assertion(backend.client_id, RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    r2 = world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs",
                                              "client_assertion_type": ASSERTION_TYPE, "client_assertion": forged})
    assert r2.status_code in (400, 401)
    events = security_events(world.store)
    issued = one(events, "token-issued")
    assert client_of(issued) == backend.client_id and user_of(issued) is None and issued["outcome"] == "0"
    assert "grant_type client_credentials" in issued["outcomeDesc"]
    refused = one(events, "token-refused")
    assert refused["outcome"] == "4" and client_of(refused) == backend.client_id      # the client it claimed
    assert "invalid_client" in refused["outcomeDesc"]
    assert_no_secret(world.store, good, forged, r.get_json()["access_token"])


def _admin(world, role="admin", scope="medport/admin"):
    name = f"the-{role}"
    if world.users.get(name) is None:
        world.users.add(name, PASSWORD, role, None if role == "admin" else "Practitioner/1")
    token, _ = tokens.issue(SigningKeys(world.store), BASE, BASE, name, "console", scope, role=role)
    return {"Authorization": f"Bearer {token}"}


def test_administration_over_the_admin_api(world):
    admin = _admin(world)
    http = world.http
    r = http.post("/auth/admin/users", headers=admin, json={
        "username": "meera", "password": "a long password", "role": "practitioner", "fhir_user": "Practitioner/3",
        "break_glass": True})
    assert r.status_code == 201
    assert http.post("/auth/admin/users", headers=admin, json={
        "username": "meera", "password": "a long password", "role": "practitioner",
        "fhir_user": "Practitioner/3"}).status_code == 400
    assert http.post("/auth/admin/users/meera/disable", headers=admin).status_code == 200
    r = http.post("/auth/admin/clients", headers=admin, json={
        "name": "EHR", "type": "confidential-symmetric", "redirect_uris": ["https://ehr.example/cb"],
        "scopes": ["user/*.rs"]})
    assert r.status_code == 201
    client_id, secret = r.json["client_id"], r.json["client_secret"]
    assert http.post(f"/auth/admin/clients/{client_id}/disable", headers=admin).status_code == 200
    assert http.post("/auth/admin/users/meera/disable", headers=_admin(world, "practitioner")).status_code == 403
    assert http.get("/auth/admin/users", headers=admin).status_code == 200
    assert http.get("/auth/admin/clients", headers=admin).status_code == 200
    events = security_events(world.store)
    for code, what in (("users-listed", " users"), ("clients-listed", " clients")):
        listed = one(events, code)
        assert listed["type"]["code"] == "110112" and listed["outcome"] == "0" and listed["outcomeDesc"].endswith(what)
        assert user_of(listed) == {"identifier": {"system": f"{BASE}/sid/user", "value": "the-admin"}}
    created = of(events, "user-create")
    assert sorted(e["outcome"] for e in created) == ["0", "4"]
    ok = next(e for e in created if e["outcome"] == "0")
    assert ok["type"]["code"] == "110137" and about(ok) == "meera"
    assert "role practitioner" in ok["outcomeDesc"] and "break-glass privilege granted" in ok["outcomeDesc"]
    assert user_of(ok) == {"identifier": {"system": f"{BASE}/sid/user", "value": "the-admin"}}
    assert client_of(ok) == "console"
    assert about(one(events, "user-disable")) == "meera"
    assert about(one(events, "client-create")) == client_id
    assert about(one(events, "client-disable")) == client_id
    refused = one(events, "admin-refused")
    assert refused["type"]["code"] == "110113" and refused["outcome"] == "4"
    assert user_of(refused) == {"identifier": {"system": f"{BASE}/sid/user", "value": "the-practitioner"}}
    assert_no_secret(world.store, "a long password", secret, admin["Authorization"].split()[1])


def test_self_registration_opens_an_account_on_the_record(tmp_path, monkeypatch):
    from tests.registration.test_registration_api import enrol
    world = make_world(tmp_path, monkeypatch)
    r = enrol(world.http)
    assert r.status_code == 201, r.get_data(as_text=True)
    pid, username = r.json["patient"].split("/")[1], r.json["username"]
    event = one(security_events(world.store), "account-registered")
    assert event["type"]["code"] == "110137" and about(event) == username and patient_of(event) == f"Patient/{pid}"
    assert user_of(event) == {"reference": f"Patient/{pid}"}
    assert_no_secret(world.store, "correct horse")


def test_cli_administration_is_recorded(tmp_path, monkeypatch):
    from fhirserver.smart_auth import passwords
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    url = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["user", "add", "dr", "--role", "practitioner", "--fhir-user", "Practitioner/9",
                 "--password-stdin", "--store", url]) == 0
    assert main(["user", "disable", "dr", "--store", url]) == 0
    store = open_store(Settings(store=url))
    try:
        events = [json.loads(v.body) for v in store.history("AuditEvent", limit=100).items]
    finally:
        store.close()
    base = Settings(store=url).base_url
    assert sorted(e["subtype"][0]["code"] for e in events) == ["user-create", "user-disable"]
    for event in events:
        assert_balp(event, base)
        assert event["outcome"] == "0" and about(event) == "dr"
        assert event["agent"][0]["who"] == {"display": "no access token"} and user_of(event) is None
        assert event["agent"][0]["network"]["type"] == "1"          # the machine the operator used
    assert "correct horse" not in json.dumps(events)
