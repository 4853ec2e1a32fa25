"""A client secret check is cheap: the token, introspection and revocation endpoints are open to
anyone, and a confidential client's client_id is no secret (it is in every authorization URL).

Found: client secrets were stored as scrypt hashes (32 MiB, ~0.2 s of CPU each): every request with
a known client_id and any secret made the server pay that, without limit (a handful of requests a
second held both cores). The server makes every secret itself (256 random bits), so its SHA-256 is
as safe to store (OWASP Password Storage Cheat Sheet); secrets stored before still verify.
"""
from __future__ import annotations

import dataclasses
import hashlib

import pytest

from fhirserver.smart_auth import passwords
from fhirserver.smart_auth.clients import KIND
from tests.smart_auth.test_oauth_helpers import basic, make_world


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    return make_world(tmp_path, monkeypatch, backend)


def _client_credentials(world, client_id, secret):
    return world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
                           headers=basic(client_id, secret))


def test_a_client_secret_is_checked_without_a_password_hash(world, monkeypatch):
    client, secret = world.app_client(type="confidential-symmetric", scopes=["system/Patient.rs"])
    assert client.secret_hash.startswith("sha256$") and secret not in client.secret_hash

    def no_scrypt(*args, **kwargs):
        raise AssertionError("scrypt run for a client secret")
    monkeypatch.setattr(hashlib, "scrypt", no_scrypt)
    assert _client_credentials(world, client.client_id, secret).status_code == 200
    for wrong in (secret[:-1], secret + "x", "", "é" * 10):
        r = _client_credentials(world, client.client_id, wrong)
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client", wrong
    r = world.http.post("/auth/introspect", data={"token": "x"}, headers=basic(client.client_id, "guess"))
    assert r.status_code == 401
    r = world.http.post("/auth/revoke", data={"token": "x"}, headers=basic(client.client_id, "guess"))
    assert r.status_code == 401


def test_a_secret_stored_as_scrypt_before_still_verifies(world):
    client, _ = world.app_client(type="confidential-symmetric", scopes=["system/Patient.rs"])
    legacy = dataclasses.replace(client, secret_hash=passwords.hash_password("an older secret"))
    world.store.put_record(KIND, client.client_id, dataclasses.asdict(legacy))
    assert _client_credentials(world, client.client_id, "an older secret").status_code == 200
    assert _client_credentials(world, client.client_id, "another secret").status_code == 401
