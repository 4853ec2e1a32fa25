"""Who reads and writes definitions (smart_auth/admission.check_definition_write, public_directory.py):
administrators and the CLI write them, over REST and in Bundles; everyone reads them, with or without a
token, a hospital's organisation guard and a patient's compartment notwithstanding."""
from __future__ import annotations

import json

import pytest

from fhirserver.conformance import definitions
from fhirserver.interactions.create import create
from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import auth, make_app, mint

GENDER = "http://hl7.org/fhir/administrative-gender"
URL = "https://city.test/fhir/CodeSystem/local"
WRITERS_REFUSED = ["hospital", "exchange", "practitioner", "patient"]


def code_system(url: str = URL, code: str = "a") -> dict:
    return {"resourceType": "CodeSystem", "url": url, "version": "1", "status": "active", "content": "complete",
            "concept": [{"code": code}]}


@pytest.fixture
def world(tmp_path, backend):
    app = make_app(tmp_path, backend)
    ctx = app.config["MEDPORT"]
    http = app.test_client()
    stored = create(ctx, "CodeSystem", code_system()).version.id
    patient = create(ctx, "Patient", {"resourceType": "Patient"}).version.id
    users = Users(ctx.store)
    for name, role, user in (("dr", "practitioner", "Practitioner/dr"), ("p", "patient", f"Patient/{patient}"),
                             ("reg", "regulator", None), ("root", "admin", None)):
        users.add(name, "correct horse battery staple", role, user)
    tokens = {
        "hospital": mint(app, "system/*.cruds", client_id="hosp-a", organization="Organization/hosp-a"),
        "exchange": mint(app, "system/*.cruds", client_id="exchange"),
        "practitioner": mint(app, "user/*.cruds", subject="dr", role="practitioner",
                             organization="Organization/hosp-a"),
        "patient": mint(app, "patient/*.cruds", subject="p", role="patient",
                        fhirUser=f"http://fhir.test/fhir/Patient/{patient}", patient=patient),
        "regulator": mint(app, "user/*.rs", subject="reg", role="regulator"),
        "admin": mint(app, "user/*.cruds", subject="root", role="admin"),
    }

    def send(who, method, url, body=None, content_type=FHIR_JSON):
        headers = {"Content-Type": content_type, **(auth(tokens[who]) if who else {})}
        return http.open(url, method=method, data=None if body is None else json.dumps(body), headers=headers)
    return ctx, send, stored


@pytest.mark.parametrize("who", WRITERS_REFUSED)
def test_only_administrators_write_definitions(world, who):
    ctx, send, stored = world
    for r in (send(who, "POST", "/fhir/CodeSystem", code_system(GENDER, "rogue")),
              send(who, "PUT", f"/fhir/CodeSystem/{stored}", {**code_system(code="b"), "id": stored})):
        assert r.status_code == 403 and "only an administrator" in r.get_data(as_text=True)
    r = send(who, "PATCH", f"/fhir/CodeSystem/{stored}", [{"op": "replace", "path": "/status", "value": "retired"}],
             "application/json-patch+json")
    assert r.status_code == 403, r.get_data(as_text=True)
    assert send(who, "DELETE", f"/fhir/CodeSystem/{stored}").status_code == 403
    r = send(who, "PUT", "/fhir/CodeSystem?url=" + GENDER, code_system(GENDER, "rogue"))     # conditional update
    assert r.status_code == 403, r.get_data(as_text=True)
    assert definitions(ctx.store).resolve("CodeSystem", GENDER)["concept"][0]["code"] != "rogue"
    assert send("admin", "GET", f"/fhir/CodeSystem/{stored}").get_json()["concept"] == [{"code": "a"}]


@pytest.mark.parametrize("who", WRITERS_REFUSED)
@pytest.mark.parametrize("bundle_type", ["transaction", "batch"])
def test_bundles_cannot_write_definitions_either(world, who, bundle_type):
    ctx, send, _stored = world
    sd = {"resourceType": "StructureDefinition", "url": "https://medport.health/fhir/StructureDefinition/x",
          "name": "X", "status": "active", "kind": "resource", "abstract": False, "type": "Patient"}
    bundle = {"resourceType": "Bundle", "type": bundle_type, "entry": [
        {"resource": sd, "request": {"method": "POST", "url": "StructureDefinition"}}]}
    r = send(who, "POST", "/fhir", bundle)
    if bundle_type == "transaction":
        assert r.status_code == 403, r.get_data(as_text=True)
    else:
        assert r.get_json()["entry"][0]["response"]["status"].startswith("403"), r.get_data(as_text=True)
    assert send("admin", "GET", "/fhir/StructureDefinition?url=" + sd["url"]).get_json()["total"] == 0


def test_an_administrator_writes_them_and_the_cache_follows(world):
    ctx, send, stored = world
    defs = definitions(ctx.store)
    assert defs.resolve("CodeSystem", URL)["concept"] == [{"code": "a"}]
    r = send("admin", "PUT", f"/fhir/CodeSystem/{stored}", {**code_system(code="b"), "id": stored})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert defs.resolve("CodeSystem", URL)["concept"] == [{"code": "b"}]       # at once, not after the TTL
    assert send("admin", "DELETE", f"/fhir/CodeSystem/{stored}").status_code == 204
    assert defs.resolve("CodeSystem", URL) is None


@pytest.mark.parametrize("who", [None, "hospital", "practitioner", "patient", "regulator", "exchange"])
def test_everyone_reads_and_searches_definitions(world, who):
    _ctx, send, stored = world
    assert send(who, "GET", f"/fhir/CodeSystem/{stored}").status_code == 200
    bundle = send(who, "GET", f"/fhir/CodeSystem?url={URL}").get_json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [stored]
    r = send(who, "GET", "/fhir/NamingSystem?_id=uhid")
    assert r.status_code == 200 and r.get_json()["total"] == 1, r.get_data(as_text=True)


def test_without_a_token_nothing_else_opens(world):
    _ctx, send, stored = world
    assert send(None, "GET", "/fhir/Patient").status_code == 401
    assert send(None, "POST", "/fhir/CodeSystem", code_system()).status_code == 401
    assert send(None, "GET", f"/fhir/CodeSystem/{stored}/_history").status_code == 401
    bundle = send(None, "GET", f"/fhir/CodeSystem?url={URL}&_revinclude=Provenance:target").get_json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"CodeSystem"}


@pytest.mark.parametrize("who", WRITERS_REFUSED)
def test_every_other_write_path_is_refused_too(world, who):
    ctx, send, stored = world
    before = ctx.store.read("CodeSystem", stored).version
    fhirpath_patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "CodeSystem.status"},
        {"name": "value", "valueCode": "retired"}]}]}
    for r in (send(who, "PATCH", f"/fhir/CodeSystem/{stored}", fhirpath_patch),
              send(who, "PUT", "/fhir/CodeSystem/brand-new", {**code_system("urn:new"), "id": "brand-new"}),
              send(who, "DELETE", f"/fhir/CodeSystem?url={URL}")):
        assert r.status_code == 403, r.get_data(as_text=True)
    r = send(who, "POST", "/fhir/ValueSet/$validate?mode=create", {"resourceType": "ValueSet", "url": "urn:vs",
                                                                    "status": "active"})
    assert "only an administrator" in r.get_data(as_text=True)           # $validate: 200, the refusal listed
    json_patch = "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9zdGF0dXMiLCJ2YWx1ZSI6InJldGlyZWQifV0="    # status: retired
    for entry in ({"request": {"method": "DELETE", "url": f"CodeSystem/{stored}"}},
                  {"request": {"method": "DELETE", "url": f"CodeSystem?url={URL}"}},
                  {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": json_patch},
                   "request": {"method": "PATCH", "url": f"CodeSystem/{stored}"}},
                  {"resource": fhirpath_patch, "request": {"method": "PATCH", "url": f"CodeSystem/{stored}"}},
                  {"resource": {**code_system(), "id": stored}, "request": {"method": "PUT", "url": f"CodeSystem/{stored}"}},
                  {"resource": code_system("urn:new"), "request": {"method": "PUT", "url": f"CodeSystem?url={URL}"}},
                  {"resource": code_system("urn:new"), "request": {"method": "POST", "url": "CodeSystem",
                                                                   "ifNoneExist": "url=urn:none"}}):
        r = send(who, "POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
        assert r.status_code == 403, (entry, r.get_data(as_text=True))
    assert ctx.store.read("CodeSystem", stored).version == before and ctx.store.read("CodeSystem", "brand-new") is None
    assert definitions(ctx.store).resolve("CodeSystem", "urn:new") is None
