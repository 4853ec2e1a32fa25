"""Every refused request answers an OperationOutcome with the right status, and stores nothing.

The server here runs with small limits: MEDPORT_MAX_BODY_BYTES=1000, MEDPORT_MAX_JSON_DEPTH=20.
"""
from __future__ import annotations

import json

import pytest
import requests

from ._server import FHIR_JSON, TIMEOUT, history_total

MAX_BODY = 1000
MAX_DEPTH = 20


@pytest.fixture(scope="module")
def limited(module_server_factory, tmp_path_factory):
    store = tmp_path_factory.mktemp("limited") / "store.db"
    srv = module_server_factory(store, env={"MEDPORT_MAX_BODY_BYTES": MAX_BODY,
                                            "MEDPORT_MAX_JSON_DEPTH": MAX_DEPTH})
    # one resource, so that "nothing stored" compares against a non-empty history
    r = requests.post(f"{srv.base}/Patient", data=json.dumps({"resourceType": "Patient", "active": True}),
                      headers={"Content-Type": FHIR_JSON}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    return srv


def _nested(depth: int) -> dict:
    """A Patient whose extension nests `depth` levels deep in total."""
    node: dict = {"url": "urn:x", "valueString": "leaf"}
    for _ in range(depth):
        node = {"url": "urn:x", "extension": [node]}
    return {"resourceType": "Patient", "extension": [node]}


def _big_patient() -> dict:
    return {"resourceType": "Patient", "name": [{"family": "X" * (MAX_BODY * 3)}]}


def _chunks(data: bytes, size: int = 256):
    for i in range(0, len(data), size):
        yield data[i:i + size]


JSON_CT = {"Content-Type": FHIR_JSON}

# (case id, method, path, headers, body, expected status)
CASES = [
    ("malformed-json", "POST", "Patient", JSON_CT, b'{"resourceType": "Patient", "active": tru', 400),
    ("not-an-object", "POST", "Patient", JSON_CT, b'["Patient"]', 400),
    ("empty-body", "POST", "Patient", JSON_CT, b"", 400),
    ("invalid-utf8", "POST", "Patient", JSON_CT, b'{"resourceType": "Patient", "x": "\xff\xfe"}', 400),
    ("nan-constant", "POST", "Patient", JSON_CT, b'{"resourceType": "Patient", "x": NaN}', 400),
    ("body-too-large", "POST", "Patient", JSON_CT, json.dumps(_big_patient()).encode(), 413),
    ("body-too-large-put", "PUT", "Patient/big", JSON_CT,
     json.dumps(dict(_big_patient(), id="big")).encode(), 413),
    ("body-too-large-chunked", "POST", "Patient", JSON_CT, "chunked:" + json.dumps(_big_patient()), 413),
    ("too-deep", "POST", "Patient", JSON_CT, json.dumps(_nested(MAX_DEPTH + 5)).encode(), 400),
    ("too-deep-arrays", "POST", "Patient", JSON_CT,
     b'{"resourceType": "Patient", "x": ' + b"[" * 200 + b"]" * 200 + b"}", 400),
    ("xml-content-type", "POST", "Patient", {"Content-Type": "application/fhir+xml"},
     b'<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>', 415),
    ("text-xml-content-type", "PUT", "Patient/x1", {"Content-Type": "text/xml"},
     b'<Patient xmlns="http://hl7.org/fhir"><id value="x1"/></Patient>', 415),
    ("accept-xml-read", "GET", "metadata", {"Accept": "application/fhir+xml"}, None, 406),
    ("accept-xml-create", "POST", "Patient", {**JSON_CT, "Accept": "application/fhir+xml"},
     b'{"resourceType": "Patient", "active": true}', 406),
    ("format-xml", "GET", "metadata?_format=xml", {}, None, 406),
    ("unknown-type-read", "GET", "Foo/1", {}, None, 404),
    ("unknown-type-create", "POST", "Foo", JSON_CT, b'{"resourceType": "Foo"}', 404),
    ("unknown-type-search", "GET", "Foo", {}, None, 404),
    ("patch-metadata", "PATCH", "metadata", {"Content-Type": "application/json-patch+json"}, b"[]", 405),
    ("type-mismatch-create", "POST", "Patient", JSON_CT, b'{"resourceType": "Observation", "status": "final", '
     b'"code": {"text": "x"}}', 400),
    ("type-missing", "POST", "Patient", JSON_CT, b'{"active": true}', 400),
    ("type-mismatch-update", "PUT", "Patient/x2", JSON_CT, b'{"resourceType": "Observation", "id": "x2", '
     b'"status": "final", "code": {"text": "x"}}', 400),
    ("id-mismatch-update", "PUT", "Patient/x3", JSON_CT, b'{"resourceType": "Patient", "id": "x4"}', 400),
    ("bad-id-update", "PUT", "Patient/bad_id!", JSON_CT, b'{"resourceType": "Patient", "id": "bad_id!"}', 400),
    ("invalid-resource", "POST", "Patient", JSON_CT, b'{"resourceType": "Patient", "active": "yes"}', 400),
    ("unknown-element", "POST", "Patient", JSON_CT, b'{"resourceType": "Patient", "colour": "blue"}', 400),
    ("bad-if-match", "PUT", "Patient/x5", {**JSON_CT, "If-Match": "yesterday"},
     b'{"resourceType": "Patient", "id": "x5"}', 400),
]


@pytest.mark.parametrize("method,path,headers,body,status", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_is_operation_outcome_and_stores_nothing(limited, method, path, headers, body, status):
    before = history_total(limited.base)
    if isinstance(body, str) and body.startswith("chunked:"):
        body = _chunks(body[len("chunked:"):].encode())    # no Content-Length: the limit is enforced on the stream
    r = requests.request(method, f"{limited.base}/{path}", data=body, headers=headers, timeout=TIMEOUT)
    assert r.status_code == status, r.text[:2000]
    assert r.headers["Content-Type"].startswith(FHIR_JSON), r.headers
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"], outcome
    for issue in outcome["issue"]:
        assert issue["severity"] in ("fatal", "error")
        assert isinstance(issue["code"], str) and issue["code"]
        assert issue.get("diagnostics")
    assert r.headers.get("X-Request-Id")
    if status == 405:
        assert r.headers.get("Allow")
    assert history_total(limited.base) == before


def test_pathologically_deep_json_is_400_not_500(server):
    """200 000 nested arrays, under the default body limit: the parser must not crash the request."""
    before = history_total(server.base)
    body = b'{"resourceType": "Patient", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = requests.post(f"{server.base}/Patient", data=body, headers=JSON_CT, timeout=TIMEOUT)
    assert r.status_code == 400, r.text[:2000]
    assert r.json()["resourceType"] == "OperationOutcome"
    assert history_total(server.base) == before


def test_server_still_serves_after_errors(limited):
    r = requests.post(f"{limited.base}/Patient", data=json.dumps({"resourceType": "Patient", "active": False}),
                      headers=JSON_CT, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
