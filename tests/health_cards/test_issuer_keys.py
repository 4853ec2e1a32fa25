"""The issuer's keys: created on first use, published without private members, kid = RFC 7638
thumbprint, rotation keeps the old public keys."""
from __future__ import annotations

import base64
import hashlib
import json

from fhirserver.health_cards import issuer_keys
from fhirserver.health_cards.issuer_keys import IssuerKeys
from tests.health_cards._cards import FakeStore


def thumbprint(jwk: dict) -> str:
    """RFC 7638 section 3, for an EC key: the required members in lexicographic order, no whitespace."""
    canonical = json.dumps({m: jwk[m] for m in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def test_first_use_creates_one_key_and_keeps_it():
    store = FakeStore()
    keys = IssuerKeys(store)
    assert keys.jwks() == {"keys": []}
    first = keys.active()
    assert keys.active().kid == first.kid and IssuerKeys(store).active().kid == first.kid
    assert [k for k, _ in store.list_records("shc-issuer-key")] == [first.kid]


def test_jwks_is_public_only_and_kid_is_the_thumbprint():
    store = FakeStore()
    keys = IssuerKeys(store)
    active = keys.active()
    [jwk] = keys.jwks()["keys"]
    assert set(jwk) == {"kty", "kid", "use", "alg", "crv", "x", "y"}      # no "d", nothing else
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("EC", "P-256", "sig", "ES256")
    assert jwk["kid"] == thumbprint(jwk) == active.kid
    [(_kid, record)] = store.list_records("shc-issuer-key")
    assert "d" in record["jwk"]                     # the store keeps the private key; the JWKS never


def test_rotation_publishes_old_and_new_and_signs_with_the_new():
    store = FakeStore()
    keys = IssuerKeys(store)
    old = keys.active()
    new = keys.rotate()
    assert new.kid != old.kid and keys.active().kid == new.kid
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old.kid, new.kid}
    assert all("d" not in k for k in keys.jwks()["keys"])


def test_imported_keys_are_cached_by_kid():
    store = FakeStore()
    kid = IssuerKeys(store).active().kid
    issuer_keys._imported.clear()
    assert IssuerKeys(store).active() is IssuerKeys(store).active()
    assert list(issuer_keys._imported) == [kid]
