"""CRUD, versioning, history and conditional create over HTTP (http://hl7.org/fhir/R4/http.html)."""
from __future__ import annotations

import re
import uuid
from email.utils import parsedate_to_datetime

from ._server import FHIR_JSON, all_entries, get, post, put, session


def _patient(**extra) -> dict:
    p = {"resourceType": "Patient", "active": True, "gender": "female", "birthDate": "1980-02-03",
         "name": [{"family": "Doe", "given": ["Jane"]}]}
    p.update(extra)
    return p


def _is_outcome(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith(FHIR_JSON)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"], body
    return body


def test_crud_round_trip(base):
    s = session()

    # create
    r = post(s, f"{base}/Patient", _patient(id="client-chosen-ignored"))
    assert r.status_code == 201, r.text
    created = r.json()
    pid = created["id"]
    assert pid != "client-chosen-ignored"
    location = r.headers["Location"]
    assert location == f"{base}/Patient/{pid}/_history/1"
    assert r.headers["ETag"] == 'W/"1"'
    assert parsedate_to_datetime(r.headers["Last-Modified"]) is not None
    assert created["meta"]["versionId"] == "1"
    v1_updated = created["meta"]["lastUpdated"]

    # read (and the Location is readable too)
    r = get(s, f"{base}/Patient/{pid}")
    assert r.status_code == 200 and r.headers["ETag"] == 'W/"1"'
    assert r.json() == created
    assert get(s, location).json() == created

    # update with If-Match
    changed = dict(created, gender="other")
    r = put(s, f"{base}/Patient/{pid}", changed, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == 'W/"2"'
    assert r.json()["meta"]["versionId"] == "2" and r.json()["gender"] == "other"

    # stale If-Match: 412, nothing written
    r = put(s, f"{base}/Patient/{pid}", dict(created, gender="male"), headers={"If-Match": 'W/"1"'})
    _is_outcome(r, 412)
    r = get(s, f"{base}/Patient/{pid}")
    assert r.json()["gender"] == "other" and r.headers["ETag"] == 'W/"2"'

    # delete, then read is 410 Gone
    r = s.delete(f"{base}/Patient/{pid}", timeout=30)
    assert r.status_code in (200, 204), r.text       # http.html#delete: 200 with a body, 204 without (or 202)
    _is_outcome(get(s, f"{base}/Patient/{pid}"), 410)

    # instance history: 3 versions, newest first, the delete has no resource
    r = get(s, f"{base}/Patient/{pid}/_history")
    assert r.status_code == 200
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["total"] == 3
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in entries[0] and entries[0]["request"]["method"] == "DELETE"
    assert entries[1]["resource"]["gender"] == "other"
    assert entries[2]["resource"]["gender"] == "female"

    # vread of each version
    r1 = get(s, f"{base}/Patient/{pid}/_history/1")
    assert r1.status_code == 200 and r1.json() == created and r1.headers["ETag"] == 'W/"1"'
    r2 = get(s, f"{base}/Patient/{pid}/_history/2")
    assert r2.status_code == 200 and r2.json()["gender"] == "other" and r2.json()["meta"]["versionId"] == "2"
    _is_outcome(get(s, f"{base}/Patient/{pid}/_history/3"), 410)     # the version is a deletion
    _is_outcome(get(s, f"{base}/Patient/{pid}/_history/4"), 404)

    # type and system history contain all three versions
    for url in (f"{base}/Patient/_history", f"{base}/_history"):
        entries = all_entries(s, url, params={"_since": v1_updated, "_count": "100"})
        mine = [e["response"]["etag"] for e in entries if e["fullUrl"] == f"{base}/Patient/{pid}"]
        assert mine == ['W/"3"', 'W/"2"', 'W/"1"'], url


def test_conditional_create_is_idempotent(base):
    s = session()
    value = uuid.uuid4().hex
    p = _patient(identifier=[{"system": "urn:medport:test", "value": value}])
    criteria = {"If-None-Exist": f"identifier=urn:medport:test|{value}"}
    r1 = post(s, f"{base}/Patient", p, headers=criteria)
    assert r1.status_code == 201, r1.text
    r2 = post(s, f"{base}/Patient", p, headers=criteria)
    assert r2.status_code == 200, r2.text
    assert r2.json()["id"] == r1.json()["id"]
    assert r2.json()["meta"]["versionId"] == "1"
    r = get(s, f"{base}/Patient", params={"identifier": f"urn:medport:test|{value}"})
    assert r.status_code == 200 and r.json()["total"] == 1


def test_update_as_create_with_client_id(base):
    s = session()
    pid = "bb-" + uuid.uuid4().hex
    r = put(s, f"{base}/Patient/{pid}", _patient(id=pid))
    assert r.status_code == 201, r.text
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"] == f"{base}/Patient/{pid}/_history/1"
    assert get(s, f"{base}/Patient/{pid}").json()["id"] == pid


def test_request_id_is_echoed_or_generated(base):
    s = session()
    r = get(s, f"{base}/metadata", headers={"X-Request-Id": "client-req.42"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "client-req.42"
    r = get(s, f"{base}/Patient/does-not-exist", headers={"X-Request-Id": "client-req.43"})
    assert r.status_code == 404 and r.headers["X-Request-Id"] == "client-req.43"
    a = get(s, f"{base}/metadata").headers.get("X-Request-Id")
    b = get(s, f"{base}/metadata").headers.get("X-Request-Id")
    assert a and b and a != b
    # an id that is not a safe token is replaced by a generated one
    r = get(s, f"{base}/metadata", headers={"X-Request-Id": "bad id\twith spaces"})
    assert re.fullmatch(r"[A-Za-z0-9._\-]{8,128}", r.headers["X-Request-Id"])


def test_history_count_zero_gives_only_the_total(base):
    """_count=0 asks for the count only (search.html#count); it must not be a 500."""
    s = session()
    post(s, f"{base}/Patient", _patient())
    r = get(s, f"{base}/_history", params={"_count": "0"})
    assert r.status_code == 200, r.text
    assert r.json()["total"] >= 1 and not r.json().get("entry")


def test_search_count_zero_gives_only_the_total(base):
    """_count=0 on a search: a Bundle with the total and no entries (search.html#count), not a 500."""
    s = session()
    value = uuid.uuid4().hex
    post(s, f"{base}/Patient", _patient(identifier=[{"system": "urn:medport:count0", "value": value}]))
    r = get(s, f"{base}/Patient", params={"identifier": f"urn:medport:count0|{value}", "_count": "0"})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1 and not r.json().get("entry")
