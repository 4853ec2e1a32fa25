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


def _bundle(kind: str, *entries) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _binary_entry(content: bytes, method: str = "POST", url: str = "Binary", **request) -> dict:
    return {"fullUrl": "urn:uuid:5f0c7e8a-1111-4a2b-9c3d-000000000001",
            "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                         "data": base64.b64encode(content).decode()},
            "request": {"method": method, "url": url, **request}}


def _blob_count(client) -> int:
    return len(list(client.application.config["MEDPORT"].store.blobs.keys()))


def test_a_binary_in_a_bundle_is_stored_like_a_single_one(client):
    """Transaction, batch and conditional update entries keep the data in the blob store: the raw read
    answers the bytes (it answered an empty body when the data stayed in the JSON)."""
    def raw(location: str) -> bytes:
        bid = location.split("/")[1]
        return client.get(f"/fhir/Binary/{bid}", headers={"Accept": "application/pdf"}).data

    headers = {"Content-Type": FHIR_JSON}
    r = client.post("/fhir", json=_bundle("transaction", _binary_entry(b"%PDF in a transaction")), headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert raw(r.json["entry"][0]["response"]["location"]) == b"%PDF in a transaction"
    r = client.post("/fhir", json=_bundle("batch", _binary_entry(b"%PDF in a batch")), headers=headers)
    assert raw(r.json["entry"][0]["response"]["location"]) == b"%PDF in a batch"
    entry = _binary_entry(b"%PDF conditional", "PUT", "Binary?_id=fixed-pdf")
    r = client.post("/fhir", json=_bundle("transaction", entry), headers=headers)
    assert raw(r.json["entry"][0]["response"]["location"]) == b"%PDF conditional"
    body = {"resourceType": "Binary", "contentType": "application/pdf", "data": base64.b64encode(b"%PDF v2").decode()}
    r = client.put("/fhir/Binary?_id=fixed-pdf", json=body, headers=headers)
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    assert raw(f"Binary/{r.json['id']}") == b"%PDF v2"


def test_a_failed_transaction_keeps_no_binary_content(client):
    before = _blob_count(client)
    bad = {"request": {"method": "POST", "url": "Observation"},
           "resource": {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}}
    r = client.post("/fhir", json=_bundle("transaction", _binary_entry(b"%PDF orphan"), bad),
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400
    assert _blob_count(client) == before
    # a conditional create that finds its match writes nothing, its content included
    first = client.post("/fhir", json=_bundle("transaction", _binary_entry(b"%PDF once", ifNoneExist="_id=nope")),
                        headers={"Content-Type": FHIR_JSON})
    bid = first.json["entry"][0]["response"]["location"].split("/")[1]
    after_first = _blob_count(client)
    again = client.post("/fhir", json=_bundle("transaction", _binary_entry(b"%PDF twice", ifNoneExist=f"_id={bid}")),
                        headers={"Content-Type": FHIR_JSON})
    assert again.status_code == 200 and again.json["entry"][0]["response"]["status"].startswith("200")
    assert _blob_count(client) == after_first


def test_a_batch_conditional_create_that_matched_keeps_no_binary_content(client):
    """A batch entry goes through the single create: when its If-None-Exist matches, nothing is written
    and its upload is removed, as for a single POST (it stayed in the blob store, unreferenced)."""
    headers = {"Content-Type": FHIR_JSON}
    first = client.post("/fhir", json=_bundle("batch", _binary_entry(b"%PDF once", ifNoneExist="_id=nope")),
                        headers=headers)
    assert first.json["entry"][0]["response"]["status"].startswith("201")
    bid = first.json["entry"][0]["response"]["location"].split("/")[1]
    after_first = _blob_count(client)
    again = client.post("/fhir", json=_bundle("batch", _binary_entry(b"%PDF twice", ifNoneExist=f"_id={bid}")),
                        headers=headers)
    assert again.json["entry"][0]["response"]["status"].startswith("200")
    assert _blob_count(client) == after_first
    single = client.post("/fhir/Binary", json=_binary_entry(b"%PDF thrice")["resource"],
                         headers={**headers, "If-None-Exist": f"_id={bid}"})
    assert single.status_code == 200
    assert _blob_count(client) == after_first
