"""Each process keeps a snapshot of the published signing keys (issue 16: reading and decoding the
key records on every request was the largest auth cost). What stays exact: a token signed with a key
this process has not seen is checked against the keys read again at once; a key past its retirement
time is refused from then on; a revocation is seen at once by every process. What is bounded: a key
retired or removed by another process is seen within keys.PUBLISHED_TTL_S."""
from __future__ import annotations

import secrets
import time

import pytest
from joserfc.jwk import RSAKey

from fhirserver.errors import Unauthorized
from fhirserver.smart_auth import keys as keys_mod
from fhirserver.smart_auth import tokens
from fhirserver.smart_auth.keys import ALG, KIND, SigningKeys
from fhirserver.storage import open_store
from tests.conftest import make_settings
from tests.smart_auth import test_tokens

BASE = test_tokens.BASE
store = test_tokens.store       # the same fixture: a fresh store of each backend


def issue(keys):
    return tokens.issue(keys, BASE, BASE, "svc", "svc", "system/*.rs")


def new_key_record(store, retires=None) -> str:
    """A key written as another worker's rotate() would, behind this process's back."""
    kid = secrets.token_hex(8)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": ALG})
    store.put_record(KIND, kid, {"jwk": key.as_dict(private=True), "created": time.time() + 1, "retires": retires})
    return kid


def test_a_key_made_elsewhere_is_read_when_a_token_names_it(store):
    keys = SigningKeys(store)
    old, _ = issue(keys)
    tokens.verify(keys, store, old, BASE, BASE)        # this process's snapshot: the first key only
    kid = new_key_record(store)
    before = keys.verifying()[0]
    assert kid not in before
    token, _ = issue(SigningKeys(store))               # signed with the newest key, the one made elsewhere
    assert tokens.verify(keys, store, token, BASE, BASE)["sub"] == "svc"
    assert kid in keys.verifying()[0]


def test_a_key_past_its_retirement_time_is_refused_from_the_snapshot(store):
    keys = SigningKeys(store)
    token, _ = issue(keys)
    tokens.verify(keys, store, token, BASE, BASE)
    kid = keys.active().kid
    snapshot = keys_mod._published[store]
    snapshot.retires[kid] = time.time() - 1            # the snapshot knows its retirement time: exact
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, token, BASE, BASE)


def test_a_key_retired_elsewhere_stops_validating_at_the_next_reload(store, monkeypatch):
    keys = SigningKeys(store)
    token, _ = issue(keys)
    tokens.verify(keys, store, token, BASE, BASE)      # the snapshot holds the key, not yet retired
    kid = keys.active().kid
    record = store.get_record(KIND, kid)
    record["retires"] = time.time() - 1                 # another worker retired it
    store.put_record(KIND, kid, record, expires_at=record["retires"])
    monkeypatch.setattr(keys_mod, "PUBLISHED_TTL_S", 0.0)     # the snapshot is now older than the bound
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, token, BASE, BASE)


def test_rotation_in_this_process_is_seen_at_once(store):
    keys = SigningKeys(store, retire_after_s=-1)
    old, _ = issue(keys)
    tokens.verify(keys, store, old, BASE, BASE)
    keys.rotate()                                      # the old key retires now
    with pytest.raises(Unauthorized):
        tokens.verify(keys, store, old, BASE, BASE)
    new, _ = issue(keys)
    assert tokens.verify(keys, store, new, BASE, BASE)


def test_two_processes_on_one_store_see_a_new_key_and_a_revocation_at_once(tmp_path):
    settings = make_settings(tmp_path, "sqlite")
    first, second = open_store(settings), open_store(settings)     # two workers' connections to one file
    try:
        keys1, keys2 = SigningKeys(first), SigningKeys(second)
        token, claims = issue(keys1)
        assert tokens.verify(keys2, second, token, BASE, BASE)
        SigningKeys(first, retire_after_s=3600).rotate()            # made by the first worker
        newer, newer_claims = issue(keys1)
        assert tokens.verify(keys2, second, newer, BASE, BASE)     # unknown kid: the second reads the keys again
        tokens.revoke(first, newer_claims)
        with pytest.raises(Unauthorized, match="revoked"):
            tokens.verify(keys2, second, newer, BASE, BASE)        # no memory of the earlier success
        tokens.revoke_grant(first, "g-1", 3600)
        granted, _ = tokens.issue(keys1, BASE, BASE, "u", "app", "patient/*.rs", grant="g-1")
        with pytest.raises(Unauthorized, match="revoked"):
            tokens.verify(keys2, second, granted, BASE, BASE)
        assert tokens.verify(keys2, second, token, BASE, BASE)["jti"] == claims["jti"]
    finally:
        first.close()
        second.close()


def test_a_token_with_an_unreadable_header_is_refused(store):
    keys = SigningKeys(store)
    token, _ = issue(keys)
    for bad in ("%%%." + token.split(".", 1)[1], "W10." + token.split(".", 1)[1], "", "a.b"):
        with pytest.raises(Unauthorized):
            tokens.verify(keys, store, bad, BASE, BASE)
