"""SMART Backend Services: client_credentials with a private_key_jwt assertion (RFC 7523), RS384
and ES384 keys inline or at a JWKS URL, and every way an assertion must be refused."""
from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from fhirserver.smart_auth import client_assertion, tokens
from fhirserver.smart_auth.keys import SigningKeys
from tests.smart_auth.test_oauth_helpers import BASE, TOKEN_URL, make_world

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWKS_URL = "https://backend.example/.well-known/jwks.json"


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    client_assertion.clear_cache()
    return make_world(tmp_path, monkeypatch, backend)


@pytest.fixture
def rsa():
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})     # no "alg": the server's list decides


@pytest.fixture
def ec():
    return ECKey.generate_key("P-384", parameters={"kid": "ec-1"})


def _jwks(*keys):
    return {"keys": [k.as_dict(private=False) for k in keys]}


def _backend(world, *keys, jwks_uri=None, scopes=("system/Patient.rs", "system/Observation.rs")):
    client, _ = world.clients.add("Lab backend", "confidential-asymmetric", scopes=list(scopes),
                                  jwks=None if jwks_uri else _jwks(*keys), jwks_uri=jwks_uri)
    return client


def _assertion(client_id, key, alg="RS384", header=None, **claims):
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 240, "jti": uuid.uuid4().hex,
            **claims}
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    return jwt.encode(head, body, key, algorithms=[alg])


def _token(world, assertion, scope="system/Patient.rs", assertion_type=ASSERTION_TYPE, **extra):
    return world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": scope,
                                                "client_assertion_type": assertion_type,
                                                "client_assertion": assertion, **extra})


def _refused(r, error="invalid_client", status=401):
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.get_json()["error"] == error
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_backend_services_inline_jwks(world, rsa, ec, alg):
    key = rsa if alg == "RS384" else ec
    client = _backend(world, rsa, ec)
    r = _token(world, _assertion(client.client_id, key, alg),
               scope="system/Patient.rs system/Observation.rs system/Condition.rs patient/*.rs")
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 300 and "refresh_token" not in body
    assert body["scope"] == "system/Patient.rs system/Observation.rs"
    claims = tokens.verify(SigningKeys(world.store), world.store, body["access_token"], BASE, BASE)
    assert claims["sub"] == claims["client_id"] == client.client_id and claims["exp"] - claims["iat"] <= 300


def test_backend_services_jwks_url(world, rsa, ec, monkeypatch):
    fetched = []

    def fake_fetch(url):
        fetched.append(url)
        return _jwks(rsa, ec)
    monkeypatch.setattr(client_assertion, "fetch_jwks", fake_fetch)
    client = _backend(world, jwks_uri=JWKS_URL)
    assert _token(world, _assertion(client.client_id, ec, "ES384")).status_code == 200
    assert _token(world, _assertion(client.client_id, rsa, header={"jku": JWKS_URL})).status_code == 200
    # a jku other than the registered URL is refused and never fetched
    _refused(_token(world, _assertion(client.client_id, rsa, header={"jku": "https://evil.example/jwks"})))
    assert set(fetched) == {JWKS_URL} and len(fetched) == 1          # cached


def test_jwks_url_unreachable(world, rsa, monkeypatch):
    def failing(url):
        raise ValueError("HTTP 500")
    monkeypatch.setattr(client_assertion, "fetch_jwks", failing)
    client = _backend(world, jwks_uri=JWKS_URL)
    _refused(_token(world, _assertion(client.client_id, rsa)))


def test_jku_on_inline_jwks_client_refused(world, rsa):
    client = _backend(world, rsa)
    _refused(_token(world, _assertion(client.client_id, rsa, header={"jku": JWKS_URL})))


def test_assertion_refusals(world, rsa, ec):
    client = _backend(world, rsa, ec)
    cid = client.client_id
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})       # same kid, not the registered key
    now = int(time.time())
    cases = {
        "forged": _assertion(cid, other),
        "unknown kid": _assertion(cid, RSAKey.generate_key(2048, parameters={"kid": "nope"})),
        "expired": _assertion(cid, rsa, exp=now - 10),
        "no exp": _assertion(cid, rsa, exp=None),
        "exp > 5 min": _assertion(cid, rsa, exp=now + 400),
        "wrong aud": _assertion(cid, rsa, aud=BASE),
        "no jti": _assertion(cid, rsa, jti=None),
        "iss != sub": _assertion(cid, rsa, sub="someone-else"),
        "unknown client": _assertion("nobody", rsa, iss="nobody", sub="nobody"),
        "RS256": _assertion(cid, rsa, alg="RS256"),
        "HS256": _assertion(cid, OctKey.import_key(b"k" * 32, parameters={"kid": "rsa-1"}), alg="HS256"),
        "garbage": "not.a.jwt",
    }
    for name, assertion in cases.items():
        r = _token(world, assertion)
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client", name


def test_alg_none_refused(world, rsa):
    client = _backend(world, rsa)

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    claims = {"iss": client.client_id, "sub": client.client_id, "aud": TOKEN_URL, "exp": int(time.time()) + 60,
              "jti": "x1"}
    _refused(_token(world, f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(claims)}."))


def test_replayed_jti_refused(world, rsa):
    client = _backend(world, rsa)
    assertion = _assertion(client.client_id, rsa)
    assert _token(world, assertion).status_code == 200
    _refused(_token(world, assertion))
    _refused(_token(world, _assertion(client.client_id, rsa, jti=json.loads(
        base64.urlsafe_b64decode(assertion.split(".")[1] + "==")).get("jti"))))


def test_bad_assertion_type_and_scope(world, rsa):
    client = _backend(world, rsa)
    _refused(_token(world, _assertion(client.client_id, rsa), assertion_type="urn:example:other"), status=400)
    _refused(_token(world, _assertion(client.client_id, rsa), scope="patient/*.rs system/Encounter.rs"),
             "invalid_scope", 400)
    _refused(_token(world, _assertion(client.client_id, rsa), scope="system/Patient.xyz"), "invalid_scope", 400)
    _refused(_token(world, _assertion(client.client_id, rsa), client_id="another"))


def test_disabled_or_symmetric_client_cannot_use_assertions(world, rsa):
    client = _backend(world, rsa)
    world.clients.disable(client.client_id)
    _refused(_token(world, _assertion(client.client_id, rsa)))
    symmetric, _secret = world.app_client(type="confidential-symmetric", scopes=["system/*.rs"])
    _refused(_token(world, _assertion(symmetric.client_id, rsa)))


def test_symmetric_client_credentials(world):
    client, secret = world.app_client(type="confidential-symmetric", scopes=["system/Patient.rs"])
    r = world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs",
                                             "client_id": client.client_id, "client_secret": secret})
    assert r.status_code == 200 and r.get_json()["expires_in"] <= 300
