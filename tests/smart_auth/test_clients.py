"""Registered OAuth clients: validation, secrets, public keys only, scope permission."""
from __future__ import annotations

import pytest
from joserfc.jwk import ECKey, RSAKey

from fhirserver.smart_auth import passwords
from fhirserver.smart_auth.clients import Client, Clients
from fhirserver.smart_auth.scopes import ScopeError
from fhirserver.storage.sqlite import SqliteStore

APP = "https://app.example/callback"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    monkeypatch.setattr(passwords, "N", 2 ** 10)


@pytest.fixture
def clients(tmp_path):
    return Clients(SqliteStore(str(tmp_path / "t.db"), synchronous="NORMAL"))


@pytest.fixture(scope="module")
def ec_key():
    return ECKey.generate_key("P-384", parameters={"kid": "k1"})


def test_public_client(clients):
    client, secret = clients.add("Viewer", "public", [APP], ["openid fhirUser", "patient/*.rs"])
    assert secret is None and client.secret_hash is None
    assert client.scopes == ["openid", "fhirUser", "patient/*.rs"] and client.redirect_uris == [APP]
    assert clients.get(client.client_id) == client and len(client.client_id) >= 16
    assert clients.get("nope") is None
    assert "secret_hash" not in client.public() and client.public()["client_id"] == client.client_id


def test_symmetric_client_secret(clients):
    client, secret = clients.add("Portal", "confidential-symmetric", [APP], ["user/*.rs"])
    assert secret and len(secret) >= 40 and secret not in client.secret_hash
    stored = clients.get(client.client_id)
    assert "secret_hash" not in stored.public()
    assert clients.check_secret(stored, secret)
    assert not clients.check_secret(stored, secret[:-1] + "x")
    assert not clients.check_secret(stored, "")
    assert not clients.check_secret(stored, None)
    public, _ = clients.add("Viewer", "public", [APP])
    assert not clients.check_secret(public, secret)           # a public client has no secret


def test_asymmetric_clients(clients, ec_key):
    jwks = {"keys": [ec_key.as_dict(private=False)]}
    backend, secret = clients.add("Lab feed", "confidential-asymmetric", scopes=["system/Observation.cu"],
                                  jwks=jwks, organization="Organization/5")
    assert secret is None and backend.redirect_uris == [] and clients.get(backend.client_id).jwks == jwks
    assert backend.organization == "Organization/5"
    for uri in ("https://keys.example/jwks.json", "http://localhost:8000/jwks", "http://127.0.0.1/jwks"):
        c, _ = clients.add("App", "confidential-asymmetric", [APP], jwks_uri=uri)
        assert c.jwks_uri == uri and c.jwks is None


def test_private_keys_refused(clients, ec_key):
    rsa = RSAKey.generate_key(2048)
    for private in (ec_key.as_dict(private=True), rsa.as_dict(private=True)):
        with pytest.raises(ValueError, match="public keys only"):
            clients.add("Leaky", "confidential-asymmetric", jwks={"keys": [private]})
    with pytest.raises(ValueError, match="RSA or EC"):
        clients.add("Oct", "confidential-asymmetric", jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    public_with_k = dict(ec_key.as_dict(private=False), k="x")
    with pytest.raises(ValueError, match="private member"):
        clients.add("Odd", "confidential-asymmetric", jwks={"keys": [public_with_k]})
    assert clients.list() == []


@pytest.mark.parametrize("kwargs, message", [
    ({"type": "secret"}, "client type"),
    ({"type": "public", "redirect_uris": []}, "at least one redirect URI"),
    ({"type": "confidential-symmetric", "redirect_uris": []}, "at least one redirect URI"),
    ({"type": "public", "redirect_uris": ["/callback"]}, "absolute"),
    ({"type": "public", "redirect_uris": ["app.example/cb"]}, "absolute"),
    ({"type": "public", "redirect_uris": ["ftp://app.example/cb"]}, "absolute"),
    ({"type": "public", "redirect_uris": [APP + "#frag"]}, "fragment"),
    ({"type": "public", "redirect_uris": [APP + "#"]}, "fragment"),
    ({"type": "confidential-asymmetric"}, "exactly one of jwks and jwks_uri"),
    ({"type": "confidential-asymmetric", "jwks": {"keys": []}, "jwks_uri": "https://k.example/j"}, "exactly one"),
    ({"type": "confidential-asymmetric", "jwks": {"keys": []}}, "JWK Set"),
    ({"type": "confidential-asymmetric", "jwks": {"keys": [{"kty": "RSA"}]}}, "malformed RSA key"),
    ({"type": "confidential-asymmetric", "jwks_uri": "http://keys.example/jwks"}, "https"),
    ({"type": "confidential-asymmetric", "jwks_uri": "keys.example/jwks"}, "https"),
    ({"type": "public", "redirect_uris": [APP], "jwks_uri": "https://k.example/j"}, "no keys"),
    ({"type": "public", "redirect_uris": [APP], "organization": "Patient/1"}, "organization"),
])
def test_add_refusals(clients, kwargs, message):
    with pytest.raises(ValueError, match=message):
        clients.add("App", **kwargs)
    assert clients.list() == []


@pytest.mark.parametrize("scope", ["patient/Observation.sr", "patient/Unicorn.rs", "offline-access", "patient"])
def test_bad_scopes(clients, scope):
    with pytest.raises(ScopeError):
        clients.add("App", "public", [APP], [scope])


def test_list_and_disable(clients):
    b, _ = clients.add("B", "public", [APP])
    a, _ = clients.add("A", "public", [APP])
    assert [c.name for c in clients.list()] == ["A", "B"]
    assert clients.disable(b.client_id) and clients.get(b.client_id).disabled and not clients.get(a.client_id).disabled
    assert not clients.disable("unknown")


def client(*scopes):
    return Client("id", "App", "public", [APP], list(scopes))


def test_permits_subset_and_v1():
    c = client("patient/Observation.rs")
    assert c.permits("patient/Observation.rs") and c.permits("patient/Observation.r") and c.permits("patient/Observation.s")
    assert c.permits("patient/Observation.read")                   # v1 read = rs
    assert c.permits(f"patient/Observation.rs?category={LAB}")      # narrower: a query on an allowed scope
    assert not c.permits("patient/Observation.rsu") and not c.permits("patient/Observation.write")
    assert not c.permits("patient/Condition.rs") and not c.permits("patient/*.rs")


def test_permits_wildcard_type():
    c = client("user/*.cruds")
    assert c.permits("user/Observation.rs") and c.permits("user/Patient.cud") and c.permits("user/*.r")
    assert client("user/*.*").permits("user/Encounter.d")


def test_permits_query_scope_exact_only():
    granular = f"patient/Observation.rs?category={LAB}"
    c = client(granular)
    assert c.permits(granular)
    assert not c.permits("patient/Observation.rs") and not c.permits("patient/Observation.r")
    assert not c.permits(f"patient/Observation.r?category={LAB}")


def test_permits_context_mismatch():
    c = client("patient/*.rs")
    assert not c.permits("user/Observation.rs") and not c.permits("system/Observation.rs")
    assert not client("user/*.cruds").permits("patient/Observation.r")


def test_permits_non_resource_scopes_literal_only():
    c = client("openid", "launch", "user/*.cruds")
    assert c.permits("openid") and c.permits("launch")
    for other in ("fhirUser", "launch/patient", "launch/encounter", "offline_access", "online_access", "profile"):
        assert not c.permits(other)
    assert client("launch/patient").permits("launch/patient") and not client("launch/patient").permits("launch")


def test_permits_malformed_request_is_refused():
    c = client("patient/*.cruds")
    assert not c.permits("patient/Observation.sr") and not c.permits("patient/Unicorn.rs") and not c.permits("")
