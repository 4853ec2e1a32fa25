"""The token endpoint for user launches (RFC 6749 4.1.3, 5, 6; RFC 7636 4.6): PKCE, single-use
codes, client authentication, refresh tokens (subset scope, rotation, offline vs online)."""
from __future__ import annotations

import base64
import time

import pytest

from fhirserver.smart_auth import refresh, tokens
from fhirserver.smart_auth.keys import SigningKeys
from tests.smart_auth.test_oauth_helpers import BASE, csrf, full_flow, get_code, make_world, redeem


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend, refresh_token_lifetime=10 * 24 * 3600, session_lifetime=3600)
    w.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    return w


def _error(r, status, error):
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.get_json()["error"] == error
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Pragma"] == "no-cache"


def test_token_response_headers(world):
    client, _ = world.app_client()
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    r = redeem(world, client.client_id, code, verifier)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Pragma"] == "no-cache"
    assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("verifier", [None, "", "   ", "wrong-verifier-" + "x" * 40])
def test_code_verifier_missing_blank_or_wrong(world, verifier):
    client, _ = world.app_client()
    code, _v, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    _error(redeem(world, client.client_id, code, verifier), 400, "invalid_grant")


def test_code_is_single_use_and_reuse_revokes_what_it_gave(world):
    client, _ = world.app_client()
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs offline_access")
    first = redeem(world, client.client_id, code, verifier).get_json()
    _error(redeem(world, client.client_id, code, verifier), 400, "invalid_grant")
    with pytest.raises(Exception, match="revoked"):
        tokens.verify(SigningKeys(world.store), world.store, first["access_token"], BASE, BASE)
    r = world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                             "client_id": client.client_id})
    _error(r, 400, "invalid_grant")


def test_invalid_code_wrong_client_or_redirect_uri(world):
    client, _ = world.app_client()
    other, _ = world.app_client()
    _error(redeem(world, client.client_id, "no-such-code", "v" * 43), 400, "invalid_grant")
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    _error(redeem(world, other.client_id, code, verifier), 400, "invalid_grant")
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    _error(redeem(world, client.client_id, code, verifier, redirect_uri="https://app.example/other"), 400,
           "invalid_grant")


def test_bad_grant_type_and_bad_requests(world):
    client, _ = world.app_client()
    r = world.http.post("/auth/token", data={"grant_type": "password", "client_id": client.client_id})
    _error(r, 400, "unsupported_grant_type")
    r = world.http.post("/auth/token", data={"client_id": client.client_id})
    _error(r, 400, "invalid_request")
    r = world.http.post("/auth/token", json={"grant_type": "authorization_code", "client_id": client.client_id})
    _error(r, 400, "invalid_request")
    r = world.http.post("/auth/token", data="grant_type=a&grant_type=b&client_id=" + client.client_id,
                        content_type="application/x-www-form-urlencoded")
    _error(r, 400, "invalid_request")
    r = world.http.post("/auth/token", data={"grant_type": "authorization_code", "client_id": "nobody"})
    _error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    # a public client cannot use client_credentials
    r = world.http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client.client_id,
                                             "scope": "system/*.rs"})
    _error(r, 400, "unauthorized_client")


def test_confidential_symmetric_client(world):
    client, secret = world.app_client(type="confidential-symmetric")
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    r = redeem(world, client.client_id, code, verifier, auth={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    assert redeem(world, client.client_id, code, verifier, client_secret=secret).status_code == 200
    # no secret, a wrong one, or two methods at once
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs")
    _error(redeem(world, client.client_id, code, verifier), 401, "invalid_client")
    _error(redeem(world, client.client_id, code, verifier, client_secret="wrong"), 401, "invalid_client")
    wrong = base64.b64encode(f"{client.client_id}:wrong".encode()).decode()
    r = redeem(world, client.client_id, code, verifier, auth={"Authorization": f"Basic {wrong}"})
    _error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = redeem(world, client.client_id, code, verifier, auth={"Authorization": f"Basic {basic}"}, client_secret=secret)
    _error(r, 400, "invalid_request")


def _refresh(world, client_id, token, **extra):
    return world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                "client_id": client_id, **extra})


def test_refresh_subset_scope_and_rotation(world):
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "drwho", "user/Patient.rs user/Observation.rs offline_access")
    r = _refresh(world, client.client_id, body["refresh_token"], scope="user/Patient.rs")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    second = r.get_json()
    assert second["scope"] == "user/Patient.rs" and second["expires_in"] > 0
    claims = tokens.verify(SigningKeys(world.store), world.store, second["access_token"], BASE, BASE)
    assert claims["scope"] == "user/Patient.rs" and claims["sub"] == "drwho" and claims["role"] == "practitioner"
    # the rotated refresh token keeps the original scope
    third = _refresh(world, client.client_id, second["refresh_token"]).get_json()
    assert set(third["scope"].split()) == {"user/Patient.rs", "user/Observation.rs", "offline_access"}
    # a wider scope is refused (and does not use up the token)
    r = _refresh(world, client.client_id, third["refresh_token"], scope="user/Patient.rs user/*.cruds")
    _error(r, 400, "invalid_scope")
    assert _refresh(world, client.client_id, third["refresh_token"]).status_code == 200


def test_old_refresh_token_refused_and_its_replay_revokes_the_grant(world):
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "drwho", "user/Patient.rs offline_access")
    second = _refresh(world, client.client_id, body["refresh_token"]).get_json()
    _error(_refresh(world, client.client_id, body["refresh_token"]), 400, "invalid_grant")
    # presenting a rotated-away token again means it leaked: the newer tokens stop too
    _error(_refresh(world, client.client_id, second["refresh_token"]), 400, "invalid_grant")
    with pytest.raises(Exception, match="revoked"):
        tokens.verify(SigningKeys(world.store), world.store, second["access_token"], BASE, BASE)


def test_invalid_or_foreign_refresh_token(world):
    client, _ = world.app_client()
    other, _ = world.app_client()
    body = full_flow(world, client.client_id, "drwho", "user/Patient.rs offline_access")
    _error(_refresh(world, client.client_id, "not-a-refresh-token"), 400, "invalid_grant")
    _error(_refresh(world, client.client_id, ""), 400, "invalid_grant")
    _error(_refresh(world, other.client_id, body["refresh_token"]), 400, "invalid_grant")
    assert _refresh(world, client.client_id, body["refresh_token"]).status_code == 200   # not used up


def test_offline_and_online_lifetimes(world):
    client, _ = world.app_client()
    offline = full_flow(world, client.client_id, "drwho", "user/Patient.rs offline_access")
    online = full_flow(world, client.client_id, "drwho", "user/Patient.rs online_access")
    none = full_flow(world, client.client_id, "drwho", "user/Patient.rs")
    assert "refresh_token" not in none
    now = time.time()
    off = refresh.find(world.store, offline["refresh_token"])
    on = refresh.find(world.store, online["refresh_token"])
    assert off["offline"] and abs(off["expires_at"] - (now + 10 * 24 * 3600)) < 60
    assert not on["offline"] and on["expires_at"] <= now + 3600 + 1
    # an online token never outlives the session, also after rotation
    rotated = _refresh(world, client.client_id, online["refresh_token"]).get_json()
    assert refresh.find(world.store, rotated["refresh_token"])["expires_at"] <= on["expires_at"]


def test_online_refresh_ends_with_the_login_session(world):
    client, _ = world.app_client()
    browser = world.browser()
    online = full_flow(world, client.client_id, "drwho", "user/Patient.rs online_access", http=browser)
    offline = full_flow(world, client.client_id, "drwho", "user/Patient.rs offline_access", http=browser)
    page = browser.get("/auth/logout").get_data(as_text=True)
    assert browser.post("/auth/logout", data={"csrf": csrf(page)}).status_code == 200
    _error(_refresh(world, client.client_id, online["refresh_token"]), 400, "invalid_grant")
    assert _refresh(world, client.client_id, offline["refresh_token"]).status_code == 200


def test_refresh_keeps_launch_context(world):
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{asha}")
    client, _ = world.app_client()
    body = full_flow(world, client.client_id, "asha", "launch/patient patient/*.rs openid fhirUser offline_access")
    again = _refresh(world, client.client_id, body["refresh_token"]).get_json()
    assert again["patient"] == asha and again["need_patient_banner"] is True and again["id_token"]
    claims = tokens.verify(SigningKeys(world.store), world.store, again["access_token"], BASE, BASE)
    assert claims["patient"] == asha and claims["grant"] == tokens.verify(
        SigningKeys(world.store), world.store, body["access_token"], BASE, BASE)["grant"]
