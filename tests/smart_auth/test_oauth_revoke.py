"""Introspection (RFC 7662) and revocation (RFC 7009): revoked tokens stop working at once."""
from __future__ import annotations

import pytest

from fhirserver.errors import Unauthorized
from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.keys import SigningKeys
from tests.smart_auth.test_oauth_helpers import BASE, basic, full_flow, make_world


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend)
    w.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    return w


def _verify(world, token):
    return tokens.verify(SigningKeys(world.store), world.store, token, BASE, BASE)


def _refresh(world, client_id, token):
    return world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                "client_id": client_id})


def test_introspection_active_and_inactive(world):
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{asha}")
    app, _ = world.app_client()
    rs, secret = world.app_client(type="confidential-symmetric")
    body = full_flow(world, app.client_id, "asha", "launch/patient patient/*.rs offline_access")
    auth = basic(rs.client_id, secret)
    r = world.http.post("/auth/introspect", data={"token": body["access_token"]}, headers=auth)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    info = r.get_json()
    assert info["active"] is True and info["client_id"] == app.client_id and info["patient"] == asha
    assert info["scope"] == body["scope"] and info["sub"] == "asha" and info["iss"] == BASE
    assert info["fhirUser"] == f"{BASE}/Patient/{asha}" and info["exp"] > info["iat"]
    info = world.http.post("/auth/introspect", data={"token": body["refresh_token"]}, headers=auth).get_json()
    assert info["active"] is True and info["token_type"] == "refresh_token"
    for junk in ("junk", body["access_token"][:-4] + "AAAA"):
        assert world.http.post("/auth/introspect", data={"token": junk}, headers=auth).get_json() == {"active": False}
    # a bearer token authenticates the caller too (RFC 7662 2.1)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert world.http.post("/auth/introspect", data={"token": body["access_token"]}, headers=bearer).get_json()[
        "active"] is True
    # public clients and anonymous callers may not introspect
    r = world.http.post("/auth/introspect", data={"token": body["access_token"], "client_id": app.client_id})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"
    r = world.http.post("/auth/introspect", data={"token": body["access_token"]},
                        headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    # once revoked: inactive
    world.http.post("/auth/revoke", data={"token": body["access_token"], "client_id": app.client_id})
    assert world.http.post("/auth/introspect", data={"token": body["access_token"]}, headers=auth).get_json() == {
        "active": False}


def test_revoking_an_access_token(world):
    app, _ = world.app_client()
    body = full_flow(world, app.client_id, "drwho", "user/*.rs offline_access")
    assert _verify(world, body["access_token"])
    r = world.http.post("/auth/revoke", data={"token": body["access_token"], "token_type_hint": "access_token",
                                              "client_id": app.client_id})
    assert r.status_code == 200
    with pytest.raises(Unauthorized, match="revoked"):
        _verify(world, body["access_token"])
    assert _refresh(world, app.client_id, body["refresh_token"]).status_code == 400   # its grant is revoked
    # unrelated grants keep working
    other = full_flow(world, app.client_id, "drwho", "user/*.rs")
    assert _verify(world, other["access_token"])


def test_revoking_a_refresh_token(world):
    app, _ = world.app_client()
    body = full_flow(world, app.client_id, "drwho", "user/*.rs offline_access")
    r = world.http.post("/auth/revoke", data={"token": body["refresh_token"], "token_type_hint": "refresh_token",
                                              "client_id": app.client_id})
    assert r.status_code == 200
    assert _refresh(world, app.client_id, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    with pytest.raises(Unauthorized):
        _verify(world, body["access_token"])          # the grant's access tokens stop at once


def test_revocation_rules(world):
    app, _ = world.app_client()
    other, _ = world.app_client()
    body = full_flow(world, app.client_id, "drwho", "user/*.rs offline_access")
    # unknown tokens: 200 all the same; another client's token: 200 but untouched
    assert world.http.post("/auth/revoke", data={"token": "unknown", "client_id": app.client_id}).status_code == 200
    assert world.http.post("/auth/revoke", data={"token": body["access_token"],
                                                 "client_id": other.client_id}).status_code == 200
    assert _verify(world, body["access_token"])
    # client authentication is required; a missing token is invalid_request
    r = world.http.post("/auth/revoke", data={"token": body["access_token"], "client_id": "nobody"})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"
    r = world.http.post("/auth/revoke", data={"client_id": app.client_id})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_request"
    assert _verify(world, body["access_token"])
