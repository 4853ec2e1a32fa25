"""Discovery (App Launch 2.2 "Conformance"): smart-configuration, openid-configuration, JWKS,
the oauth-uris extension, CORS."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.discovery import CAPABILITIES, oauth_uris_extension
from tests.smart_auth.test_oauth_helpers import AUTH, BASE, make_world


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    return make_world(tmp_path, monkeypatch, backend)


def test_smart_configuration(world):
    r = world.http.get("/fhir/.well-known/smart-configuration", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    c = r.get_json()
    assert c["issuer"] == BASE and c["jwks_uri"] == AUTH + "/jwks"
    assert c["authorization_endpoint"] == AUTH + "/authorize" and c["token_endpoint"] == AUTH + "/token"
    assert c["introspection_endpoint"] == AUTH + "/introspect" and c["revocation_endpoint"] == AUTH + "/revoke"
    assert c["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert set(c["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                               "private_key_jwt", "none"}
    assert c["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert c["code_challenge_methods_supported"] == ["S256"] and c["response_types_supported"] == ["code"]
    assert "launch/patient" in c["scopes_supported"] and "system/*.rs" in c["scopes_supported"]
    assert c["capabilities"] == CAPABILITIES
    assert "context-standalone-encounter" not in c["capabilities"] and "smart-app-state" not in c["capabilities"]
    preflight = world.http.open("/fhir/.well-known/smart-configuration", method="OPTIONS",
                                headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"


def test_openid_configuration_and_jwks(world):
    c = world.http.get("/fhir/.well-known/openid-configuration").get_json()
    assert c["issuer"] == BASE and c["jwks_uri"] == AUTH + "/jwks"
    assert c["subject_types_supported"] == ["public"] and c["id_token_signing_alg_values_supported"] == ["RS256"]
    r = world.http.get("/auth/jwks")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    keys = r.get_json()["keys"]
    assert keys and all(k["kid"] and k["kty"] == "RSA" and "d" not in k for k in keys)


def test_oauth_uris_extension():
    ext = oauth_uris_extension(BASE)
    assert ext["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert {e["url"]: e["valueUri"] for e in ext["extension"]} == {
        "authorize": AUTH + "/authorize", "token": AUTH + "/token", "introspect": AUTH + "/introspect",
        "revoke": AUTH + "/revoke"}


def test_pages_have_no_cors(world):
    assert "Access-Control-Allow-Origin" not in world.http.get("/auth/login").headers
