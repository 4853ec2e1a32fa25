"""Which registered key verifies a client assertion (SMART App Launch 2.2, client-confidential-
asymmetric, "Signature verification" step 3): the single key whose kid is the header's and whose
kty fits the alg (RSA for RS384, EC for ES384); none, or more than one, fails.

Found: the first key with the kid was taken whatever its kty (a set holding an RSA and an EC key
under one kid refused the EC-signed assertion), two keys with one kid were not refused, and one
malformed or unsupported key anywhere in a fetched set refused every assertion of the client.
"""
from __future__ import annotations

import pytest
from joserfc.jwk import ECKey, RSAKey

from fhirserver.smart_auth import client_assertion
from tests.smart_auth.test_oauth_backend import JWKS_URL, _assertion, _jwks, _token
from tests.smart_auth.test_oauth_helpers import make_world


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    client_assertion.clear_cache()
    return make_world(tmp_path, monkeypatch, backend)


def _client(world, monkeypatch, jwks: dict):
    monkeypatch.setattr(client_assertion, "fetch_jwks", lambda url: jwks)
    client, _ = world.clients.add("backend", "confidential-asymmetric", scopes=["system/Patient.rs"],
                                  jwks_uri=JWKS_URL)
    return client


def test_the_key_is_chosen_by_kid_and_by_the_kty_of_the_alg(world, monkeypatch):
    rsa = RSAKey.generate_key(2048, parameters={"kid": "k"})
    ec = ECKey.generate_key("P-384", parameters={"kid": "k"})
    for keys in ((rsa, ec), (ec, rsa)):
        client_assertion.clear_cache()
        client = _client(world, monkeypatch, _jwks(*keys))
        assert _token(world, _assertion(client.client_id, ec, alg="ES384")).status_code == 200
        assert _token(world, _assertion(client.client_id, rsa, alg="RS384")).status_code == 200


def test_two_keys_of_one_kid_and_kty_refuse_the_assertion(world, monkeypatch):
    first = RSAKey.generate_key(2048, parameters={"kid": "k"})
    second = RSAKey.generate_key(2048, parameters={"kid": "k"})
    client = _client(world, monkeypatch, _jwks(first, second))
    for key in (first, second):
        r = _token(world, _assertion(client.client_id, key))
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_other_keys_of_the_set_do_not_matter(world, monkeypatch):
    rsa = RSAKey.generate_key(2048, parameters={"kid": "mine"})
    jwks = _jwks(rsa)
    jwks["keys"] += [{"kty": "RSA", "kid": "broken", "n": "!!"}, {"kty": "OKP", "kid": "x", "crv": "Ed25519"},
                     "not a key", {"kid": "no-kty"}]
    client = _client(world, monkeypatch, jwks)
    assert _token(world, _assertion(client.client_id, rsa)).status_code == 200
