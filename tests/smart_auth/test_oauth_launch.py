"""SMART App Launch 2.2 authorization code flows through the pages: standalone (patient user,
practitioner with the patient picker), EHR launch, scopes the user unticks, and refusals."""
from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.keys import SigningKeys
from tests.smart_auth.test_oauth_helpers import (
    AUTH,
    BASE,
    REDIRECT,
    authorize_params,
    begin,
    consent_page,
    csrf,
    decide,
    full_flow,
    login,
    make_world,
    pkce,
    query,
    start,
)


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    return make_world(tmp_path, monkeypatch, backend)


STANDALONE = "openid fhirUser launch/patient patient/*.rs offline_access"


def _verify(world, token):
    keys = SigningKeys(world.store)
    return tokens.verify(keys, world.store, token, BASE, BASE)


def test_standalone_patient_launch(world):
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{asha}")
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "asha", STANDALONE, nonce="n-1")
    assert body["patient"] == asha and body["need_patient_banner"] is True
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    assert set(body["scope"].split()) == set(STANDALONE.split()) and body["refresh_token"]
    assert body["smart_style_url"] == AUTH + "/smart-style.json"
    assert world.http.get("/auth/smart-style.json").get_json()["color_background"]
    claims = _verify(world, body["access_token"])
    assert claims["patient"] == asha and claims["fhirUser"] == f"Patient/{asha}" and claims["role"] == "patient"
    assert claims["client_id"] == client.client_id and claims["grant"]
    # the id_token verifies against the published JWKS with its kid and names the user
    jwks = KeySet.import_key_set(world.http.get("/auth/jwks").get_json())
    header = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    assert header.header["kid"] in [k["kid"] for k in world.http.get("/auth/jwks").get_json()["keys"]]
    idc = header.claims
    assert idc["fhirUser"] == f"{BASE}/Patient/{asha}" and idc["aud"] == client.client_id and idc["iss"] == BASE
    assert idc["nonce"] == "n-1" and idc["sub"] == "asha" and idc["exp"] > idc["iat"]


def test_patient_user_gets_no_user_scopes_and_only_their_record(world):
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{asha}")
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "asha", "patient/Observation.rs user/*.rs")
    assert body["scope"] == "patient/Observation.rs" and body["patient"] == asha


def test_practitioner_standalone_with_patient_picker(world):
    asha = world.patient("Sharma", "Asha")
    world.patient("Rao", "Ravi")
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    verifier, challenge = pkce()
    http = world.browser()
    r = start(http, authorize_params(client.client_id, challenge, "launch/patient patient/*.rs openid fhirUser"))
    request_id = query(r.headers["Location"])["request"]
    login(http, request_id, "drwho")
    page = consent_page(http, request_id, patient_search="sharma").get_data(as_text=True)
    assert "Asha Sharma" in page and f'value="{asha}"' in page and "Ravi" not in page
    # approving without choosing a patient re-asks
    r = decide(http, request_id)
    assert r.status_code == 400 and "Choose a patient" in r.get_data(as_text=True)
    r = decide(http, request_id, patient_id="does-not-exist")
    assert r.status_code == 400
    r = decide(http, request_id, patient=asha)
    assert r.status_code == 302
    q = query(r.headers["Location"])
    assert q["state"] == "st-123"
    body = world.http.post("/auth/token", data={"grant_type": "authorization_code", "code": q["code"],
                                                "redirect_uri": REDIRECT, "client_id": client.client_id,
                                                "code_verifier": verifier}).get_json()
    assert body["patient"] == asha and body["need_patient_banner"] is True
    assert _verify(world, body["access_token"])["fhirUser"] == "Practitioner/9"
    assert jwt.decode(body["id_token"], SigningKeys(world.store).key_set()).claims["fhirUser"] == \
        f"{BASE}/Practitioner/9"


def _practitioner_token(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    token, _ = tokens.issue(SigningKeys(world.store), BASE, BASE, "drwho", "ehr", "user/*.cruds",
                            role="practitioner", fhirUser="Practitioner/9")
    return {"Authorization": f"Bearer {token}"}


def test_ehr_launch(world):
    asha = world.patient("Sharma", "Asha")
    enc = world.encounter(asha)
    auth = _practitioner_token(world)
    r = world.http.post("/auth/launch", json={"patient": asha, "encounter": enc,
                                              "fhirContext": [{"reference": f"Encounter/{enc}"}]}, headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    launch = r.get_json()
    assert launch["iss"] == BASE
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "drwho", "launch patient/*.rs user/Practitioner.rs",
                     launch=launch["launch"])
    assert body["patient"] == asha and body["encounter"] == enc and body["need_patient_banner"] is False
    assert body["fhirContext"] == [{"reference": f"Encounter/{enc}"}]
    assert "refresh_token" not in body          # neither offline_access nor online_access
    claims = _verify(world, body["access_token"])
    assert claims["patient"] == asha and claims["encounter"] == enc


def test_launch_endpoint_refusals(world):
    asha = world.patient("Sharma", "Asha")
    assert world.http.post("/auth/launch", json={"patient": asha}).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert world.http.post("/auth/launch", json={"patient": asha}, headers=bad).status_code == 401
    world.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{asha}")
    patient_token, _ = tokens.issue(SigningKeys(world.store), BASE, BASE, "asha", "app", "patient/*.rs",
                                    role="patient", patient=asha)
    r = world.http.post("/auth/launch", json={"patient": asha}, headers={"Authorization": f"Bearer {patient_token}"})
    assert r.status_code == 403
    auth = _practitioner_token(world)
    assert world.http.post("/auth/launch", json={"patient": "nobody"}, headers=auth).status_code == 400
    assert world.http.post("/auth/launch", json=["x"], headers=auth).status_code == 400
    deep = "[" * 5000 + "]" * 5000
    r = world.http.post("/auth/launch", data=deep, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_ehr_launch_needs_an_issued_launch_id(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    _v, challenge = pkce()
    for extra in ({"launch": "made-up"}, {}):
        r = start(world.browser(), authorize_params(client.client_id, challenge, "launch patient/*.rs", **extra))
        assert r.status_code == 302 and query(r.headers["Location"])["error"] == "invalid_request"


def test_unticked_scope_is_not_granted(world):
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{asha}")
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "asha", "launch/patient patient/Observation.rs patient/Condition.rs",
                     scopes=["launch/patient", "patient/Observation.rs"])
    assert body["scope"] == "launch/patient patient/Observation.rs"
    assert _verify(world, body["access_token"])["scope"] == "launch/patient patient/Observation.rs"
    assert "id_token" not in body


def test_patient_scopes_dropped_without_patient_context(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "drwho", "patient/*.rs user/Patient.rs")
    assert body["scope"] == "user/Patient.rs" and "patient" not in body


def test_scopes_reduced_to_what_the_client_may_have(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client(scopes=["user/Patient.rs", "openid"])
    body = full_flow(world, client.client_id, "drwho", "user/Patient.rs user/Observation.rs openid system/*.rs")
    assert body["scope"] == "user/Patient.rs openid"


def test_deny_redirects_with_access_denied(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    http, request_id = begin(world, client.client_id, "user/*.rs")
    login(http, request_id, "drwho")
    r = decide(http, request_id, decision="deny")
    assert r.status_code == 302
    assert query(r.headers["Location"]) == {"error": "access_denied", "error_description": "The user denied access",
                                            "state": "st-123"}


def test_authorize_post_and_existing_session_skips_login(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    _v, challenge = pkce()
    http = world.browser()
    r = start(http, authorize_params(client.client_id, challenge, "user/*.rs"), post=True)
    assert r.status_code == 303 and r.headers["Location"].startswith("/auth/login")
    login(http, query(r.headers["Location"])["request"], "drwho")
    r = start(http, authorize_params(client.client_id, challenge, "user/*.rs"), post=True)
    assert r.headers["Location"].startswith("/auth/consent")


def test_unknown_client_and_bad_redirect_uri_never_redirect(world):
    client, _ = world.app_client()
    _v, challenge = pkce()
    for params in (authorize_params("nobody", challenge, "user/*.rs"),
                   authorize_params(client.client_id, challenge, "user/*.rs", redirect_uri="https://evil.example/cb"),
                   authorize_params(client.client_id, challenge, "user/*.rs", redirect_uri=REDIRECT + "/x")):
        r = start(world.browser(), params)
        assert r.status_code == 400 and "Location" not in r.headers
        assert r.headers["Content-Type"].startswith("text/html") and r.headers["X-Frame-Options"] == "DENY"
    world.clients.disable(client.client_id)
    r = start(world.browser(), authorize_params(client.client_id, challenge, "user/*.rs"))
    assert r.status_code == 400 and "Location" not in r.headers


def test_request_errors_go_back_to_the_app(world):
    client, _ = world.app_client()
    _v, challenge = pkce()
    cases = [({"aud": "http://other.example/fhir"}, "invalid_request"),
             ({"aud": None}, "invalid_request"),
             ({"response_type": "token"}, "unsupported_response_type"),
             ({"code_challenge": None}, "invalid_request"),
             ({"code_challenge": ""}, "invalid_request"),
             ({"code_challenge_method": "plain"}, "invalid_request"),
             ({"code_challenge_method": None}, "invalid_request"),
             ({"scope": "patient/Observation.xyz"}, "invalid_scope"),
             ({"scope": "patient/NotAType.rs"}, "invalid_scope"),
             ({"scope": "system/*.rs"}, "invalid_scope")]
    for change, error in cases:
        params = {k: v for k, v in {**authorize_params(client.client_id, challenge, "user/*.rs"), **change}.items()
                  if v is not None}
        r = start(world.browser(), params)
        assert r.status_code == 302, change
        q = query(r.headers["Location"])
        assert r.headers["Location"].startswith(REDIRECT) and q["error"] == error and q["state"] == "st-123", change
        assert "code" not in q


def test_login_failures_and_throttling_show_on_the_page(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    http, request_id = begin(world, client.client_id, "user/*.rs")
    r = login(http, request_id, "drwho", "wrong password")
    assert r.status_code == 401 and "Invalid username or password" in r.get_data(as_text=True)
    r = login(http, request_id, "nobody", "wrong password")
    assert r.status_code == 401 and "Invalid username or password" in r.get_data(as_text=True)
    for _ in range(4):
        login(http, request_id, "drwho", "wrong password")
    r = login(http, request_id, "drwho")            # even the right password, while throttled
    assert r.status_code == 429 and "Too many failed sign-in attempts" in r.get_data(as_text=True)


def test_forms_need_the_session_csrf_token(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.app_client()
    http, request_id = begin(world, client.client_id, "user/*.rs")
    page = http.get(f"/auth/login?request={request_id}")
    assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Lax" in page.headers["Set-Cookie"]
    r = http.post("/auth/login", data={"csrf": "forged", "request": request_id, "username": "drwho",
                                       "password": "correct horse battery"})
    assert r.status_code == 400
    r = login(http, request_id, "drwho")
    assert r.status_code == 303
    token = csrf(consent_page(http, request_id).get_data(as_text=True))
    r = http.post("/auth/consent", data={"csrf": "forged", "request": request_id, "decision": "approve",
                                         "scope": ["user/*.rs"]})
    assert r.status_code == 403
    # a different browser with the right token but no session cookie gets nowhere either
    r = world.browser().post("/auth/consent", data={"csrf": token, "request": request_id, "decision": "approve",
                                                    "scope": ["user/*.rs"]})
    assert r.status_code == 403


def test_page_escapes_app_name(world):
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    client, _ = world.clients.add("<script>alert(1)</script>", "public", redirect_uris=[REDIRECT],
                                  scopes=["user/*.rs"])
    http, request_id = begin(world, client.client_id, "user/*.rs")
    login(http, request_id, "drwho")
    page = consent_page(http, request_id).get_data(as_text=True)
    assert "<script>" not in page and "&lt;script&gt;" in page
