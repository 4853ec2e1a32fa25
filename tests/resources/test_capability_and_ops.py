"""CapabilityStatement, OpenAPI description, docs page and probes."""
from __future__ import annotations

from fhirserver.definitions import resource_types
from fhirserver.validation import validate


def test_capability_statement_covers_every_type(client):
    cs = client.get("/fhir/metadata").json
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    assert cs["kind"] == "instance" and cs["implementation"]["url"] == "http://fhir.test/fhir"
    rest = cs["rest"][0]
    assert {r["type"] for r in rest["resource"]} == set(resource_types()) and len(rest["resource"]) > 140
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {"read", "vread", "update", "patch", "delete", "create", "history-instance"} <= {
        i["code"] for i in patient["interaction"]}
    names = {p["name"] for p in patient["searchParam"]}
    assert {"_id", "identifier", "name", "birthdate", "_lastUpdated", "_tag"} <= names
    assert "_text" not in names and "_content" not in names          # listed as unsupported
    assert "Observation:subject" in patient["searchRevInclude"] and "Patient:organization" in patient["searchInclude"]
    assert "application/json-patch+json" in cs["patchFormat"]


def test_capability_statement_lists_the_system_interactions(client):
    """POST [base] takes batch and transaction Bundles: the statement says so (rest.interaction), or a client
    that reads it before sending a Bundle believes they are not supported."""
    codes = [i["code"] for i in client.get("/fhir/metadata").json["rest"][0]["interaction"]]
    assert sorted(codes) == ["batch", "history-system", "search-system", "transaction"]


def test_openapi_and_docs(client):
    spec = client.get("/fhir/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/fhir/{type}/{id}" in spec["paths"]
    assert {"get", "put", "patch", "delete"} <= set(spec["paths"]["/fhir/{type}/{id}"])
    page = client.get("/fhir/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    assert client.get("/fhir/docs/static/swagger-ui-bundle.js").status_code == 200


def test_probes(client, ctx, monkeypatch, backend):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    import sqlite3

    from pymongo.errors import ServerSelectionTimeoutError

    def broken(*_args, **_kw):
        if backend == "sqlite":
            raise sqlite3.OperationalError("disk I/O error")
        raise ServerSelectionTimeoutError("no primary")
    monkeypatch.setattr(ctx.store, "_conn" if backend == "sqlite" else "db", type("Down", (), {"command": broken})()
                        if backend != "sqlite" else broken)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["resourceType"] == "OperationOutcome"


def test_metadata_modes(client):
    """http.html#capabilities: mode=full (default) and normative answer the CapabilityStatement,
    terminology a TerminologyCapabilities; any other mode is a 400."""
    for query in ("", "?mode=full", "?mode=normative"):
        assert client.get(f"/fhir/metadata{query}").json["resourceType"] == "CapabilityStatement"
    tc = client.get("/fhir/metadata?mode=terminology").json
    assert tc["resourceType"] == "TerminologyCapabilities" and tc["kind"] == "instance" and tc["status"] == "active"
    assert {"uri": "http://loinc.org"} in tc["codeSystem"] and tc["expansion"]["paging"] is True
    validate(tc)
    r = client.get("/fhir/metadata?mode=everything")
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
