"""Binary over HTTP (http://hl7.org/fhir/R4/binary.html#rest): raw upload/download, Range, FHIR JSON form,
the upload limit, and a DiagnosticReport pointing at the Binary by relative URL.

The server here runs with MEDPORT_MAX_BINARY_BYTES=6000000.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
import requests

from ._server import FHIR_JSON, TIMEOUT, history_total

MAX_BINARY = 6_000_000
SIZE = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def binsrv(module_server_factory, tmp_path_factory):
    store = tmp_path_factory.mktemp("binary") / "store.db"
    return module_server_factory(store, env={"MEDPORT_MAX_BINARY_BYTES": MAX_BINARY})


@pytest.fixture(scope="module")
def pdf(binsrv):
    """5 MB of random bytes uploaded as application/pdf: (id, bytes)."""
    data = os.urandom(SIZE)
    r = requests.post(f"{binsrv.base}/Binary", data=data, timeout=TIMEOUT,
                      headers={"Content-Type": "application/pdf", "Accept": FHIR_JSON, "Prefer": "return=minimal"})
    assert r.status_code == 201, r.text[:2000]
    location = r.headers["Location"]
    assert location.startswith(f"{binsrv.base}/Binary/") and location.endswith("/_history/1")
    assert r.headers["ETag"] == 'W/"1"'
    return location.split("/")[-3], data


def test_raw_download_is_identical(binsrv, pdf):
    bid, data = pdf
    r = requests.get(f"{binsrv.base}/Binary/{bid}", headers={"Accept": "application/pdf"}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/pdf")
    assert len(r.content) == SIZE and hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()
    # vread of the version gives the same bytes
    r = requests.get(f"{binsrv.base}/Binary/{bid}/_history/1", headers={"Accept": "application/pdf"},
                     timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == data


@pytest.mark.parametrize("spec,start,end", [
    ("bytes=0-0", 0, 0),
    ("bytes=1000-1999", 1000, 1999),
    ("bytes=4194304-", 4194304, SIZE - 1),
    ("bytes=-500", SIZE - 500, SIZE - 1),
    (f"bytes={SIZE - 10}-{SIZE + 1000}", SIZE - 10, SIZE - 1),     # end past the length is clipped
])
def test_range_request(binsrv, pdf, spec, start, end):
    bid, data = pdf
    r = requests.get(f"{binsrv.base}/Binary/{bid}", headers={"Accept": "application/pdf", "Range": spec},
                     timeout=TIMEOUT)
    assert r.status_code == 206, r.text[:500]
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert r.content == data[start:end + 1]


def test_unsatisfiable_range(binsrv, pdf):
    bid, _ = pdf
    r = requests.get(f"{binsrv.base}/Binary/{bid}", headers={"Accept": "application/pdf",
                                                             "Range": f"bytes={SIZE}-{SIZE + 100}"}, timeout=TIMEOUT)
    assert r.status_code == 416
    assert r.headers["Content-Type"].startswith(FHIR_JSON)
    assert r.json()["resourceType"] == "OperationOutcome"


def test_unsatisfiable_range_names_the_length(binsrv, pdf):
    """RFC 9110 section 15.5.17: a 416 should carry Content-Range: bytes */<complete length>."""
    bid, _ = pdf
    r = requests.get(f"{binsrv.base}/Binary/{bid}", headers={"Accept": "application/pdf",
                                                             "Range": f"bytes={SIZE}-"}, timeout=TIMEOUT)
    assert r.status_code == 416
    assert r.headers.get("Content-Range") == f"bytes */{SIZE}"


def test_fhir_json_form_has_base64_data(binsrv, pdf):
    bid, data = pdf
    r = requests.get(f"{binsrv.base}/Binary/{bid}", headers={"Accept": FHIR_JSON}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(FHIR_JSON)
    assert r.headers["ETag"] == 'W/"1"'
    body = r.json()
    assert body["resourceType"] == "Binary" and body["id"] == bid
    assert body["contentType"] == "application/pdf"
    assert body["meta"]["versionId"] == "1"
    assert base64.b64decode(body["data"], validate=True) == data


def test_binary_as_fhir_json_upload(binsrv):
    raw = os.urandom(3000)
    r = requests.post(f"{binsrv.base}/Binary", timeout=TIMEOUT, headers={"Content-Type": FHIR_JSON},
                      data=json.dumps({"resourceType": "Binary", "contentType": "image/png",
                                       "data": base64.b64encode(raw).decode()}))
    assert r.status_code == 201, r.text[:2000]
    bid = r.json()["id"]
    assert base64.b64decode(r.json()["data"]) == raw
    r = requests.get(f"{binsrv.base}/Binary/{bid}", headers={"Accept": "image/png"}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == raw and r.headers["Content-Type"].startswith("image/png")


def test_upload_over_the_limit_is_413_and_stores_nothing(binsrv):
    before = history_total(binsrv.base)
    tmp_dir = os.path.join(binsrv.blob_dir, "tmp")
    r = requests.post(f"{binsrv.base}/Binary", data=os.urandom(MAX_BINARY + 500_000), timeout=TIMEOUT,
                      headers={"Content-Type": "application/pdf", "Accept": FHIR_JSON})
    assert r.status_code == 413, r.text[:2000]
    assert r.json()["resourceType"] == "OperationOutcome"
    assert history_total(binsrv.base) == before
    assert os.listdir(tmp_dir) == []          # the partial upload was removed
    big = [f for root, _, files in os.walk(binsrv.blob_dir) for f in files
           if os.path.getsize(os.path.join(root, f)) > MAX_BINARY]
    assert big == []


def test_upload_over_the_limit_chunked(binsrv):
    """No Content-Length: the limit is enforced while streaming."""
    before = history_total(binsrv.base)
    block = os.urandom(256 * 1024)

    def body():
        for _ in range(MAX_BINARY // len(block) + 3):
            yield block

    r = requests.post(f"{binsrv.base}/Binary", data=body(), timeout=TIMEOUT,
                      headers={"Content-Type": "application/octet-stream", "Accept": FHIR_JSON})
    assert r.status_code == 413, r.text[:2000]
    assert history_total(binsrv.base) == before


def test_diagnostic_report_points_at_binary(binsrv, pdf):
    bid, data = pdf
    report = {"resourceType": "DiagnosticReport", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "11502-2", "display": "Laboratory report"}]},
              "presentedForm": [{"contentType": "application/pdf", "url": f"Binary/{bid}", "title": "Report"}]}
    r = requests.post(f"{binsrv.base}/DiagnosticReport", data=json.dumps(report), timeout=TIMEOUT,
                      headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
    assert r.status_code == 201, r.text[:2000]
    rid = r.json()["id"]
    stored = requests.get(f"{binsrv.base}/DiagnosticReport/{rid}", timeout=TIMEOUT,
                          headers={"Accept": FHIR_JSON}).json()
    form = stored["presentedForm"][0]
    assert form["url"] == f"Binary/{bid}"
    r = requests.get(f"{binsrv.base}/{form['url']}", headers={"Accept": form["contentType"]}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == data


def _blob_files(srv) -> set[str]:
    return {f for root, _, files in os.walk(srv.blob_dir) if os.path.basename(root) != "tmp" for f in files}


def test_refused_raw_binary_update_leaves_no_blob(binsrv, pdf):
    """A raw Binary PUT refused with 412 (stale If-Match) must not leave its content on disk:
    nothing refers to it, and nothing ever removes it."""
    bid, _ = pdf
    before_total, before_blobs = history_total(binsrv.base), _blob_files(binsrv)
    r = requests.put(f"{binsrv.base}/Binary/{bid}", data=os.urandom(4096), timeout=TIMEOUT,
                     headers={"Content-Type": "application/pdf", "If-Match": 'W/"999"', "Accept": FHIR_JSON})
    assert r.status_code == 412, r.text[:2000]
    assert history_total(binsrv.base) == before_total
    assert _blob_files(binsrv) == before_blobs
