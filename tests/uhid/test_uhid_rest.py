"""The UHID through the FHIR API, on every store: issued, checked, unique, permanent, searchable."""
from __future__ import annotations

import itertools
import threading

import pytest

from fhirserver.uhid import number
from tests._uhid import TEST_SYSTEM, uhid_for, uhid_in
from tests.conftest import FHIR_JSON, patient, post

H = {"Content-Type": FHIR_JSON}


def find(client, value: str, system: str = TEST_SYSTEM) -> list[str]:
    r = client.get("/fhir/Patient", query_string={"identifier": f"{system}|{value}"})
    assert r.status_code == 200, r.json
    return [e["resource"]["id"] for e in r.json.get("entry", [])]


def test_create_without_a_uhid_is_issued_one(client):
    r = post(client, patient())
    assert r.status_code == 201
    [ident] = [i for i in r.json["identifier"] if i["system"] == TEST_SYSTEM]
    assert number.canonical(ident["value"]) == ident["value"]
    assert ident["type"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI",
                                          "display": "National unique individual identifier"}
    assert ident["use"] == "official" and ident["assigner"]["display"]
    assert client.get(f"/fhir/Patient/{r.json['id']}").json["identifier"] == r.json["identifier"]


def test_a_supplied_uhid_in_any_form_is_stored_canonical_and_found_in_any_form(client):
    uhid = uhid_for("typed")
    digits = uhid.replace("-", "")
    r = post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": f" {digits[:4]} {digits[4:]} "}]))
    assert r.status_code == 201 and uhid_in(r.json) == uhid
    pid = r.json["id"]
    for typed in (uhid, digits, f"{digits[:2]} {digits[2:6]} {digits[6:10]} {digits[10:]}", uhid.replace("-", "–")):
        assert find(client, typed) == [pid], typed
    assert [e["resource"]["id"] for e in client.get("/fhir/Patient", query_string={"identifier": uhid}).json["entry"]] == [pid]
    r = client.get("/fhir/Observation", query_string={"subject:Patient.identifier": f"{TEST_SYSTEM}|{digits}"})
    assert r.status_code == 200 and r.json["total"] == 0


@pytest.mark.parametrize("bad, reason", [("12-3456-7890", "10 digits"), ("UHID-123", "only digits"),
                                         ("bad-check", None)])
def test_a_malformed_uhid_is_refused_with_its_reason_and_nothing_is_stored(client, bad, reason):
    if bad == "bad-check":
        good = uhid_for("x").replace("-", "")
        bad, reason = good[:13] + str((int(good[13]) + 1) % 10), "check digit"
    r = post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": bad}]))
    assert r.status_code == 422 and reason in r.json["issue"][0]["diagnostics"] and bad in r.json["issue"][0]["diagnostics"]
    assert r.json["issue"][0]["expression"] == ["Patient.identifier[0].value"]
    assert client.get("/fhir/Patient").json["total"] == 0
    r = client.get("/fhir/Patient", query_string={"identifier": f"{TEST_SYSTEM}|{bad}"})
    assert r.status_code == 400 and bad in r.json["issue"][0]["diagnostics"] and reason in r.json["issue"][0]["diagnostics"]


def test_a_used_uhid_cannot_be_given_to_a_second_patient(client):
    uhid = uhid_for("taken")
    assert post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": uhid}])).status_code == 201
    r = post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": uhid.replace("-", "")}]))
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "duplicate" and uhid in r.json["issue"][0]["diagnostics"]
    r = post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": uhid}, {"system": TEST_SYSTEM, "value": uhid_for("y")}]))
    assert r.status_code == 422 and "exactly one UHID" in r.json["issue"][0]["diagnostics"]
    assert len(find(client, uhid)) == 1


def test_a_uhid_is_permanent(client):
    created = post(client, patient()).json
    pid, uhid = created["id"], uhid_in(created)
    without = {**created, "identifier": [{"system": "urn:mrn", "value": "1"}]}
    r = client.put(f"/fhir/Patient/{pid}", json=without, headers=H)
    assert r.status_code == 422 and uhid in r.json["issue"][0]["diagnostics"] and "permanent" in r.json["issue"][0]["diagnostics"]
    changed = {**created, "identifier": [{"system": TEST_SYSTEM, "value": uhid_for("other")}]}
    r = client.put(f"/fhir/Patient/{pid}", json=changed, headers=H)
    assert r.status_code == 422 and "cannot become" in r.json["issue"][0]["diagnostics"]
    r = client.patch(f"/fhir/Patient/{pid}", json=[{"op": "remove", "path": "/identifier"}],
                     headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 422 and uhid in r.json["issue"][0]["diagnostics"]
    # the same UHID in another form is no change; other fields may change
    same = {**created, "gender": "female", "identifier": [{"system": TEST_SYSTEM, "value": uhid.replace("-", " ")}]}
    r = client.put(f"/fhir/Patient/{pid}", json=same, headers=H)
    assert r.status_code == 200 and uhid_in(r.json) == uhid and r.json["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{pid}/_history").json["total"] == 2


def test_a_deleted_patients_uhid_is_never_issued_again(client):
    created = post(client, patient()).json
    uhid = uhid_in(created)
    # http.html#delete allows 200 (with a body), 204 (without) or 202: any success
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code in (200, 204)
    r = post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": uhid}]))
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "duplicate"
    # the same patient brought back keeps their UHID, whether the body carries it or not
    r = client.put(f"/fhir/Patient/{created['id']}", json={k: v for k, v in created.items() if k != "meta"}, headers=H)
    assert r.status_code == 201 and uhid_in(r.json) == uhid
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code in (200, 204)
    r = client.put(f"/fhir/Patient/{created['id']}", json={"resourceType": "Patient", "id": created["id"]}, headers=H)
    assert r.status_code == 201 and uhid_in(r.json) == uhid and find(client, uhid) == [created["id"]]
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code in (200, 204)
    other = {"resourceType": "Patient", "id": created["id"], "identifier": [
        {"system": TEST_SYSTEM, "value": uhid_for("another")}]}
    r = client.put(f"/fhir/Patient/{created['id']}", json=other, headers=H)
    assert r.status_code == 422 and "permanent" in r.json["issue"][0]["diagnostics"]


def test_a_drawn_number_that_is_taken_is_drawn_again(client, monkeypatch):
    taken = post(client, patient()).json
    fresh = uhid_for("fresh")
    draws = iter([uhid_in(taken), uhid_in(taken), fresh])
    monkeypatch.setattr(number, "generate", lambda: next(draws))
    r = post(client, patient())
    assert r.status_code == 201 and uhid_in(r.json) == fresh
    assert find(client, fresh) == [r.json["id"]] and find(client, uhid_in(taken)) == [taken["id"]]


def test_concurrent_creates_never_share_a_uhid(client, monkeypatch):
    """Twenty creates at once drawing from a pool of 30 numbers: draws collide often; each collision
    is drawn again inside the store's unique claim, so every patient ends with its own UHID."""
    pool = [uhid_for(f"pool-{i}") for i in range(30)]
    lock, counter = threading.Lock(), itertools.count()

    def draw():
        with lock:
            return pool[(next(counter) * 7) % len(pool)]     # revisits numbers: forced collisions
    monkeypatch.setattr(number, "generate", draw)
    results, barrier = [], threading.Barrier(20)

    def register(n):
        barrier.wait()
        results.append(post(client, patient(name=[{"family": f"P{n}"}])))
    threads = [threading.Thread(target=register, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201] * 20
    uhids = [uhid_in(r.json) for r in results]
    assert len(set(uhids)) == 20
    for r in results:
        assert find(client, uhid_in(r.json)) == [r.json["id"]]


def test_transactions_and_conditional_references_by_uhid(client):
    uhid = uhid_for("push")
    digits = uhid.replace("-", "")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b1e6a5c-2f0e-4c41-9d7c-0d6f5cbb7a01", "resource": patient(
            identifier=[{"system": TEST_SYSTEM, "value": digits}]), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(name=[{"family": "Other"}]), "request": {"method": "POST", "url": "Patient"}}]}
    r = client.post("/fhir", json=bundle, headers=H)
    assert r.status_code == 200, r.json
    pid = r.json["entry"][0]["response"]["location"].split("/")[1]
    other = client.get("/" + "fhir/" + "/".join(r.json["entry"][1]["response"]["location"].split("/")[:2])).json
    assert uhid_in(other) != uhid
    # a hospital pushes a report for the patient by UHID alone, typed its own way
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
              "subject": {"reference": f"Patient?identifier={TEST_SYSTEM}|{digits[:2]} {digits[2:]}"}}
    r = post(client, report)
    assert r.status_code == 201 and r.json["subject"]["reference"] == f"Patient/{pid}"
    unknown = uhid_for("nobody")
    r = post(client, {**report, "subject": {"reference": f"Patient?identifier={TEST_SYSTEM}|{unknown}"}})
    assert r.status_code == 412 and unknown in r.json["issue"][0]["diagnostics"] and "no Patient" in r.json["issue"][0]["diagnostics"]
    r = post(client, {**report, "subject": {"reference": f"Patient?identifier={TEST_SYSTEM}|{digits[:13]}"}})
    assert r.status_code == 400 and digits[:13] in r.json["issue"][0]["diagnostics"]
    # a transaction giving two new patients the same UHID stores neither
    dup = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(identifier=[{"system": TEST_SYSTEM, "value": uhid_for("twice")}]),
         "request": {"method": "POST", "url": "Patient"}} for _ in range(2)]}
    assert client.post("/fhir", json=dup, headers=H).status_code == 422
    assert find(client, uhid_for("twice")) == []


def test_other_national_identifiers_sit_beside_it_and_are_searchable(client):
    abha = {"system": "https://healthid.ndhm.gov.in", "value": "91-7612-3456-7890"}
    aadhaar = {"system": "http://uidai.gov.in/aadhaar", "value": "2345 6789 0123"}
    r = post(client, patient(identifier=[abha, aadhaar]))
    assert r.status_code == 201 and [i["system"] for i in r.json["identifier"]][:2] == [abha["system"], aadhaar["system"]]
    assert find(client, abha["value"], abha["system"]) == [r.json["id"]]
    assert find(client, aadhaar["value"], aadhaar["system"]) == [r.json["id"]]


def test_the_naming_system_documents_the_uhid(client):
    r = client.get("/fhir/NamingSystem", query_string={"value": TEST_SYSTEM})
    [entry] = r.json["entry"]
    ns = entry["resource"]
    assert ns["id"] == "uhid" and ns["kind"] == "identifier" and ns["uniqueId"][0]["value"] == TEST_SYSTEM
    assert "Verhoeff" in ns["description"]


def test_load_issues_uhids(ctx, tmp_path):
    from fhirserver.loader import load
    (tmp_path / "p.ndjson").write_text('{"resourceType": "Patient", "name": [{"family": "Loaded"}]}\n')
    report = load(ctx, [str(tmp_path / "p.ndjson")])
    assert not report.failures
    from fhirserver.search.parse import parse_search
    [v] = ctx.store.search("Patient", parse_search("Patient", [("family", "Loaded")]).query).items
    from fhirserver import jsonio
    assert number.canonical(uhid_in(jsonio.loads(v.body)))


def test_a_patch_may_point_a_record_at_a_patient_by_uhid(client):
    uhid = uhid_for("patched")
    pid = post(client, patient(identifier=[{"system": TEST_SYSTEM, "value": uhid}])).json["id"]
    oid = post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"}}).json["id"]
    r = client.patch(f"/fhir/Observation/{oid}", headers={"Content-Type": "application/json-patch+json"}, json=[
        {"op": "add", "path": "/subject", "value": {"reference": f"Patient?identifier={TEST_SYSTEM}|{uhid}"}}])
    assert r.status_code == 200 and r.json["subject"]["reference"] == f"Patient/{pid}"
