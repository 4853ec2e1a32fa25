"""Only definitions the server or an administrator wrote are resolved (fhirserver/conformance/trust.py):
one a hospital, practitioner or patient wrote before administrators alone could (an older store) is served
as a resource but redefines nothing, even with a forged author tag."""
from __future__ import annotations

import json

import pytest

from fhirserver.conformance import definitions, trust
from fhirserver.interactions.create import create
from fhirserver.smart_auth import admission
from fhirserver.smart_auth.accounts import Users
from fhirserver.terminology import for_store
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import auth, make_app, mint

GENDER = "http://hl7.org/fhir/administrative-gender"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
LOCAL = "https://city.test/fhir/CodeSystem/local"
FORGED = {"system": trust.AUTHOR_SYSTEM, "code": trust.ADMINISTRATOR}


def code_system(url: str, code: str, version: str = "4.0.1", **extra) -> dict:
    return {"resourceType": "CodeSystem", "url": url, "version": version, "status": "active",
            "content": "complete", "concept": [{"code": code}], **extra}


@pytest.fixture
def world(tmp_path, backend):
    app = make_app(tmp_path, backend)
    ctx = app.config["MEDPORT"]
    http = app.test_client()
    patient = create(ctx, "Patient", {"resourceType": "Patient"}).version.id
    users = Users(ctx.store)
    users.add("dr", "correct horse battery staple", "practitioner", "Practitioner/dr")
    users.add("p", "correct horse battery staple", "patient", f"Patient/{patient}")
    users.add("root", "correct horse battery staple", "admin")
    tokens = {
        "hospital": mint(app, "system/*.cruds", client_id="hosp-a", organization="Organization/hosp-a"),
        "exchange": mint(app, "system/*.cruds", client_id="exchange"),
        "practitioner": mint(app, "user/*.cruds", subject="dr", role="practitioner"),
        "patient": mint(app, "patient/*.cruds", subject="p", role="patient",
                        fhirUser=f"http://fhir.test/fhir/Patient/{patient}", patient=patient),
        "admin": mint(app, "user/*.cruds", subject="root", role="admin", organization="Organization/hosp-a"),
    }

    def send(who, method, url, body):
        return http.open(url, method=method, data=json.dumps(body),
                         headers={"Content-Type": FHIR_JSON, **auth(tokens[who])})
    return ctx, send


def _before_the_rule(monkeypatch):
    """An older server: every token with write scopes could write definitions."""
    monkeypatch.setattr(admission, "check_definition_write", lambda rtype, claims: None)


@pytest.mark.parametrize("who", ["hospital", "exchange", "practitioner", "patient"])
def test_definitions_other_tokens_wrote_before_the_rule_are_not_resolved(world, monkeypatch, who):
    ctx, send = world
    _before_the_rule(monkeypatch)
    for body in (code_system(GENDER, "rogue", meta={"tag": [FORGED]}), code_system(LOCAL, "mine", "1"),
                 {"resourceType": "ConceptMap", "url": "urn:map", "status": "active", "group": [
                     {"source": LOCAL, "target": GENDER, "element": [
                         {"code": "mine", "target": [{"code": "rogue", "equivalence": "equivalent"}]}]}]}):
        r = send(who, "POST", f"/fhir/{body['resourceType']}", body)
        assert r.status_code == 201, r.get_data(as_text=True)
        tags = r.get_json()["meta"].get("tag", [])
        assert not any(t["system"] == trust.AUTHOR_SYSTEM for t in tags)          # the forged tag is dropped
    monkeypatch.undo()
    defs = definitions(ctx.store)
    defs.changed()
    assert defs.resolve("CodeSystem", GENDER)["concept"][0]["code"] != "rogue"     # the shipped one
    assert defs.resolve("CodeSystem", f"{GENDER}|4.0.1")["concept"][0]["code"] != "rogue"
    assert defs.resolve("CodeSystem", LOCAL) is None
    tx = for_store(ctx.store)
    assert tx.contains(GENDER_VS, GENDER, "rogue") is False
    assert not [m for m in tx.concept_maps() if m.get("url") == "urn:map"]


def test_an_administrators_definitions_are_resolved(world, monkeypatch):
    ctx, send = world
    _before_the_rule(monkeypatch)
    stale = send("hospital", "POST", "/fhir/CodeSystem", code_system(LOCAL, "mine", "1")).get_json()
    monkeypatch.undo()
    defs = definitions(ctx.store)
    assert defs.resolve("CodeSystem", LOCAL) is None
    # the administrator saves it again: now it is trusted, and so is a new one
    r = send("admin", "PUT", f"/fhir/CodeSystem/{stale['id']}", {**code_system(LOCAL, "checked", "1"), "id": stale["id"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {"system": trust.AUTHOR_SYSTEM, "code": trust.ADMINISTRATOR} .items() <= \
        next(t for t in r.get_json()["meta"]["tag"] if t["system"] == trust.AUTHOR_SYSTEM).items()
    assert defs.resolve("CodeSystem", LOCAL)["concept"] == [{"code": "checked"}]
    assert send("admin", "POST", "/fhir/CodeSystem", code_system("urn:new", "x", "1")).status_code == 201
    assert defs.resolve("CodeSystem", "urn:new")["concept"] == [{"code": "x"}]


def test_the_servers_own_writes_are_resolved(world):
    ctx, _send = world
    create(ctx, "CodeSystem", code_system("urn:cli", "x", "1", meta={"tag": [FORGED]}))
    found = definitions(ctx.store).resolve("CodeSystem", "urn:cli")
    assert found["concept"] == [{"code": "x"}] and not found["meta"].get("tag")


def test_trusted_reads_the_stamps():
    assert trust.trusted({"resourceType": "CodeSystem"})
    staff = {"system": "https://medport.health/fhir/CodeSystem/write-origin", "code": "staff"}
    assert not trust.trusted({"meta": {"tag": [staff]}})
    assert trust.trusted({"meta": {"tag": [staff, FORGED]}})
    assert not trust.trusted({"meta": {"tag": [{**staff, "code": "system"}, FORGED]}})
