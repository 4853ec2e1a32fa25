"""Signed access tokens: verification, forgery, expiry, audience, revocation, key rotation; the keys
and revocations live in the store, so each test runs on every store (the `backend` fixture)."""
from __future__ import annotations

import pytest

from fhirserver.errors import Unauthorized
from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.keys import SigningKeys
from fhirserver.storage import open_store
from tests.conftest import make_settings

BASE = "http://fhir.test/fhir"


@pytest.fixture
def store(settings):
    s = open_store(settings)
    yield s
    s.close()


def another_store(tmp_path, backend: str, name: str):
    """A second server's store, of the same kind."""
    (tmp_path / name).mkdir()
    return open_store(make_settings(tmp_path / name, backend))


def issue(keys, **kw):
    return tokens.issue(keys, BASE, BASE, "user-1", "app-1", "patient/*.rs", patient="asha", **kw)


def test_round_trip_and_context(store):
    keys = SigningKeys(store)
    token, _ = issue(keys)
    claims = tokens.verify(keys, store, token, BASE, BASE)
    assert claims["patient"] == "asha" and claims["scope"] == "patient/*.rs" and claims["exp"] - claims["iat"] <= 3600


def test_refusals(store, tmp_path, backend):
    keys = SigningKeys(store)
    token, claims = issue(keys)
    head, body, sig = token.split(".")
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, f"{head}.{body}.{sig[::-1]}", BASE, BASE)          # forged signature
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, "not-a-token", BASE, BASE)
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, token, BASE, "http://other.example/fhir")          # another audience
    other = SigningKeys(another_store(tmp_path, backend, "other"))
    foreign, _ = issue(other)
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, foreign, BASE, BASE)                              # another server's key
    expired, _ = issue(keys, lifetime_s=-10)
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, expired, BASE, BASE)
    tokens.revoke(store, claims)
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.verify(keys, store, token, BASE, BASE)


def test_rotation_keeps_old_tokens_valid_until_retired(store, tmp_path, backend):
    keys = SigningKeys(store, retire_after_s=3600)
    old, _ = issue(keys)
    keys.rotate()
    new, _ = issue(keys)
    assert len(keys.jwks()["keys"]) == 2 and all("d" not in k for k in keys.jwks()["keys"])   # public parts only
    assert tokens.verify(keys, store, old, BASE, BASE) and tokens.verify(keys, store, new, BASE, BASE)
    other = another_store(tmp_path, backend, "r")
    quick = SigningKeys(other, retire_after_s=-1)      # retired at once: its tokens stop working
    first, _ = issue(quick)
    quick.rotate()
    assert len(quick.jwks()["keys"]) == 1
    with pytest.raises(Unauthorized):
        tokens.verify(quick, other, first, BASE, BASE)
