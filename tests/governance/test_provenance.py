"""Provenance of every write (governance/provenance.py), on both stores: written in the write's own
transaction, targeting the exact versions written, one per patient touched; X-Provenance merged or
refused (400, nothing stored); Provenance read-only to clients; atomic under injected failures."""
from __future__ import annotations

import json
import os

import pytest

from fhirserver.governance import provenance
from fhirserver.governance.provenance import DATA_OPERATION, PATIENT_LINK, SERVER_NAME
from fhirserver.interactions import common
from fhirserver.loader import load
from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON, patient, post, put
from tests.smart_auth._tokens import BASE, auth, make_app, mint

SYNTHEA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "synthea",
                       "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json")
ORG = "Organization/hosp-a"


def obs(pid: str, text: str = "x") -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": f"Patient/{pid}"}}


def provenances(client, headers=None) -> list[dict]:
    r = client.get("/fhir/Provenance?_count=500", headers=headers or {})
    assert r.status_code == 200, r.get_json()
    return [e["resource"] for e in r.get_json().get("entry", ())]


def about(client, ref: str, headers=None) -> list[dict]:
    """Provenance whose targets name ref (any version)."""
    return [p for p in provenances(client, headers)
            if any(t["reference"].startswith(ref + "/_history/") for t in p["target"])]


def versioned(p: dict) -> set[str]:
    return {t["reference"] for t in p["target"] if "/_history/" in t["reference"]}


def links(p: dict) -> set[str]:
    return {t["reference"] for t in p["target"] if any(x["url"] == PATIENT_LINK for x in t.get("extension", ()))}


def activity(p: dict) -> str:
    return next(c["code"] for c in p["activity"]["coding"] if c["system"] == DATA_OPERATION)


def count(client, rtype: str, headers=None) -> int:
    return client.get(f"/fhir/{rtype}?_summary=count", headers=headers or {}).get_json()["total"]


# ---- every interaction -------------------------------------------------------------------------------

def test_create_update_patch_delete_each_write_one_provenance_of_the_exact_version(client):
    pid = post(client, patient()).get_json()["id"]
    created = post(client, obs(pid)).get_json()
    oid, key = created["id"], f"Observation/{created['id']}"
    [p] = about(client, key)
    assert versioned(p) == {f"{key}/_history/1"} and links(p) == {f"Patient/{pid}"}
    assert activity(p) == "CREATE" and p["recorded"] == created["meta"]["lastUpdated"]
    assert p["agent"] == [{"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "author",
                                                "display": "Author"}]},
                           "who": {"type": "Device", "display": SERVER_NAME}}]
    # the Patient's own Provenance: its version is the target, no extra link
    [pp] = about(client, f"Patient/{pid}")
    assert versioned(pp) == {f"Patient/{pid}/_history/1"} and not links(pp)
    assert client.get(f"/fhir/Provenance?patient={pid}").get_json()["total"] == 2

    updated = put(client, {**created, "status": "amended"}).get_json()
    assert updated["meta"]["versionId"] == "2"
    r = client.patch(f"/fhir/{key}", json=[{"op": "replace", "path": "/status", "value": "corrected"}],
                     headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200 and r.get_json()["meta"]["versionId"] == "3"
    assert client.delete(f"/fhir/{key}").status_code == 204
    by_version = {next(iter(versioned(p))): p for p in about(client, key)}
    assert set(by_version) == {f"{key}/_history/{n}" for n in (1, 2, 3, 4)}     # one each, nothing more
    assert [activity(by_version[f"{key}/_history/{n}"]) for n in (1, 2, 3, 4)] == \
        ["CREATE", "UPDATE", "UPDATE", "DELETE"]
    assert by_version[f"{key}/_history/2"]["recorded"] == updated["meta"]["lastUpdated"]
    assert all(links(p) == {f"Patient/{pid}"} for p in by_version.values())    # the delete's too
    # nothing is written for what writes nothing
    assert client.delete(f"/fhir/Observation/{oid}").status_code == 204
    assert len(about(client, key)) == 4


def test_a_resource_about_no_patient_has_one_provenance_without_patient_link(client):
    org = post(client, {"resourceType": "Organization", "name": "City"}).get_json()
    [p] = about(client, f"Organization/{org['id']}")
    assert versioned(p) == {f"Organization/{org['id']}/_history/1"} and not links(p)
    assert client.get(f"/fhir/Provenance?patient:missing=true&target=Organization/{org['id']}").get_json()["total"] == 1


def test_a_transaction_touching_two_patients_writes_two(client):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:a0000000-0000-4000-8000-000000000001", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:a0000000-0000-4000-8000-000000000002", "resource": patient(gender="male"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**obs("x"), "subject": {"reference": "urn:uuid:a0000000-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": {**obs("x"), "subject": {"reference": "urn:uuid:a0000000-0000-4000-8000-000000000002"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.get_json()
    written = [e["response"]["location"] for e in r.get_json()["entry"]]   # Type/id/_history/1
    ps = provenances(client)
    assert len(ps) == 2
    assert sorted(sorted(versioned(p)) for p in ps) == sorted([sorted(written[0::2]), sorted(written[1::2])])
    assert all(activity(p) == "CREATE" and not links(p) for p in ps)


# ---- agents: the token's user, client, organisation, proxy ---------------------------------------------

@pytest.fixture
def secured(tmp_path, backend):
    app = make_app(tmp_path, backend)
    return app, app.test_client()


def practitioner(app, organization: str | None = None) -> str:
    """A token of the user dr (Practitioner/dr-1), with an account as every user token needs."""
    Users(app.config["MEDPORT"].store).add("dr", "long enough pw", "practitioner", "Practitioner/dr-1", organization)
    return mint(app, "user/*.cruds", subject="dr", client_id="ehr", role="practitioner",
                fhirUser=f"{BASE}/Practitioner/dr-1", organization=organization)


def send(client, token, method, url, body=None, **headers):
    return client.open(url, method=method, data=None if body is None else json.dumps(body),
                       headers={**auth(token), "Content-Type": FHIR_JSON, **headers})


def test_the_author_is_the_tokens_user_or_client_and_the_custodian_its_organisation(secured):
    app, client = secured
    staff = practitioner(app, ORG)
    system = mint(app, "system/*.cruds", client_id="lab-system", organization=ORG)
    admin = mint(app, "system/*.cruds", client_id="exchange")
    send(client, admin, "PUT", "/fhir/Organization/hosp-a", {"resourceType": "Organization", "id": "hosp-a"})
    pid = send(client, system, "POST", "/fhir/Patient", patient()).get_json()["id"]
    oid = send(client, staff, "POST", "/fhir/Observation", obs(pid)).get_json()["id"]
    [by_system] = about(client, f"Patient/{pid}", auth(admin))
    [by_staff] = about(client, f"Observation/{oid}", auth(admin))
    author = {"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "author", "display": "Author"}]}}
    holder = {"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "custodian", "display": "Custodian"}]},
              "who": {"reference": ORG}}
    assert by_staff["agent"] == [{**author, "who": {"reference": "Practitioner/dr-1"}}, holder]
    assert by_system["agent"] == [{**author, "who": {"identifier": {"system": f"{BASE}/sid/client",
                                                                    "value": "lab-system"}}}, holder]
    # the Provenance is held by the writer's organisation, like what it describes
    assert all(x["valueReference"]["reference"] == ORG for x in by_staff["meta"]["extension"]
               if x["url"].endswith("/custodian"))


def test_a_proxy_author_acts_on_behalf_of_the_patient(app):
    from fhirserver.smart_auth.access import Access
    from fhirserver.smart_auth.scopes import Grants
    ctx = app.config["MEDPORT"]
    claims = {"scope": "patient/*.cruds", "patient": "p1", "role": "related-person",
              "fhirUser": f"{BASE}/RelatedPerson/rp-1", "client_id": "app"}
    proxy = ctx.acting_as(Access(Grants.parse(claims["scope"]), "p1", claims))
    [author] = provenance._agents(proxy, None)
    assert author["who"] == {"reference": "RelatedPerson/rp-1"}
    assert author["onBehalfOf"] == {"reference": "Patient/p1"}


# ---- X-Provenance -------------------------------------------------------------------------------------

def test_x_provenance_is_merged_into_what_the_server_writes(secured):
    app, client = secured
    staff = practitioner(app)
    header = {"resourceType": "Provenance",
              "agent": [{"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "author"}]},
                         "role": [{"text": "attending"}], "who": {"reference": f"{BASE}/Practitioner/dr-1"}},
                        {"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "verifier"}]},
                         "who": {"reference": "Practitioner/dr-2"}}],
              "reason": [{"text": "follow-up"}], "activity": {"text": "transcribed"},
              "entity": [{"role": "source", "what": {"display": "paper chart"}}]}
    pid = send(client, staff, "POST", "/fhir/Patient", patient()).get_json()["id"]
    r = send(client, staff, "POST", "/fhir/Observation", obs(pid), **{"X-Provenance": json.dumps(header)})
    assert r.status_code == 201, r.get_json()
    [p] = about(client, f"Observation/{r.get_json()['id']}", auth(staff))
    assert [a["who"] for a in p["agent"]] == [{"reference": "Practitioner/dr-1"}, {"reference": "Practitioner/dr-2"}]
    assert p["agent"][0]["role"] == [{"text": "attending"}]
    assert p["reason"] == [{"text": "follow-up"}] and p["entity"] == header["entity"]
    assert activity(p) == "CREATE" and p["activity"]["text"] == "transcribed"
    # a transaction Bundle: the header goes into the Provenance of every patient touched
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs(pid), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Organization", "name": "x"}, "request": {"method": "POST", "url": "Organization"}}]}
    r = send(client, staff, "POST", "/fhir", bundle, **{"X-Provenance": json.dumps(header)})
    assert r.status_code == 200, r.get_json()
    for entry in r.get_json()["entry"]:
        [p] = about(client, entry["response"]["location"].rsplit("/_history/", 1)[0], auth(staff))
        assert p["reason"] == [{"text": "follow-up"}]


REFUSED = {
    "malformed JSON": "{not json",
    "not a Provenance": json.dumps({"resourceType": "Patient"}),
    "a target": json.dumps({"resourceType": "Provenance", "target": [{"reference": "Patient/x"}]}),
    "too long": json.dumps({"resourceType": "Provenance", "reason": [{"text": "x" * (9 * 1024)}]}),
    "another author": json.dumps({"resourceType": "Provenance", "agent": [
        {"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "author"}]},
         "who": {"reference": "Practitioner/someone-else"}}]}),
    "an untyped agent naming another": json.dumps({"resourceType": "Provenance", "agent": [
        {"who": {"identifier": {"system": f"{BASE}/sid/client", "value": "other-app"}}}]}),
    "invalid content": json.dumps({"resourceType": "Provenance", "reason": [{"text": 5}]}),
    # the custodian is the writer's organisation, named by the server: a header cannot add another
    "a custodian agent": json.dumps({"resourceType": "Provenance", "agent": [
        {"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "custodian"}]},
         "who": {"reference": "Organization/hosp-b"}}]}),
    "a custodian agent among its types": json.dumps({"resourceType": "Provenance", "agent": [
        {"type": {"coding": [{"system": provenance.PARTICIPANT, "code": "verifier"},
                             {"system": provenance.PARTICIPANT, "code": "custodian"}]},
         "who": {"reference": "Organization/hosp-a"}}]}),
}


@pytest.mark.parametrize("why", sorted(REFUSED))
def test_x_provenance_refusals_store_nothing(secured, why):
    app, client = secured
    staff = practitioner(app)
    pid = send(client, staff, "POST", "/fhir/Patient", patient()).get_json()["id"]
    before = count(client, "Provenance", auth(staff))
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": obs(pid), "request": {"method": "POST", "url": "Observation"}}]}
    stored = send(client, staff, "POST", "/fhir/Observation", obs(pid)).get_json()
    for method, url, body in (("POST", "/fhir/Observation", obs(pid)), ("POST", "/fhir", bundle),
                              ("PUT", f"/fhir/Observation/{stored['id']}", {**stored, "status": "amended"}),
                              ("DELETE", f"/fhir/Observation/{stored['id']}", None)):
        r = send(client, staff, method, url, body, **{"X-Provenance": REFUSED[why]})
        assert r.status_code == 400, (why, method, r.get_json())
        assert r.get_json()["resourceType"] == "OperationOutcome"
    r = client.patch(f"/fhir/Observation/{stored['id']}", json=[{"op": "replace", "path": "/status", "value": "amended"}],
                     headers={**auth(staff), "Content-Type": "application/json-patch+json", "X-Provenance": REFUSED[why]})
    assert r.status_code == 400
    assert count(client, "Observation", auth(staff)) == 1 and count(client, "Provenance", auth(staff)) == before + 1
    assert client.get(f"/fhir/Observation/{stored['id']}", headers=auth(staff)).get_json()["meta"]["versionId"] == "1"


# ---- read-only to clients -----------------------------------------------------------------------------

def test_clients_cannot_write_patch_or_delete_provenance(secured):
    app, client = secured
    token = mint(app, "system/*.cruds", client_id="ehr")
    pid = send(client, token, "POST", "/fhir/Patient", patient()).get_json()["id"]
    [p] = about(client, f"Patient/{pid}", auth(token))
    own = {"resourceType": "Provenance", "target": [{"reference": f"Patient/{pid}"}],
           "recorded": "2026-01-01T00:00:00Z", "agent": [{"who": {"reference": "Practitioner/x"}}]}
    assert send(client, token, "POST", "/fhir/Provenance", own).status_code == 403
    assert send(client, token, "PUT", f"/fhir/Provenance/{p['id']}", {**p, "reason": [{"text": "x"}]}).status_code == 403
    assert send(client, token, "PUT", "/fhir/Provenance/new-one", {**own, "id": "new-one"}).status_code == 403
    r = client.patch(f"/fhir/Provenance/{p['id']}", json=[{"op": "add", "path": "/reason", "value": [{"text": "x"}]}],
                     headers={**auth(token), "Content-Type": "application/json-patch+json"})
    assert r.status_code == 403
    assert send(client, token, "DELETE", f"/fhir/Provenance/{p['id']}").status_code == 403
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": own, "request": {"method": "POST", "url": "Provenance"}}]}
    assert send(client, token, "POST", "/fhir", bundle).status_code == 403
    assert about(client, f"Patient/{pid}", auth(token)) == [p]
    assert count(client, "Provenance", auth(token)) == 1


# ---- atomicity ----------------------------------------------------------------------------------------

class Injected(Exception):
    pass


def _request(fn):
    try:
        return fn().status_code
    except Injected:
        return 500


def test_a_failure_writing_the_provenance_leaves_neither(client, monkeypatch):
    pid = post(client, patient()).get_json()["id"]
    real = provenance.store

    def failing(tx, ctx, resource, id):
        real(tx, ctx, resource, id)       # written inside the unit, then the unit fails
        raise Injected("the Provenance write failed")

    monkeypatch.setattr(provenance, "store", failing)
    assert _request(lambda: post(client, obs(pid))) == 500
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs(pid), "request": {"method": "POST", "url": "Observation"}},
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}}]}
    assert _request(lambda: client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})) == 500
    assert _request(lambda: client.delete(f"/fhir/Patient/{pid}")) == 500
    monkeypatch.setattr(provenance, "store", real)
    assert count(client, "Observation") == 0 and count(client, "Patient") == 1
    assert client.get(f"/fhir/Patient/{pid}").status_code == 200
    assert count(client, "Provenance") == 1          # the Patient's, from before


def test_a_failure_writing_the_resource_leaves_no_provenance(client, monkeypatch):
    pid = post(client, patient()).get_json()["id"]
    real = common.store_new_version

    def failing(tx, p, id, method, current):
        version = real(tx, p, id, method, current)
        if p.type == "Observation":
            raise Injected("the resource write failed")
        return version

    monkeypatch.setattr("fhirserver.interactions.create.store_new_version", failing)
    assert _request(lambda: post(client, obs(pid))) == 500
    # a transaction whose last entry fails after the others were written and noted
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**patient(), "id": pid}, "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'}}]}
    assert client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON}).status_code == 412
    assert count(client, "Observation") == 0 and count(client, "Patient") == 1
    assert count(client, "Provenance") == 1


# ---- medport load ---------------------------------------------------------------------------------------

def test_load_writes_one_provenance_per_patient_per_bundle(app):
    ctx = app.config["MEDPORT"]
    report = load(ctx, [SYNTHEA])
    assert not report.failures and report.resources > 30
    client = app.test_client()
    ps = provenances(client)
    source = [{"role": "source", "what": {"display": f"medport load {os.path.basename(SYNTHEA)}"}}]
    assert ps and all(p["entity"] == source and p["agent"][0]["who"]["display"] == SERVER_NAME for p in ps)
    [pid] = [e["resource"]["id"] for e in client.get("/fhir/Patient").get_json()["entry"]]
    about_patient = [p for p in ps if f"Patient/{pid}/_history/1" in versioned(p)]
    assert len(about_patient) == 1
    written = sum(len(versioned(p)) for p in ps)
    assert written == report.resources         # every loaded resource is the target of exactly one Provenance
    assert len(ps) <= 3                           # the patient's, and what is about no patient
