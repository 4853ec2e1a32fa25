"""/fhir/openapi.json declares how to authorize (so Swagger UI at /fhir/docs has an Authorize button)
and the FHIR media types (so "Try it out" sends and accepts application/fhir+json). On every store."""
from __future__ import annotations

import pytest

from fhirserver import create_app
from fhirserver.smart_auth.bearer import is_open
from tests.conftest import make_settings

METHODS = ("get", "put", "post", "delete", "patch")
FHIR_JSON = "application/fhir+json"


@pytest.fixture
def http(tmp_path, backend):
    return create_app(make_settings(tmp_path, backend, auth="on")).test_client()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def _valid_openapi_3(spec):
    try:
        from openapi_spec_validator import validate
    except ImportError:          # not installed: check the structure that matters here
        assert spec["openapi"].startswith("3.0.") and spec["info"]["title"] and isinstance(spec["paths"], dict)
        for name, scheme in spec["components"]["securitySchemes"].items():
            assert scheme["type"] in ("oauth2", "http", "apiKey", "openIdConnect"), name
        for path, method, op in _operations(spec):
            assert op["responses"], (path, method)
            for requirement in op.get("security", []):
                assert set(requirement) <= set(spec["components"]["securitySchemes"]), (path, method)
        return
    validate(spec)


def test_security_schemes_are_declared(http):
    spec = http.get("/fhir/openapi.json").get_json()
    _valid_openapi_3(spec)
    schemes = spec["components"]["securitySchemes"]
    flows = schemes["smart"]["flows"]
    assert schemes["smart"]["type"] == "oauth2"
    assert flows["authorizationCode"]["authorizationUrl"] == "http://fhir.test/auth/authorize"
    assert flows["authorizationCode"]["tokenUrl"] == "http://fhir.test/auth/token"
    assert flows["clientCredentials"]["tokenUrl"] == "http://fhir.test/auth/token"
    assert "patient/*.rs" in flows["authorizationCode"]["scopes"]
    assert all(s.startswith("system/") for s in flows["clientCredentials"]["scopes"])
    assert "PKCE" in schemes["smart"]["description"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}


def test_protected_operations_require_a_token_and_open_ones_do_not(http):
    spec = http.get("/fhir/openapi.json").get_json()
    seen = set()
    for path, method, op in _operations(spec):
        open_path = not path.startswith("/fhir") or is_open(path)
        if open_path:
            assert "security" not in op, (path, method)
        else:
            assert {"smart", "bearer"} == {k for r in op["security"] for k in r}, (path, method)
            assert "401" in op["responses"], (path, method)
        seen.add((path, method, open_path))
    assert ("/fhir/metadata", "get", True) in seen and ("/fhir/$verify-health-card", "post", True) in seen
    assert ("/fhir/{type}/{id}", "get", False) in seen and ("/fhir/{type}", "post", False) in seen
    # what the document says is what the server does
    assert http.get("/fhir/metadata").status_code == 200
    assert http.get("/fhir/Patient").status_code == 401


def test_fhir_media_types_for_bodies_and_answers(http):
    spec = http.get("/fhir/openapi.json").get_json()
    ops = {(path, method): op for path, method, op in _operations(spec)}
    for key in [("/fhir/{type}", "post"), ("/fhir/{type}/{id}", "put"), ("/fhir/", "post")]:
        assert FHIR_JSON in ops[key]["requestBody"]["content"], key
    assert "application/json-patch+json" in ops[("/fhir/{type}/{id}", "patch")]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in ops[("/fhir/{type}/_search", "post")]["requestBody"]["content"]
    for (path, method), op in ops.items():
        if path.startswith("/fhir"):
            assert FHIR_JSON in op["responses"]["default"]["content"], (path, method)
            assert FHIR_JSON in op["responses"]["200"]["content"], (path, method)


def test_swagger_ui_page_uses_pkce_and_sends_aud(http):
    page = http.get("/fhir/docs").get_data(as_text=True)
    assert "initOAuth" in page and '"usePkceWithAuthorizationCodeGrant": true' in page
    assert '"aud": "http://fhir.test/fhir"' in page and "oauth2-redirect.html" in page and "<main" in page
    assert http.get("/fhir/docs/static/oauth2-redirect.html").status_code == 200


def test_no_security_requirements_when_auth_is_off(tmp_path, backend):
    spec = create_app(make_settings(tmp_path, backend)).test_client().get("/fhir/openapi.json").get_json()
    _valid_openapi_3(spec)
    assert "smart" in spec["components"]["securitySchemes"]
    assert not any("security" in op for _p, _m, op in _operations(spec))
