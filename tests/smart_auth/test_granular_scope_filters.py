"""A granular scope's query restricts by search parameters that filter (SMART App Launch 2.2,
"Finer-grained resource constraints using search parameters"); result parameters (_count, _sort,
_include, _summary, _elements ...) filter nothing.

Found: `user/Observation.rs?_count=1` (or ?_include=..., ?_summary=count) parsed, and its query
became an empty restriction: the scope acted as the unrestricted `user/Observation.rs` while the
consent page showed a restricted one. Such a scope is now malformed: refused at authorization
(invalid_scope), at client registration, and in a token (401/403, never its data).
"""
from __future__ import annotations

import pytest

from fhirserver.smart_auth.clients import KIND
from fhirserver.smart_auth.scopes import ScopeError, parse_scope
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import auth, make_app, mint
from tests.smart_auth.test_oauth_helpers import authorize_params, make_world, pkce, query, start

NOT_FILTERING = ["_count=1", "_sort=date", "_include=Observation:subject", "_revinclude:iterate=Provenance:target",
                 "_summary=count", "_elements=id", "_total=accurate", "category=vital-signs&_count=5"]


@pytest.mark.parametrize("query_text", NOT_FILTERING)
def test_a_scope_query_of_result_parameters_is_malformed(query_text):
    with pytest.raises(ScopeError):
        parse_scope(f"user/Observation.rs?{query_text}")


def test_filtering_scope_queries_still_parse():
    assert parse_scope("patient/Observation.rs?category=laboratory&_lastUpdated=gt2024").query == (
        ("category", "laboratory"), ("_lastUpdated", "gt2024"))


@pytest.mark.parametrize("query_text", ["_count=1", "_summary=count"])
def test_a_token_with_such_a_scope_reads_nothing(tmp_path, backend, query_text):
    app = make_app(tmp_path, backend)
    http = app.test_client()
    system = auth(mint(app, "system/*.cruds"), **{"Content-Type": FHIR_JSON})
    patient = http.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=system).get_json()["id"]
    r = http.post("/fhir/Observation", headers=system, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": f"Patient/{patient}"}})
    assert r.status_code == 201
    token = mint(app, f"user/Observation.rs?{query_text}")
    r = http.get("/fhir/Observation", headers=auth(token))
    assert r.status_code in (401, 403), r.get_data(as_text=True)


def test_authorization_refuses_such_a_scope(tmp_path, monkeypatch, backend):
    world = make_world(tmp_path, monkeypatch, backend)
    app, _ = world.app_client()
    _verifier, challenge = pkce()
    r = start(world.browser(), authorize_params(app.client_id, challenge, "launch/patient patient/Observation.rs?_count=1"))
    assert r.status_code == 302 and query(r.headers["Location"])["error"] == "invalid_scope"
    with pytest.raises(ScopeError):
        world.clients.add("app", "public", redirect_uris=["https://a.example/cb"], scopes=["user/Observation.rs?_sort=x"])


def test_a_client_registered_with_such_a_scope_before_is_not_a_server_error(tmp_path, monkeypatch, backend):
    world = make_world(tmp_path, monkeypatch, backend)
    app, _ = world.app_client(scopes=["launch/patient", "patient/Observation.rs"])
    stored = world.store.get_record(KIND, app.client_id)
    stored["scopes"] = ["patient/Observation.rs?_count=1"] + stored["scopes"]     # as the old grammar took it
    world.store.put_record(KIND, app.client_id, stored)
    _verifier, challenge = pkce()
    r = start(world.browser(), authorize_params(app.client_id, challenge, "launch/patient patient/Observation.r"))
    assert r.status_code == 303, r.get_data(as_text=True)          # on to sign-in: the other scopes still count
    r = start(world.browser(), authorize_params(app.client_id, challenge, "patient/Observation.rs?_count=1"))
    assert r.status_code == 302 and query(r.headers["Location"])["error"] == "invalid_scope"
