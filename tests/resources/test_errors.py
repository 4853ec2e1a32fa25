"""Bad input gets a clear OperationOutcome with the right status, and stores nothing."""
from __future__ import annotations

import json

import pytest

from fhirserver import create_app
from fhirserver.conformance import seed
from tests.conftest import FHIR_JSON, data_versions, make_settings, patient, post


def stored(ctx) -> int:
    """Versions stored by requests, the server's own NamingSystem/uhid and definitions (written once by the
    init step: conformance/seed.py) and the audit trail left out: a refused request still leaves its
    AuditEvents (docs/audit.md), and nothing else."""
    return data_versions(ctx) - ctx.store.history("NamingSystem", limit=0).total - len(seed.keys())


@pytest.mark.parametrize("data, status", [
    (b"{not json", 400),
    (b"", 400),
    (b"[1, 2]", 400),
    (b'{"resourceType": "Observation"}', 400),                 # type differs from the URL
    (b'{"resourceType": "Patient", "nonsense": 1}', 400),     # unknown element
    (b'{"resourceType": "Patient", "birthDate": "1950-13-45"}', 400),
    (b'{"resourceType": "Patient", "active": NaN}', 400),
    (b'\xff\xfe', 400),
])
def test_bad_bodies(client, ctx, data, status):
    r = client.post("/fhir/Patient", data=data, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == status
    assert r.json["resourceType"] == "OperationOutcome" and r.json["issue"][0]["diagnostics"]
    assert stored(ctx) == 0


def test_invalid_element_is_named(client):
    r = post(client, {"resourceType": "Patient", "gender": "robot"})
    assert r.status_code == 400
    assert any("Patient.gender" in e for i in r.json["issue"] for e in i.get("expression", []))


def test_too_deep_is_400(client, ctx):
    deep = {"resourceType": "Patient", "extension": []}
    node = deep
    for _ in range(200):
        child = {"url": "http://x", "extension": []}
        node.setdefault("extension", []).append(child)
        node = child
    r = client.post("/fhir/Patient", data=json.dumps(deep), headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400 and "nesting" in r.json["issue"][0]["diagnostics"]
    r = client.post("/fhir/Patient", data=b"[" * 100000 + b"]" * 100000, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400
    assert stored(ctx) == 0


def test_too_large_is_413(tmp_path):
    app = create_app(make_settings(tmp_path, max_body_bytes=1000))
    client = app.test_client()
    r = post(client, patient(text={"status": "generated", "div": "<div>" + "x" * 2000 + "</div>"}))
    assert r.status_code == 413 and r.json["resourceType"] == "OperationOutcome"
    assert stored(app.config["MEDPORT"]) == 0


def test_xml_is_refused(client):
    r = client.post("/fhir/Patient", data=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"})
    assert r.status_code == 415 and r.json["resourceType"] == "OperationOutcome"
    pid = post(client, patient()).json["id"]
    assert client.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/fhir+xml"}).status_code == 406
    assert client.get(f"/fhir/Patient/{pid}?_format=xml").status_code == 406


def test_form_body_for_create_is_415(client):
    r = client.post("/fhir/Patient", data={"a": "b"})
    assert r.status_code == 415


def test_unknown_type_route_and_method(client):
    assert client.get("/fhir/Unicorn/1").status_code == 404
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json["resourceType"] == "OperationOutcome"
    r = client.delete("/fhir/metadata")
    assert r.status_code == 405 and r.json["resourceType"] == "OperationOutcome" and "GET" in r.headers["Allow"]


def test_unexpected_error_hides_the_trace(client, ctx, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(ctx.store, "read", boom)
    r = client.get("/fhir/Patient/x")
    assert r.status_code == 500 and b"secret" not in r.data and b"Traceback" not in r.data
    assert r.headers["X-Request-Id"] in r.json["issue"][0]["diagnostics"]


def test_request_id(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"}).headers["X-Request-Id"]
    assert generated != "bad id <script>" and len(generated) == 32
