"""RFC 6750 section 3: a request without a token, or whose token does not enable the access, gets a
WWW-Authenticate challenge: 401 `Bearer realm` without a token, error="invalid_token" for a bad one,
403 error="insufficient_scope" (3.1) for a valid token that lacks the rights; on the FHIR API,
/auth/launch and the admin API.

Found: every 403 (FHIR API, admin API, /auth/launch) came without WWW-Authenticate, the admin API's
401 for an invalid token too, and /auth/launch's challenge had no realm.
"""
from __future__ import annotations

import pytest

from tests.smart_auth._tokens import BASE, auth, make_app, mint

OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
               "subject": {"reference": "Patient/p1"}}


@pytest.fixture
def app(tmp_path, backend):
    return make_app(tmp_path, backend)


def _challenge(response, status: int, error: str | None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    expected = f'Bearer realm="{BASE}"' + (f', error="{error}"' if error else "")
    assert response.headers.get("WWW-Authenticate") == expected


def test_a_fhir_request_the_token_does_not_enable_is_403_insufficient_scope(app):
    http = app.test_client()
    reader = mint(app, "patient/Observation.rs", patient="p1")
    _challenge(http.get("/fhir/Practitioner", headers=auth(reader)), 403, "insufficient_scope")
    r = http.post("/fhir/Observation", json=OBSERVATION, headers=auth(reader, **{"Content-Type": "application/fhir+json"}))
    _challenge(r, 403, "insufficient_scope")
    assert r.get_json()["resourceType"] == "OperationOutcome"
    _challenge(http.get("/fhir/Observation"), 401, None)
    _challenge(http.get("/fhir/Observation", headers=auth("not-a-token")), 401, "invalid_token")
    assert "WWW-Authenticate" not in http.get("/fhir/Observation", headers=auth(reader)).headers


def test_the_admin_api_challenges_missing_invalid_and_insufficient_tokens(app):
    http = app.test_client()
    _challenge(http.get("/auth/admin/users"), 401, None)
    _challenge(http.get("/auth/admin/users", headers=auth("not-a-token")), 401, "invalid_token")
    _challenge(http.get("/auth/admin/users", headers=auth(mint(app, "openid"))), 403, "insufficient_scope")


def test_the_launch_endpoint_challenges_missing_invalid_and_insufficient_tokens(app):
    http = app.test_client()
    _challenge(http.post("/auth/launch", json={"patient": "p1"}), 401, None)
    _challenge(http.post("/auth/launch", json={"patient": "p1"}, headers=auth("x")), 401, "invalid_token")
    patient = mint(app, "launch/patient patient/*.rs", patient="p1")     # no practitioner role
    _challenge(http.post("/auth/launch", json={"patient": "p1"}, headers=auth(patient)), 403, "insufficient_scope")
