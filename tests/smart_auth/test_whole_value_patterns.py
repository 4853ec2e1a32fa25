"""Identifiers checked by pattern are checked whole: `$` also matches before a final newline.

Found: a request id ending in "\\n" passed sessions._REQUEST_ID and went into a Location header:
werkzeug refused the header, a 500 from GET or POST /auth/login (signed in) and POST /auth/logout;
a code_challenge ending in "\\n" was taken (RFC 7636 4.2: 43-128 unreserved characters).
"""
from __future__ import annotations

import re

import pytest

from tests.smart_auth.test_oauth_helpers import (
    PASSWORD,
    authorize_params,
    begin,
    csrf,
    login,
    make_world,
    pkce,
    query,
    start,
)

BAD_ID = "A" * 30 + "\n"


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    return make_world(tmp_path, monkeypatch, backend)


def test_a_request_id_with_a_newline_is_unknown_not_a_server_error(world):
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", PASSWORD, "patient", fhir_user=f"Patient/{asha}")
    app, _ = world.app_client()
    http, request_id = begin(world, app.client_id, "launch/patient patient/*.rs")
    assert login(http, request_id, "asha").status_code == 303
    r = http.get("/auth/login", query_string={"request": BAD_ID})
    assert r.status_code == 200 and "Location" not in r.headers
    r = http.post("/auth/login", data={"csrf": csrf(http.get("/auth/login").get_data(as_text=True)),
                                       "request": BAD_ID, "username": "asha", "password": PASSWORD})
    assert r.status_code == 200 and "Location" not in r.headers
    token = re.search(r'name="csrf" value="([^"]+)"', http.get("/auth/logout").get_data(as_text=True)).group(1)
    r = http.post("/auth/logout", data={"csrf": token, "request": BAD_ID})
    assert r.status_code == 200 and "Location" not in r.headers


def test_a_code_challenge_with_a_newline_is_refused(world):
    app, _ = world.app_client()
    _verifier, challenge = pkce()
    r = start(world.browser(), authorize_params(app.client_id, challenge + "\n", "launch/patient patient/*.rs"))
    assert r.status_code == 302 and query(r.headers["Location"])["error"] == "invalid_request"
