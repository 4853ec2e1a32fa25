"""System search without _type (http.html#search "GET [base]?[parameters]", search.html#all:
search across all resource types), which the CapabilityStatement advertises (search-system):
every type the store holds, with the parameters common to all types; paged across types by a
cursor that stays valid when a type gets its first resource between pages. Each type is searched
through the request's repository, so a token sees across types only what it sees type by type."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.conftest import post
from tests.scheduling._world import World

TAG = {"system": "http://medport.test/tags", "code": "all-types"}
TAGGED = "_tag=http://medport.test/tags|all-types"       # every request writes AuditEvents: walk only ours


def tagged(resource: dict) -> dict:
    return {**resource, "meta": {"tag": [TAG]}}


def _walk(client, url, headers=None):
    seen, pages = [], []
    while url:
        r = client.get(url, headers=headers or {})
        assert r.status_code == 200, r.json
        page = r.json
        pages.append(page)
        seen += [(e["resource"]["resourceType"], e["resource"]["id"]) for e in page.get("entry", [])
                 if e["search"]["mode"] == "match"]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://fhir.test", "") if nxt else None
    return seen, pages


def _self(bundle):
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    return parse_qsl(urlsplit(url).query)


def test_every_type_is_searched_with_common_parameters(client):
    made = {("Patient", post(client, {"resourceType": "Patient", "name": [{"family": "Sharma"}]}).json["id"]),
            ("Organization", post(client, {"resourceType": "Organization", "name": "AIIMS"}).json["id"]),
            ("Observation", post(client, {"resourceType": "Observation", "status": "final",
                                          "code": {"text": "Hb"}}).json["id"])}
    r = client.get("/fhir?_lastUpdated=gt2000-01-01")
    assert r.status_code == 200, r.json
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in r.json["entry"]}
    assert made <= found and r.json["total"] == len(found)
    assert ("_type", "") not in _self(r.json) and dict(_self(r.json))["_lastUpdated"] == "gt2000-01-01"
    pid = next(i for t, i in made if t == "Patient")
    r = client.get(f"/fhir?_id={pid}")
    assert [(e["resource"]["resourceType"], e["resource"]["id"]) for e in r.json["entry"]] == [("Patient", pid)]
    assert r.json["total"] == 1
    assert client.get("/fhir?_lastUpdated=lt2000-01-01").json["total"] == 0
    r = client.post("/fhir/_search", data={"_id": pid})
    assert r.status_code == 200 and r.json["total"] == 1


def test_a_parameter_only_some_types_know_is_refused(client):
    r = client.get("/fhir?name=sharma")
    assert r.status_code == 400 and "common" in r.json["issue"][0]["diagnostics"]
    assert client.get("/fhir?_sort=_id").status_code == 400


def test_paging_across_types_sees_each_resource_once(client):
    for n in range(3):
        post(client, tagged({"resourceType": "Patient", "name": [{"family": f"P{n}"}]}))
        post(client, tagged({"resourceType": "Practitioner", "name": [{"family": f"D{n}"}]}))
    seen, pages = _walk(client, f"/fhir?_count=2&{TAGGED}")
    assert len(seen) == len(set(seen)) == 6
    assert {p.get("total") for p in pages} == {6}
    # a type getting its first resource between pages shifts nothing already walked
    first = client.get(f"/fhir?_count=4&{TAGGED}").json
    post(client, tagged({"resourceType": "Account", "status": "active"}))      # sorts before Patient
    nxt = [link["url"] for link in first["link"] if link["relation"] == "next"][0].replace("http://fhir.test", "")
    rest, _ = _walk(client, nxt)
    got = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in first["entry"]] + rest
    assert len(got) == len(set(got)) and set(seen) <= set(got)


def test_a_hospital_sees_across_types_what_it_sees_type_by_type(tmp_path, backend):
    w = World(tmp_path, backend)
    ids = ",".join(["loc-a", "loc-b", "prac-a", "prac-b", "sched-a", "sched-b", "hosp-a", "hosp-b",
                    w.asha, w.ravi, w.son])
    types = ("Location", "Practitioner", "Schedule", "Patient", "Organization", "RelatedPerson")
    answers = {}
    for name, token in (("a", w.a), ("b", w.b), ("asha", w.asha_token)):
        headers = {"Authorization": f"Bearer {token}"}
        seen, _ = _walk(w.http, f"/fhir?_id={ids}&_count=3", headers)
        assert len(seen) == len(set(seen))
        by_type = set()
        for rtype in types:
            part, _ = _walk(w.http, f"/fhir/{rtype}?_id={ids}", headers)
            by_type |= set(part)
        assert set(seen) == by_type and seen
        answers[name] = set(seen)
    assert answers["asha"] == {("Patient", w.asha), ("RelatedPerson", w.son)}     # her compartment only
    assert not {t for t, _ in answers["a"]} & {"Patient", "RelatedPerson"}       # held by no hospital
    assert ("Location", "loc-a") in answers["a"] and ("Location", "loc-b") in answers["a"]   # a public directory


def test_count_zero_answers_the_total_without_a_next_page(client):
    for rtype in ("Patient", "Practitioner"):
        post(client, tagged({"resourceType": rtype, "name": [{"family": "X"}]}))
    for url in (f"/fhir?{TAGGED}&_count=0", f"/fhir?_type=Patient,Practitioner&{TAGGED}&_count=0"):
        r = client.get(url).json
        assert r["total"] == 2 and "entry" not in r
        assert [link["relation"] for link in r["link"]] == ["self"], r["link"]


def test_an_include_applies_to_its_source_type(client):
    org = post(client, tagged({"resourceType": "Organization", "name": "AIIMS"})).json["id"]
    pid = post(client, tagged({"resourceType": "Patient", "managingOrganization": {"reference": f"Organization/{org}"}})).json["id"]
    post(client, tagged({"resourceType": "Practitioner", "name": [{"family": "D"}]}))
    for start, n in ((f"/fhir?{TAGGED}&_include=Patient:organization&_count=1", 3),
                     (f"/fhir?_type=Practitioner,Patient&{TAGGED}&_include=Patient:organization&_count=1", 2)):
        url, pages, entries = start, 0, []
        while url:
            page = client.get(url)
            assert page.status_code == 200, page.json
            pages += 1
            entries += [(e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"])
                        for e in page.json.get("entry", ())]
            nxt = [link["url"] for link in page.json["link"] if link["relation"] == "next"]
            url = nxt[0].replace("http://fhir.test", "") if nxt else None
        assert ("include", "Organization", org) in entries and ("match", "Patient", pid) in entries
        matches = [e for e in entries if e[0] == "match"]
        assert len(matches) == len(set(matches)) == n
    assert client.get(f"/fhir?_type=Practitioner,Patient&{TAGGED}&_include=Encounter:subject").status_code == 400
    # without _type every type is searched: whether the store holds one is no reason for a 400
    r = client.get(f"/fhir?{TAGGED}&_include=Encounter:subject")
    assert r.status_code == 200 and ("_include", "Encounter:subject") in _self(r.json)


SAMPLE = {"token": "http://medport.test/tags|x", "date": "gt2000-01-01", "uri": "http://medport.test/p",
          "reference": "Organization/x", "string": "x"}


def test_the_capability_statement_advertises_what_a_search_over_all_types_takes(client):
    rest = client.get("/fhir/metadata").json["rest"][0]
    advertised = {p["name"]: p["type"] for p in rest["searchParam"]}
    assert {"_type", "_id", "_lastUpdated", "_tag", "_profile", "_security"} <= set(advertised)
    for name, kind in advertised.items():
        if name == "_type":
            continue
        r = client.get("/fhir", query_string={name: SAMPLE[kind]}, headers={"Prefer": "handling=strict"})
        assert r.status_code == 200, (name, r.json)
