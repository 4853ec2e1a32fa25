"""Conditional create, update and delete with the spec's 0/1/many outcomes (http.html#ccreate, #cond-update, #cdelete)."""
from __future__ import annotations

from tests._uhid import uhid_identifier
from tests.conftest import FHIR_JSON, patient, post

SYS = "https://medport.example/sid/uhid"


def ident(value):
    return {"identifier": [{"system": SYS, "value": value}]}


def ident_kept(value):
    """An identifier to match on, and a UHID that stays the same when the Patient is written again."""
    return {"identifier": [{"system": SYS, "value": value}, uhid_identifier(value)]}


def test_conditional_create(client):
    r1 = post(client, patient(**ident("1")), **{"If-None-Exist": f"identifier={SYS}|1"})
    r2 = post(client, patient(**ident("1")), **{"If-None-Exist": f"identifier={SYS}|1"})
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json["id"] == r2.json["id"]
    post(client, patient(**ident("1")))   # a duplicate made without the condition
    r3 = post(client, patient(**ident("1")), **{"If-None-Exist": f"identifier={SYS}|1"})
    assert r3.status_code == 412


def test_conditional_create_by_id_and_bad_criteria(client):
    pid = post(client, patient()).json["id"]
    assert post(client, patient(), **{"If-None-Exist": f"_id={pid}"}).status_code == 200
    assert post(client, patient(), **{"If-None-Exist": "family=sharma&birthdate=1950-04-02"}).status_code == 200
    assert post(client, patient(), **{"If-None-Exist": "shoe-size=9"}).status_code == 400


def test_conditional_update(client):
    url = f"/fhir/Patient?identifier={SYS}|7"
    r = client.put(url, json=patient(**ident_kept("7")), headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201
    pid = r.json["id"]
    r = client.put(url, json=patient(gender="female", **ident_kept("7")), headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200 and r.json["id"] == pid and r.json["meta"]["versionId"] == "2"
    r = client.put(url, json=patient(id="someone-else", **ident_kept("7")), headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400
    post(client, patient(**ident("7")))     # a second patient with that identifier (and its own UHID)
    r = client.put(url, json=patient(**ident_kept("7")), headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 412


def test_conditional_update_no_match_with_client_id(client):
    r = client.put(f"/fhir/Patient?identifier={SYS}|9", json=patient(id="p9", **ident("9")),
                   headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201 and r.json["id"] == "p9"


def test_conditional_delete(client):
    pid = post(client, patient(**ident("5"))).json["id"]
    assert client.delete(f"/fhir/Patient?identifier={SYS}|5").status_code == 204
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410
    assert client.delete(f"/fhir/Patient?identifier={SYS}|5").status_code == 204   # no match
    post(client, patient(**ident("6")))
    post(client, patient(**ident("6")))
    assert client.delete(f"/fhir/Patient?identifier={SYS}|6").status_code == 412
    assert client.delete("/fhir/Patient").status_code == 400


def test_identifier_search(client):
    a = post(client, patient(**ident("A"))).json["id"]
    post(client, patient(identifier=[{"value": "A"}]))
    bundle = client.get(f"/fhir/Patient?identifier={SYS}|A").json
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["id"] == a and bundle["entry"][0]["search"]["mode"] == "match"
    assert client.get("/fhir/Patient?identifier=A").json["total"] == 2
    assert client.get("/fhir/Patient?identifier=|A").json["total"] == 1
    assert client.get(f"/fhir/Patient?identifier={SYS}|").json["total"] == 1


def test_unknown_search_parameter(client):
    r = client.get("/fhir/Patient?shoe-size=9", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400 and "shoe-size" in r.json["issue"][0]["diagnostics"]
    for prefer in ({"Prefer": "handling=lenient"}, {}):                 # lenient is the default (search.html)
        r = client.get("/fhir/Patient?shoe-size=9", headers=prefer)
        assert r.status_code == 200 and "shoe-size" not in r.json["link"][0]["url"]


def test_search_paging(client):
    for i in range(5):
        post(client, patient(**ident(f"page-{i}")))
    seen, url = [], "/fhir/Patient?_count=2"
    while url:
        bundle = client.get(url).json
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://fhir.test", "") if nxt else None
    assert len(seen) == 5 == len(set(seen))
