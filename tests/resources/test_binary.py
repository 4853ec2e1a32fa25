"""Binary: raw uploads streamed to the blob store, raw or FHIR JSON reads, Range (binary.html#rest)."""
from __future__ import annotations

import base64
import os

from fhirserver import create_app
from tests.conftest import FHIR_JSON, make_settings


def test_raw_round_trip_and_range(client):
    content = os.urandom(300_000)
    r = client.post("/fhir/Binary", data=content, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 201
    bid = r.json["id"]
    raw = client.get(f"/fhir/Binary/{bid}", headers={"Accept": "application/pdf"})
    assert raw.data == content and raw.headers["Content-Type"] == "application/pdf"
    part = client.get(f"/fhir/Binary/{bid}", headers={"Accept": "*/*", "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    assert client.get(f"/fhir/Binary/{bid}", headers={"Range": "bytes=999999-"}).status_code == 416
    as_fhir = client.get(f"/fhir/Binary/{bid}", headers={"Accept": FHIR_JSON}).json
    assert as_fhir["contentType"] == "application/pdf" and base64.b64decode(as_fhir["data"]) == content


def test_fhir_json_binary_and_update(client):
    data = base64.b64encode(b"%PDF-1.4 report").decode()
    r = client.post("/fhir/Binary", json={"resourceType": "Binary", "contentType": "application/pdf", "data": data},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201 and r.json["data"] == data
    bid = r.json["id"]
    assert client.get(f"/fhir/Binary/{bid}", headers={"Accept": "application/pdf"}).data == b"%PDF-1.4 report"
    r = client.put(f"/fhir/Binary/{bid}", data=b"v2", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert client.get(f"/fhir/Binary/{bid}/_history/1", headers={"Accept": "*/*"}).data == b"%PDF-1.4 report"
    assert client.get(f"/fhir/Binary/{bid}", headers={"Accept": "*/*"}).data == b"v2"
    bad = client.post("/fhir/Binary", json={"resourceType": "Binary", "contentType": "text/plain", "data": "!!"},
                      headers={"Content-Type": FHIR_JSON})
    assert bad.status_code == 400


def test_report_points_at_binary(client):
    bid = client.post("/fhir/Binary", data=b"scan", headers={"Content-Type": "image/png"}).json["id"]
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CT head"},
              "presentedForm": [{"contentType": "image/png", "url": f"Binary/{bid}"}]}
    r = client.post("/fhir/DiagnosticReport", json=report, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201
    url = r.json["presentedForm"][0]["url"]
    assert client.get(f"/fhir/{url}", headers={"Accept": "image/png"}).data == b"scan"


def test_upload_limit(tmp_path):
    client = create_app(make_settings(tmp_path, max_binary_bytes=1000)).test_client()
    r = client.post("/fhir/Binary", data=b"x" * 5000, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 413 and r.json["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Binary/_history").json["total"] == 0
    assert os.listdir(tmp_path / "blobs" / "tmp") == []


def test_raw_downloads_are_inert(client):
    """Stored HTML or SVG must never run as this origin's page (security issue 12, binary.html#security)."""
    html = client.post("/fhir/Binary", data=b"<script>alert(1)</script>", headers={"Content-Type": "text/html"}).json["id"]
    svg = client.post("/fhir/Binary", json={"resourceType": "Binary", "contentType": "image/svg+xml",
                                            "data": base64.b64encode(b"<svg onload='alert(1)'/>").decode()},
                      headers={"Content-Type": FHIR_JSON}).json["id"]
    png = client.post("/fhir/Binary", data=b"\x89PNG", headers={"Content-Type": "image/png"}).json["id"]
    for bid, attachment in ((html, True), (svg, True), (png, False)):
        for url in (f"/fhir/Binary/{bid}", f"/fhir/Binary/{bid}/_history/1"):
            r = client.get(url, headers={"Accept": "*/*"})
            assert r.status_code == 200
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["Content-Security-Policy"] == "sandbox"
            assert (r.headers.get("Content-Disposition") == "attachment") is attachment, (url, r.headers)
    part = client.get(f"/fhir/Binary/{html}", headers={"Accept": "*/*", "Range": "bytes=0-3"})
    assert part.status_code == 206 and part.headers["Content-Disposition"] == "attachment"


def test_content_type_is_sent_as_stored(client):
    bid = client.post("/fhir/Binary", json={"resourceType": "Binary", "contentType": "text/plain; charset=utf-8",
                                            "data": base64.b64encode(b"hello").decode()},
                      headers={"Content-Type": FHIR_JSON}).json["id"]
    r = client.get(f"/fhir/Binary/{bid}", headers={"Accept": "*/*"})
    assert r.data == b"hello" and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Content-Disposition" not in r.headers


def test_every_response_says_nosniff(client):
    for r in (client.get("/fhir/metadata"), client.get("/fhir/Patient/nope"), client.get("/fhir/Nope")):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
