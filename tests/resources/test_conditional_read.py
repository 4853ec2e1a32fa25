"""Conditional read and vread (http.html#cread; RFC 9110 13.1.2 If-None-Match, 13.1.3 If-Modified-Since),
as HTTP headers and as request.ifNoneMatch / ifModifiedSince of Bundle GET entries."""
from __future__ import annotations

import datetime
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from tests.conftest import FHIR_JSON, patient, post


def _created(client):
    r = post(client, patient())
    return r.json["id"], r.headers["Last-Modified"]


def _shifted(http_date: str, seconds: int) -> str:
    return format_datetime(parsedate_to_datetime(http_date) + datetime.timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize("tag", ['W/"1"', '"1"', "*", 'W/"2", W/"1"', '"7","1"', ' W/"3" , "1" ', "1"])
def test_if_none_match_forms_that_match_give_304_with_validators(client, tag):
    pid, modified = _created(client)
    r = client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": tag})
    assert r.status_code == 304, tag
    assert r.headers["ETag"] == 'W/"1"' and r.headers["Last-Modified"] == modified
    assert r.data == b"" and "Content-Type" not in r.headers


@pytest.mark.parametrize("tag", ['W/"2"', '"2", W/"3"', '"11"', "W/1x", '"1', ""])
def test_if_none_match_that_does_not_match_reads(client, tag):
    pid, _ = _created(client)
    r = client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": tag})
    assert r.status_code == 200 and r.json["id"] == pid, tag


def test_if_modified_since(client):
    pid, modified = _created(client)

    def status(value, **more):
        return client.get(f"/fhir/Patient/{pid}", headers={"If-Modified-Since": value, **more}).status_code

    # Last-Modified has one-second resolution while the stored instant has microseconds: still 304
    r = client.get(f"/fhir/Patient/{pid}", headers={"If-Modified-Since": modified})
    assert r.status_code == 304 and r.headers["Last-Modified"] == modified and r.headers["ETag"] == 'W/"1"'
    assert status(_shifted(modified, 60)) == 304
    assert status(_shifted(modified, -1)) == 200
    assert status("not a date") == 200                                  # unparseable: ignored
    assert status("Sun, 99 Foo 1994 08:49:37 GMT") == 200
    # If-None-Match takes precedence over If-Modified-Since, either way
    assert status(modified, **{"If-None-Match": 'W/"2"'}) == 200
    assert status(_shifted(modified, -3600), **{"If-None-Match": 'W/"1"'}) == 304


def test_vread_is_conditional_too(client):
    created = post(client, patient())
    pid, modified = created.json["id"], created.headers["Last-Modified"]
    r = client.put(f"/fhir/Patient/{pid}", json={**created.json, "gender": "male"}, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.json
    r = client.get(f"/fhir/Patient/{pid}/_history/1", headers={"If-None-Match": '"1"'})
    assert r.status_code == 304 and r.headers["ETag"] == 'W/"1"' and r.headers["Last-Modified"] == modified
    assert client.get(f"/fhir/Patient/{pid}/_history/1", headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(f"/fhir/Patient/{pid}/_history/1", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(f"/fhir/Patient/{pid}/_history/2", headers={"If-None-Match": 'W/"1"'}).status_code == 200
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 200


def test_bundle_get_entries(client):
    pid, modified = _created(client)
    instant = parsedate_to_datetime(modified).isoformat()
    earlier = (parsedate_to_datetime(modified) - datetime.timedelta(seconds=1)).isoformat()
    cases = [
        ({"ifNoneMatch": '"1"'}, "304"),
        ({"ifNoneMatch": "*"}, "304"),
        ({"ifNoneMatch": 'W/"2", W/"1"'}, "304"),
        ({"ifNoneMatch": 'W/"2"'}, "200"),
        ({"ifModifiedSince": instant}, "304"),
        ({"ifModifiedSince": modified}, "304"),
        ({"ifModifiedSince": earlier}, "200"),
        ({"ifModifiedSince": "yesterday"}, "200"),               # unparseable: ignored
        ({"ifNoneMatch": 'W/"2"', "ifModifiedSince": instant}, "200"),
    ]
    entries = [{"request": {"method": "GET", "url": f"Patient/{pid}", **req}} for req, _ in cases]
    entries.append({"request": {"method": "GET", "url": f"Patient/{pid}/_history/1", "ifNoneMatch": 'W/"1"'}})
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    got = [e["response"]["status"].split()[0] for e in r.json["entry"]]
    assert got == [want for _, want in cases] + ["304"]
    for e in r.json["entry"]:
        assert e["response"]["etag"] == 'W/"1"' and e["response"]["lastModified"]
        assert ("resource" in e) == e["response"]["status"].startswith("200")
