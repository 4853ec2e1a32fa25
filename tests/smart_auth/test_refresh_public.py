"""The refresh_token grant as SMART App Launch 2.2 "Refresh access token" states it: a public app
sends only grant_type, refresh_token and scope (the SMART JS library's client.refresh() sends no
client_id), and a narrower scope is judged by meaning, not by string. On every store."""
from __future__ import annotations

import base64

import pytest

from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.keys import SigningKeys
from fhirserver.smart_auth.scopes import within
from tests.smart_auth.test_oauth_helpers import BASE, PASSWORD, full_flow, make_world

SCOPES = ["openid", "fhirUser", "launch/patient", "offline_access", "online_access", "patient/*.cruds",
          "patient/*.rs", "patient/*.read", "patient/Observation.rs",
          "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
          "user/*.cruds", "user/*.rs"]


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend=backend, refresh_token_lifetime=10 * 24 * 3600)
    w.asha = w.patient("Sharma", "Asha")
    w.users.add("asha", PASSWORD, "patient", fhir_user=f"Patient/{w.asha}")
    w.users.add("drwho", PASSWORD, "practitioner", fhir_user="Practitioner/9")
    return w


def _refresh(world, token, headers=None, **extra):
    """A refresh request as the SMART JS library sends it: no client_id unless given."""
    return world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token, **extra},
                           headers=headers or {})


def _error(r, status, error):
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.get_json()["error"] == error


def _claims(world, access):
    return tokens.verify(SigningKeys(world.store), world.store, access, BASE, BASE)


def test_public_client_refreshes_without_client_id(world):
    client, _ = world.app_client(scopes=SCOPES)
    body = full_flow(world, client.client_id, "asha", "launch/patient patient/*.rs offline_access")
    r = _refresh(world, body["refresh_token"])
    assert r.status_code == 200, r.get_data(as_text=True)
    second = r.get_json()
    assert second["patient"] == world.asha and second["refresh_token"] != body["refresh_token"]
    claims = _claims(world, second["access_token"])
    assert claims["client_id"] == client.client_id and claims["patient"] == world.asha
    # rotation still holds: the old token is spent, and presenting it again revokes the grant
    _error(_refresh(world, body["refresh_token"]), 400, "invalid_grant")
    _error(_refresh(world, second["refresh_token"]), 400, "invalid_grant")


def test_unknown_refresh_token_without_client_id_is_invalid_grant(world):
    _error(_refresh(world, "not-a-refresh-token"), 400, "invalid_grant")
    _error(_refresh(world, ""), 400, "invalid_grant")


def test_given_client_id_must_match_the_token(world):
    client, _ = world.app_client(scopes=SCOPES)
    other, _ = world.app_client(scopes=SCOPES)
    body = full_flow(world, client.client_id, "asha", "launch/patient patient/*.rs offline_access")
    _error(_refresh(world, body["refresh_token"], client_id=other.client_id), 400, "invalid_grant")
    _error(_refresh(world, body["refresh_token"], client_id="nobody"), 401, "invalid_client")
    assert _refresh(world, body["refresh_token"], client_id=client.client_id).status_code == 200


def test_confidential_client_must_still_authenticate(world):
    client, secret = world.app_client(type="confidential-symmetric", scopes=SCOPES)
    code_body = full_flow_confidential(world, client, secret)
    r = _refresh(world, code_body["refresh_token"])
    _error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    r = _refresh(world, code_body["refresh_token"], headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.get_data(as_text=True)


def full_flow_confidential(world, client, secret):
    from tests.smart_auth.test_oauth_helpers import get_code, redeem
    code, verifier, _q = get_code(world, client.client_id, "drwho", "user/*.rs offline_access")
    r = redeem(world, client.client_id, code, verifier, client_secret=secret)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


LAB = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.mark.parametrize("granted, asked", [
    ("patient/*.rs", "patient/Patient.rs"),
    ("patient/*.rs", "patient/Patient.read"),
    ("patient/*.read", "patient/Observation.rs"),
    ("patient/*.read", "patient/Observation.r"),
    ("patient/Observation.rs", "patient/Observation.r"),
    ("patient/Observation.rs", "patient/Observation.read"),
    ("patient/*.cruds", "patient/Observation.cu"),
    ("patient/Observation.rs", LAB),
    (LAB, LAB + "&code=http://loinc.org|2345-7"),
])
def test_refresh_with_a_narrower_scope_by_meaning(world, granted, asked):
    client, _ = world.app_client(scopes=SCOPES)
    body = full_flow(world, client.client_id, "asha", f"launch/patient {granted} offline_access")
    assert granted in body["scope"].split()
    r = _refresh(world, body["refresh_token"], scope=asked)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["scope"] == asked and _claims(world, r.get_json()["access_token"])["scope"] == asked


@pytest.mark.parametrize("granted, asked", [
    ("patient/Observation.rs", "patient/*.rs"),            # a wider type
    ("patient/Observation.r", "patient/Observation.rs"),   # another letter
    ("patient/*.read", "patient/Observation.cruds"),
    ("patient/*.rs", "user/Patient.rs"),                   # another context
    (LAB, "patient/Observation.rs"),                       # drops the granular query
    ("patient/*.rs", "offline_access"),                    # not granted as such
    ("patient/*.rs", "patient/Observation.xyz"),           # malformed
])
def test_refresh_with_a_scope_not_covered_is_refused(world, granted, asked):
    client, _ = world.app_client(scopes=SCOPES + ["patient/Observation.r"])
    body = full_flow(world, client.client_id, "asha", f"launch/patient {granted} online_access")
    _error(_refresh(world, body["refresh_token"], scope=asked), 400, "invalid_scope")
    assert _refresh(world, body["refresh_token"]).status_code == 200       # not used up


def test_within_unit():
    assert within(["patient/Patient.rs", "openid"], ["openid", "patient/*.rs"])
    assert not within(["openid"], ["patient/*.rs"])
    assert not within(["system/Patient.rs"], ["patient/*.rs"])
    assert within([], ["patient/*.rs"])
