"""history at instance, type and system level (http.html#history)."""
from __future__ import annotations

from fhirserver.conformance import seed
from tests.conftest import patient, post, put


def _data(entries) -> list[tuple]:
    """(type, id of a Patient, version) of each entry, AuditEvents and the definitions the init step writes
    (conformance/seed.py) left out."""
    out = []
    for e in entries:
        r = e["resource"]
        if r["resourceType"] != "AuditEvent" and f"{r['resourceType']}/{r['id']}" not in seed.keys():
            out.append((r["resourceType"], r["id"] if r["resourceType"] == "Patient" else None, r["meta"]["versionId"]))
    return out


def test_levels_and_paging(client):
    p = post(client, patient()).json
    put(client, {**p, "gender": "male"})
    post(client, {"resourceType": "Organization", "name": "City Hospital"})
    assert client.get(f"/fhir/Patient/{p['id']}/_history").json["total"] == 2
    assert client.get("/fhir/Patient/_history").json["total"] == 2
    system = client.get("/fhir/_history").json
    assert system["type"] == "history" and len(system["entry"]) == system["total"]    # one page holds it all
    # every request, these reads too, leaves AuditEvents (docs/audit.md) interleaved in the system
    # history: the data are compared without them. Each write's Provenance (governance/provenance.py)
    # and the server's NamingSystem/uhid, newest first:
    data = _data(system["entry"])
    assert data == [("Provenance", None, "1"), ("Organization", None, "1"), ("Provenance", None, "1"),
                    ("Patient", p["id"], "2"), ("Provenance", None, "1"), ("Patient", p["id"], "1"),
                    ("NamingSystem", None, "1")]
    page = client.get("/fhir/_history?_count=2").json
    assert len(page["entry"]) == 2
    paged = _data(page["entry"])
    while nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        page = client.get(nxt.replace("http://fhir.test", "")).json
        assert 0 < len(page["entry"]) <= 2
        paged += _data(page["entry"])
    assert paged == data        # the pages, followed to the end, give the same data in the same order


def test_since(client):
    first = post(client, patient()).json
    second = post(client, patient()).json
    since = second["meta"]["lastUpdated"]
    ids = [e["resource"]["id"] for e in client.get(f"/fhir/Patient/_history?_since={since}").json["entry"]]
    assert ids == [second["id"]] and first["id"] not in ids


def test_bad_history_parameters(client):
    assert client.get("/fhir/_history?_since=yesterday").status_code == 400
    assert client.get("/fhir/_history?_count=-1").status_code == 400
    assert client.get("/fhir/_history?foo=1", headers={"Prefer": "handling=strict"}).status_code == 400
    assert client.get("/fhir/_history?_at=2020").status_code == 400          # known to R4, not supported
    assert client.get("/fhir/Patient/none/_history").status_code == 404
