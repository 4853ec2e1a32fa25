"""Hostile JOSE input answers as any other bad credential, never 500 (RFC 6750 3.1 invalid_token,
RFC 6749 5.2 invalid_client, RFC 7662 2.2 active false, RFC 7009 2.2 200).

A compact JWS whose header or payload is deeply nested JSON ("[[[[...") was read before verification
with json.loads, which raised RecursionError: a 500 on the FHIR API, /auth/introspect, /auth/revoke,
/auth/launch, the admin API and, from a client assertion's payload, /auth/token (and its audit
record). A JWKS URL answering such a body did the same. jose_peek.segment reads them now.
"""
from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.jwk import RSAKey

from fhirserver.smart_auth import client_assertion, jose_peek
from tests.smart_auth.test_oauth_helpers import TOKEN_URL, basic, make_world

ASSERTION_TYPE = client_assertion.ASSERTION_TYPE
JWKS_URL = "https://backend.example/jwks.json"
DEEP = b"[" * 12000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


DEEP_HEADER = f"{_b64(DEEP)}.{_b64(b'{}')}.c2ln"
DEEP_PAYLOAD = f"{_b64(json.dumps({'alg': 'RS384', 'kid': 'k1'}).encode())}.{_b64(DEEP)}.c2ln"


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    client_assertion.clear_cache()
    return make_world(tmp_path, monkeypatch, backend, auth="on")


@pytest.mark.parametrize("token", [DEEP_HEADER, DEEP_PAYLOAD], ids=["header", "payload"])
def test_a_deeply_nested_bearer_token_is_an_invalid_token(world, token):
    bearer = {"Authorization": f"Bearer {token}"}
    r = world.http.get("/fhir/Patient", headers=bearer)
    assert r.status_code == 401, r.get_data(as_text=True)
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert world.http.post("/auth/launch", headers=bearer, json={"patient": "x"}).status_code == 401
    assert world.http.get("/auth/admin/users", headers=bearer).status_code == 401
    client, secret = world.app_client(type="confidential-symmetric")
    r = world.http.post("/auth/introspect", data={"token": token}, headers=basic(client.client_id, secret))
    assert r.status_code == 200 and r.get_json() == {"active": False}
    r = world.http.post("/auth/introspect", data={"token": "x"}, headers=bearer)     # as the caller's token
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"
    r = world.http.post("/auth/revoke", data={"token": token}, headers=basic(client.client_id, secret))
    assert r.status_code == 200


@pytest.mark.parametrize("assertion", [DEEP_HEADER, DEEP_PAYLOAD], ids=["header", "payload"])
def test_a_deeply_nested_client_assertion_is_an_invalid_client(world, assertion):
    r = world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs",
                                             "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
    assert r.status_code == 401, r.get_data(as_text=True)
    assert r.get_json()["error"] == "invalid_client"


def test_a_jwks_url_answering_deeply_nested_json_is_an_invalid_client(world, monkeypatch):
    class Raw:
        def read(self, n, decode_content=True):
            return DEEP[:n]

    class Response:
        status_code, raw = 200, Raw()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(client_assertion.requests, "get", lambda *a, **kw: Response())
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    client, _ = world.clients.add("backend", "confidential-asymmetric", scopes=["system/*.rs"], jwks_uri=JWKS_URL)
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS384", "kid": "k1"}, {"iss": client.client_id, "sub": client.client_id,
                                                           "aud": TOKEN_URL, "exp": now + 60, "jti": uuid.uuid4().hex},
                           key, algorithms=["RS384"])
    r = world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs",
                                             "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client", r.get_data(as_text=True)


def test_segment_reads_only_bounded_json_objects():
    duplicate = _b64(b'{"a":1,"a":2}')
    header = _b64(b'{"alg":"RS256","kid":"a"}')
    assert jose_peek.segment(f"{header}.e30.x", jose_peek.HEADER) == {"alg": "RS256", "kid": "a"}
    assert jose_peek.segment(f"{header}.e30.x", jose_peek.PAYLOAD) == {}
    for bad in (DEEP_HEADER, f"{_b64(b'[1]')}.e30.x", "a.b", "a.b.c.d", f"{header}.e30", "é.e30.x", None, 7,
                f"{duplicate}.e30.x"):
        assert jose_peek.segment(bad, jose_peek.HEADER) is None, bad


@pytest.mark.parametrize("exp", ["NaN", "Infinity", "-Infinity"])
def test_an_assertion_whose_exp_is_not_a_finite_number_is_refused(world, exp):
    """Found: Python's JSON reads NaN, and an exp of NaN passed both `exp <= now` and `exp > now + 300`:
    a correctly signed assertion that never expired (RFC 7523 3 item 4; SMART: at most 5 minutes)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    client, _ = world.clients.add("backend", "confidential-asymmetric", scopes=["system/*.rs"],
                                  jwks={"keys": [key.as_dict(private=False)]})
    header = _b64(json.dumps({"alg": "RS384", "kid": "k1", "typ": "JWT"}).encode())
    claims = (f'{{"iss":"{client.client_id}","sub":"{client.client_id}","aud":"{TOKEN_URL}",'
              f'"exp":{exp},"jti":"{uuid.uuid4().hex}"}}')
    signing_input = f"{header}.{_b64(claims.encode())}"
    signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    r = world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs",
                                             "client_assertion_type": ASSERTION_TYPE,
                                             "client_assertion": f"{signing_input}.{_b64(signature)}"})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client", r.get_data(as_text=True)
