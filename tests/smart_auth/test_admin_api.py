"""The admin API manages accounts and clients like the CLI, for administrators only."""
from __future__ import annotations

import pytest

from fhirserver import create_app
from fhirserver.smart_auth import passwords, tokens
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.keys import SigningKeys
from tests.conftest import make_settings

BASE = "http://fhir.test/fhir"


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    return create_app(make_settings(tmp_path, auth="on"))


def bearer(app, role, scope="medport/admin"):
    store = app.config["MEDPORT"].store
    if Users(store).get(f"the-{role}") is None:
        Users(store).add(f"the-{role}", "long enough pw", role, None if role == "admin" else
                         {"patient": "Patient/1", "practitioner": "Practitioner/1"}[role])
    token, _ = tokens.issue(SigningKeys(store), BASE, BASE, f"the-{role}", "app", scope, role=role)
    return {"Authorization": f"Bearer {token}"}


def test_administrators_manage_users_and_clients(app):
    c, admin = app.test_client(), bearer(app, "admin")
    r = c.post("/auth/admin/users", json={"username": "meera", "password": "long enough pw", "role": "practitioner",
                                           "fhir_user": "Practitioner/9"}, headers=admin)
    assert r.status_code == 201 and "password_hash" not in r.json
    assert [u["username"] for u in c.get("/auth/admin/users", headers=admin).json] == ["meera", "the-admin"]
    r = c.post("/auth/admin/users", json={"username": "meera", "password": "long enough pw", "role": "practitioner",
                                           "fhir_user": "Practitioner/9"}, headers=admin)
    assert r.status_code == 400 and r.json["error"] == "invalid_request"
    r = c.post("/auth/admin/clients", json={"name": "EHR", "type": "confidential-symmetric",
                                             "redirect_uris": ["https://ehr.example/cb"], "scopes": ["system/*.rs"]},
               headers=admin)
    assert r.status_code == 201 and r.json["client_secret"]
    listed = c.get("/auth/admin/clients", headers=admin).json
    assert listed[0]["client_id"] == r.json["client_id"] and "client_secret" not in listed[0]
    assert c.post(f"/auth/admin/clients/{r.json['client_id']}/disable", headers=admin).status_code == 200
    assert c.post("/auth/admin/users/meera/disable", headers=admin).status_code == 200
    assert c.post("/auth/admin/users/nobody/disable", headers=admin).status_code == 404


def test_others_are_refused(app):
    c = app.test_client()
    assert c.get("/auth/admin/users").status_code == 401
    assert c.get("/auth/admin/users", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert c.get("/auth/admin/users", headers=bearer(app, "practitioner")).status_code == 403
    assert c.get("/auth/admin/users", headers=bearer(app, "admin", scope="openid user/*.cruds")).status_code == 403
    admin = bearer(app, "admin")
    assert c.get("/auth/admin/users", headers=admin).status_code == 200
    nested = "[" * 5000 + "]" * 5000          # a live admin (before the disable below), an unreadable body
    r = c.post("/auth/admin/users", data=nested, content_type="application/json", headers=admin)
    assert r.status_code == 400, r.get_data(as_text=True)                  # never a 500
    Users(app.config["MEDPORT"].store).disable("the-admin")
    assert c.get("/auth/admin/users", headers=admin).status_code == 401    # disabled: the token is dead at once
    assert c.post("/auth/admin/users", json={"username": "x", "password": "long enough pw", "role": "admin"},
                  headers=bearer(app, "patient")).status_code == 403


@pytest.mark.parametrize("path, body, member", [
    ("/auth/admin/clients", {"name": "x", "type": "public", "redirect_uris": ["https://a.example/cb"], "scopes": [1]},
     "scopes"),
    ("/auth/admin/clients", {"name": "x", "type": "public", "redirect_uris": "https://a.example/cb"}, "redirect_uris"),
    ("/auth/admin/clients", {"name": ["x"], "type": "public", "redirect_uris": ["https://a.example/cb"]}, "name"),
    ("/auth/admin/clients", {"name": "x", "type": "confidential-asymmetric", "jwks": [1]}, "jwks"),
    ("/auth/admin/users", {"username": "u", "password": ["long enough pw"], "role": "admin"}, "password"),
    ("/auth/admin/users", {"username": 7, "password": "long enough pw", "role": "admin"}, "username"),
    ("/auth/admin/users", {"username": "u", "password": "long enough pw", "role": "patient", "fhir_user": 5},
     "fhir_user"),
])
def test_wrong_member_types_are_400_outcomes_naming_the_member(app, path, body, member):
    c, admin = app.test_client(), bearer(app, "admin")
    before = (c.get("/auth/admin/users", headers=admin).json, c.get("/auth/admin/clients", headers=admin).json)
    r = c.post(path, json=body, headers=admin)
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome", r.data
    assert f"'{member}' must be" in r.json["issue"][0]["diagnostics"]
    assert (c.get("/auth/admin/users", headers=admin).json, c.get("/auth/admin/clients", headers=admin).json) == before


@pytest.mark.parametrize("raw, text", [
    (b'{"username": "u", "username": "admin2", "password": "long enough pw", "role": "admin"}', "Duplicate"),
    (b'{"username": "\\ud800", "password": "long enough pw", "role": "admin"}', "surrogate"),
    (b'{"username": "u", "password": "long enough pw", "role": "admin", "x": 1e999}', "out of range"),
    (b'["not", "an", "object"]', "JSON object"),
    (b'{"username": "u", "password": "long enough pw", "role": "admin", "x": NaN}', "NaN"),
])
def test_hostile_admin_bodies_are_400_outcomes(app, raw, text):
    c, admin = app.test_client(), bearer(app, "admin")
    r = c.post("/auth/admin/users", data=raw, content_type="application/json", headers=admin)
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome", r.data
    assert text in r.json["issue"][0]["diagnostics"]
    assert [u["username"] for u in c.get("/auth/admin/users", headers=admin).json] == ["the-admin"]
