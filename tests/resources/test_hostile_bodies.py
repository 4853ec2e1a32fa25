"""Hostile bodies and numbers in URLs, headers and cursors: each a 400 OperationOutcome, never a 500,
and nothing stored (security issue 12: RFC 8259 rules in fhirserver/jsonio.py, bounds in bounds.py)."""
from __future__ import annotations

import pytest

from fhirserver import create_app
from fhirserver.errors import BadRequest
from tests.conftest import FHIR_JSON, data_versions, make_settings, patient, post

OBS = b'{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":%s}}'
HUGE = b"99999999999999999999999"

BODIES = {
    "1e999": (OBS % b"1e999", "1e999 is out of range"),
    "-1e999": (OBS % b"-1e999", "-1e999 is out of range"),
    "1e400": (OBS % b"1e400", "out of range"),
    "NaN": (OBS % b"NaN", "NaN is not a JSON number"),
    "Infinity": (OBS % b"Infinity", "Infinity is not a JSON number"),
    "integer beyond 64 bits": (OBS % HUGE, "integers must fit in 64 bits"),
    "duplicate key": (b'{"resourceType":"Patient","gender":"male","gender":"female"}', "Duplicate JSON object key 'gender'"),
    "duplicate resourceType": (b'{"resourceType":"Patient","resourceType":"Observation"}', "Duplicate"),
    "lone surrogate": (b'{"resourceType":"Patient","name":[{"family":"\\ud800"}]}', "lone UTF-16 surrogate"),
    "encoded surrogate": (b'{"resourceType":"Patient","name":[{"family":"\xed\xa0\x80"}]}', "not valid UTF-8"),
    "latin-1 byte": (b'{"resourceType":"Patient","name":[{"family":"Jos\xe9"}]}', "not valid UTF-8"),
    "deep nesting": (b'{"resourceType":"Patient","extension":' + b"[" * 5000 + b"]" * 5000 + b"}", "nesting"),
    "deep objects": (b'{"a":' * 3000 + b"1" + b"}" * 3000, "nesting"),
}


def _bundle(kind: str, resource: bytes) -> bytes:
    return (b'{"resourceType":"Bundle","type":"%s","entry":[{"resource":%s,"request":{"method":"POST","url":"%s"}}]}'
            % (kind.encode(), resource, b"Observation" if b"Observation" in resource else b"Patient"))


def refused(r, text: str | None = None) -> None:
    assert r.status_code == 400, (r.status_code, r.data[:300])
    assert r.json["resourceType"] == "OperationOutcome"
    if text:
        assert text in r.json["issue"][0]["diagnostics"], r.json


@pytest.mark.parametrize("name", BODIES)
def test_hostile_bodies_are_refused_everywhere_and_store_nothing(client, ctx, name):
    body, text = BODIES[name]
    pid = post(client, patient()).json["id"]
    before = data_versions(ctx)     # the audit trail left out: each refused request leaves its AuditEvents
    rtype = "Observation" if body.startswith(b'{"resourceType":"Observation"') else "Patient"
    headers = {"Content-Type": FHIR_JSON}
    refused(client.post(f"/fhir/{rtype}", data=body, headers=headers), text)
    refused(client.put(f"/fhir/{rtype}/{pid}" if rtype == "Patient" else f"/fhir/{rtype}/o1", data=body,
                       headers=headers), text)
    refused(client.put(f"/fhir/{rtype}?identifier=x", data=body, headers=headers), text)
    if b"[" * 50 not in body and b'{"a":{"a"' not in body:   # the deep ones are not Bundle-shaped
        for kind in ("batch", "transaction"):
            refused(client.post("/fhir", data=_bundle(kind, body), headers=headers), text)
    refused(client.post(f"/fhir/{rtype}/$validate", data=body, headers=headers), text)
    assert data_versions(ctx) == before


@pytest.mark.parametrize("patch, text", [
    (b'[{"op":"add","path":"/multipleBirthInteger","value":%s}]' % HUGE, "64 bits"),
    (b'[{"op":"add","path":"/extension","value":[{"url":"http://x.test","valueDecimal":1e999}]}]', "out of range"),
    (b'[{"op":"add","path":"/active","value":true,"op":"remove"}]', "Duplicate JSON object key 'op'"),
    (b'[{"op":"add","path":"/name/0/family","value":"\\udfff"}]', "lone UTF-16 surrogate"),
])
def test_hostile_json_patch_is_refused(client, patch, text):
    pid = post(client, patient()).json["id"]
    refused(client.patch(f"/fhir/Patient/{pid}", data=patch, headers={"Content-Type": "application/json-patch+json"}),
            text)
    assert client.get(f"/fhir/Patient/{pid}").json["meta"]["versionId"] == "1"


def test_numbers_in_urls_and_cursors_are_bounded(client):
    pid = post(client, patient()).json["id"]
    for url in (f"/fhir/Patient/{pid}/_history/{HUGE.decode()}", f"/fhir/Patient/{pid}/_history?_cursor={HUGE.decode()}",
                f"/fhir/Patient/_history?_cursor={HUGE.decode()}", f"/fhir/_history?_cursor=-{HUGE.decode()}",
                "/fhir/_history?_cursor=9223372036854775808", f"/fhir/Patient/{pid}/_history?_cursor=garbage",
                f"/fhir/_history?_count={HUGE.decode()}", "/fhir/_history?_count=%C2%B2",
                f"/fhir/Patient/{pid}/_history?_count=-1"):
        refused(client.get(url))
    assert client.get(f"/fhir/Patient/{pid}/_history/%C2%B2").status_code == 404   # not a version id
    assert client.get(f"/fhir/Patient/{pid}/_history/9223372036854775807").status_code == 404
    entries = [{"request": {"method": "GET", "url": u}} for u in
               (f"Patient/{pid}/_history/{HUGE.decode()}", f"_history?_cursor={HUGE.decode()}",
                f"Patient/{pid}/_history?_cursor={HUGE.decode()}")]
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    assert [e["response"]["status"] for e in r.json["entry"]] == ["400 Bad Request"] * 3


def test_a_lone_surrogate_in_a_diagnostic_still_renders(tmp_path):
    """The error handler itself must not fail on text UTF-8 cannot carry (it answered 500 before)."""
    app = create_app(make_settings(tmp_path))

    @app.route("/fhir/_test_surrogate")
    def _raise():
        raise BadRequest("bad value '\ud800'")

    r = app.test_client().get("/fhir/_test_surrogate")
    assert r.status_code == 400 and r.json["issue"][0]["diagnostics"] == "bad value '\\ud800'"


@pytest.mark.parametrize("charset, status", [("utf-8", 201), ("UTF-8", 201), ('"utf-8"', 201), ("us-ascii", 201),
                                             ("iso-8859-1", 415), ("utf-16", 415), ("latin1", 415)])
def test_a_body_declared_in_another_charset_is_415(client, ctx, charset, status):
    """http.html#mime-type: FHIR bodies are UTF-8; one declared in another charset cannot be read as sent."""
    before = data_versions(ctx)
    r = client.post("/fhir/Patient", data=b'{"resourceType":"Patient","gender":"male"}',
                    headers={"Content-Type": f"{FHIR_JSON}; charset={charset}"})
    assert r.status_code == status, r.data[:300]
    if status == 415:
        assert r.json["resourceType"] == "OperationOutcome" and data_versions(ctx) == before
