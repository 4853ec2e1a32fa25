"""The admin API manages accounts and clients like the CLI, for administrators only."""
from __future__ import annotations

import pytest

from fhirserver import create_app
from fhirserver.smart_auth import passwords, tokens
from fhirserver.smart_auth.keys import SigningKeys
from tests.conftest import make_settings

BASE = "http://fhir.test/fhir"


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    return create_app(make_settings(tmp_path, auth="on"))


def bearer(app, role, scope="user/*.rs"):
    token, _ = tokens.issue(SigningKeys(app.config["MEDPORT"].store), BASE, BASE, "someone", "app", scope, role=role)
    return {"Authorization": f"Bearer {token}"}


def test_administrators_manage_users_and_clients(app):
    c, admin = app.test_client(), bearer(app, "admin")
    r = c.post("/auth/admin/users", json={"username": "meera", "password": "long enough pw", "role": "practitioner",
                                           "fhir_user": "Practitioner/9"}, headers=admin)
    assert r.status_code == 201 and "password_hash" not in r.json
    assert [u["username"] for u in c.get("/auth/admin/users", headers=admin).json] == ["meera"]
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
    assert c.post("/auth/admin/users", json={"username": "x", "password": "long enough pw", "role": "admin"},
                  headers=bearer(app, "patient")).status_code == 403
