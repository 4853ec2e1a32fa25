"""The profile rule of every write (validation/write_policy.py): claimed and required profiles are checked
on create, update, patch, conditional writes and Bundle entries; reject / warn / off; an unknown claimed
profile is a warning; the resource is judged as stored (the server's UHID in it); the outcome travels on
Prepared.profile_outcome."""
from __future__ import annotations

import json

import pytest

from fhirserver import create_app
from fhirserver.interactions.common import prepare
from fhirserver.interactions.create import create
from fhirserver.validation import write_policy
from tests.conftest import FHIR_JSON, make_settings

US_CORE_UNVERSIONED = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
US_CORE_PATIENT = US_CORE_UNVERSIONED + "|5.0.1"
UNKNOWN = "http://example.org/fhir/StructureDefinition/not-shipped"
VITALS = "http://hl7.org/fhir/StructureDefinition/vitalsigns-not-here"


def patient(*profiles, **more) -> dict:
    out = {"resourceType": "Patient", **more}
    if profiles:
        out["meta"] = {"profile": list(profiles)}
    return out


GOOD = {"name": [{"family": "Sharma"}], "gender": "female"}


def serve(tmp_path, backend, **settings):
    app = create_app(make_settings(tmp_path, backend, **settings))
    return app.config["MEDPORT"], app.test_client()


def send(client, method, url, body, **headers):
    content_type = headers.pop("content_type", FHIR_JSON)
    return client.open(url, method=method, data=json.dumps(body), headers={"Content-Type": content_type, **headers})


def count(client, rtype="Patient") -> int:
    return client.get(f"/fhir/{rtype}?_summary=count").get_json()["total"]


def test_a_claimed_profile_is_enforced_by_default(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend)
    r = send(client, "POST", "/fhir/Patient", patient(US_CORE_PATIENT))
    assert r.status_code == 422, r.get_data(as_text=True)
    issues = r.get_json()["issue"]
    by_key = {i["details"]["text"]: i for i in issues if i["severity"] == "error"}
    assert {"Patient.name", "Patient.gender", "us-core-6"} <= set(by_key)
    assert by_key["Patient.gender"]["expression"] == ["Patient.gender"]
    assert "us-core-6" in by_key["us-core-6"]["diagnostics"]
    assert count(client) == 0                                  # nothing stored
    # identifier 1..* holds: the server's UHID is in the resource it judges
    assert "Patient.identifier" not in by_key
    assert send(client, "POST", "/fhir/Patient", patient(US_CORE_PATIENT, **GOOD)).status_code == 201


def test_update_patch_conditional_and_bundles_are_judged_too(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend)
    pid = send(client, "POST", "/fhir/Patient", patient(US_CORE_PATIENT, **GOOD)).get_json()["id"]
    assert send(client, "PUT", f"/fhir/Patient/{pid}", {**patient(US_CORE_PATIENT), "id": pid}).status_code == 422
    r = send(client, "PATCH", f"/fhir/Patient/{pid}", [{"op": "remove", "path": "/gender"}],
             content_type="application/json-patch+json")
    assert r.status_code == 422, r.get_data(as_text=True)
    assert send(client, "PUT", "/fhir/Patient?family=Sharma", patient(US_CORE_PATIENT)).status_code == 422
    assert client.get(f"/fhir/Patient/{pid}").get_json()["meta"]["versionId"] == "1"
    entry = {"resource": patient(US_CORE_PATIENT), "request": {"method": "POST", "url": "Patient"}}
    ok = {"resource": patient(US_CORE_PATIENT, **GOOD), "request": {"method": "POST", "url": "Patient"}}
    r = send(client, "POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [ok, entry]})
    assert r.status_code == 422 and count(client) == 1
    r = send(client, "POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [ok, entry]})
    assert [e["response"]["status"][:3] for e in r.get_json()["entry"]] == ["201", "422"]
    assert count(client) == 2


def test_warn_stores_and_shows_the_findings(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend, profile_validation="warn")
    r = send(client, "POST", "/fhir/Patient", patient(US_CORE_PATIENT), Prefer="return=OperationOutcome")
    assert r.status_code == 201, r.get_data(as_text=True)
    issues = r.get_json()["issue"]
    assert issues[0]["severity"] == "information"
    assert {"Patient.gender", "us-core-6"} <= {i["details"]["text"] for i in issues[1:]}
    assert count(client) == 1


def test_off_checks_nothing(tmp_path, backend):
    ctx, client = serve(tmp_path, backend, profile_validation="off")
    assert send(client, "POST", "/fhir/Patient", patient(US_CORE_PATIENT)).status_code == 201
    assert prepare(ctx, "Patient", patient(US_CORE_PATIENT)).profile_outcome is None


def test_an_unknown_claimed_profile_is_a_warning(tmp_path, backend):
    ctx, client = serve(tmp_path, backend)
    r = send(client, "POST", "/fhir/Patient", patient(UNKNOWN, VITALS), Prefer="return=OperationOutcome")
    assert r.status_code == 201, r.get_data(as_text=True)
    warnings = [i for i in r.get_json()["issue"] if i["severity"] == "warning"]
    assert [w["details"]["text"] for w in warnings] == [UNKNOWN, VITALS]
    assert [w["expression"] for w in warnings] == [["Patient.meta.profile[0]"], ["Patient.meta.profile[1]"]]
    outcome = prepare(ctx, "Patient", patient(UNKNOWN)).profile_outcome
    assert outcome.conforms and outcome.checked == () and outcome.findings[0].rule == "profile"


def test_a_required_profile_applies_whatever_is_claimed(tmp_path, backend):
    ctx, client = serve(tmp_path, backend, required_profiles=f"Patient={US_CORE_PATIENT}")
    assert send(client, "POST", "/fhir/Patient", patient()).status_code == 422
    assert send(client, "POST", "/fhir/Patient", patient(UNKNOWN)).status_code == 422
    assert send(client, "POST", "/fhir/Patient", patient(**GOOD)).status_code == 201
    assert send(client, "POST", "/fhir/Organization", {"resourceType": "Organization"}).status_code == 201
    outcome = prepare(ctx, "Patient", patient(**GOOD)).profile_outcome
    assert outcome.checked == (US_CORE_PATIENT,) and outcome.conforms
    assert prepare(ctx, "Organization", {"resourceType": "Organization"}).profile_outcome is None


def test_an_unknown_required_profile_is_an_error(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend, required_profiles=f"Patient={UNKNOWN}")
    r = send(client, "POST", "/fhir/Patient", patient(**GOOD))
    assert r.status_code == 422 and UNKNOWN in r.get_data(as_text=True)


def test_a_profile_of_another_type_is_an_error(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend)
    lab = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure"
    r = send(client, "POST", "/fhir/Patient", patient(lab, **GOOD))
    assert r.status_code == 422, r.get_data(as_text=True)
    assert [(i["details"]["text"], i["expression"]) for i in r.get_json()["issue"] if i["severity"] == "error"] \
        == [(lab, ["Patient.meta.profile[0]"])]
    assert count(client) == 0


def test_the_required_profiles_setting_is_read():
    assert write_policy.required_profiles("Patient=a, Observation=b|1,Patient=c") == {
        "Patient": ("a", "c"), "Observation": ("b|1",)}
    assert write_policy.required_profiles("") == {}
    with pytest.raises(ValueError):
        write_policy.required_profiles("Patient")


def test_an_unversioned_claim_of_a_shipped_profile_is_enforced(tmp_path, backend):
    """A canonical without a version names the version the server holds (references.html#canonical)."""
    ctx, client = serve(tmp_path, backend)
    r = send(client, "POST", "/fhir/Patient", patient(US_CORE_UNVERSIONED))
    assert r.status_code == 422, r.get_data(as_text=True)
    assert any((i.get("details") or {}).get("text") == "Patient.gender" for i in r.get_json()["issue"])
    r = send(client, "POST", "/fhir/Patient", patient(US_CORE_UNVERSIONED, **GOOD))
    assert r.status_code == 201, r.get_data(as_text=True)
    # held in the store (an administrator or `medport ig install` put it there): enforced the same way
    strict = {**ctx_definition(ctx, US_CORE_UNVERSIONED), "url": "https://city.test/fhir/StructureDefinition/strict"}
    strict.pop("version", None)
    create(ctx, "StructureDefinition", strict)
    r = send(client, "POST", "/fhir/Patient", patient(strict["url"]))
    assert r.status_code == 422, r.get_data(as_text=True)


def ctx_definition(ctx, canonical: str) -> dict:
    from fhirserver.conformance import definitions
    return json.loads(json.dumps(definitions(ctx.store).resolve("StructureDefinition", canonical)))


def test_claims_are_bounded_and_a_shared_rule_is_said_once(tmp_path, backend):
    from fhirserver.validation.profile import MAX_CLAIMS
    _ctx, client = serve(tmp_path, backend)
    many = [f"{UNKNOWN}-{i}" for i in range(MAX_CLAIMS)]
    r = send(client, "POST", "/fhir/Patient", patient(*many, **GOOD))
    assert r.status_code == 201, r.get_data(as_text=True)        # unknown claims: warnings
    r = send(client, "POST", "/fhir/Patient", patient(*many, f"{UNKNOWN}-x", **GOOD))
    assert r.status_code == 422, r.get_data(as_text=True)
    error = [i for i in r.get_json()["issue"] if i["severity"] == "error"]
    assert [(i["details"]["text"], i["expression"]) for i in error] == [("meta.profile", ["Patient.meta.profile"])]
    assert len(r.get_json()["issue"]) == MAX_CLAIMS + 1
    assert count(client) == 1
    # $validate: the base definition and US Core both carry dom-6 (a narrative): one warning
    r = send(client, "POST", "/fhir/Patient/$validate", patient(US_CORE_PATIENT, **GOOD))
    dom6 = [i for i in r.get_json()["issue"] if (i.get("details") or {}).get("text") == "dom-6"]
    assert len(dom6) == 1, r.get_json()


def test_a_profile_both_claimed_and_required_must_be_known(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend, required_profiles=f"Patient={UNKNOWN}")
    r = send(client, "POST", "/fhir/Patient", patient(UNKNOWN, **GOOD))
    assert r.status_code == 422, r.get_data(as_text=True)


def test_warn_stores_every_path_and_reject_refuses_a_transaction_whole(tmp_path, backend):
    _ctx, client = serve(tmp_path, backend, profile_validation="warn")
    bad = {"resource": patient(US_CORE_PATIENT), "request": {"method": "POST", "url": "Patient"}}
    r = send(client, "POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [bad, bad]})
    assert r.status_code == 200 and count(client) == 2, r.get_data(as_text=True)
    pid = r.get_json()["entry"][0]["response"]["location"].split("/")[1]
    r = send(client, "PATCH", f"/fhir/Patient/{pid}", [{"op": "add", "path": "/active", "value": True}],
             content_type="application/json-patch+json")
    assert r.status_code == 200, r.get_data(as_text=True)
    stored = client.get(f"/fhir/Patient/{pid}").get_json()
    r = send(client, "PUT", "/fhir/Patient?active=true", {**stored, "active": False})   # keeps its UHID
    assert r.status_code == 200, r.get_data(as_text=True)
    # reject: a conditional update inside a transaction fails it whole
    ctx2, strict = serve(tmp_path / "strict", backend)
    good = {"resource": patient(US_CORE_PATIENT, **GOOD), "request": {"method": "POST", "url": "Patient"}}
    cond = {"resource": patient(US_CORE_PATIENT), "request": {"method": "PUT", "url": "Patient?family=Nobody"}}
    r = send(strict, "POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [good, cond]})
    assert r.status_code == 422 and count(strict) == 0, r.get_data(as_text=True)
    assert "Patient.gender" in r.get_data(as_text=True)


@pytest.mark.parametrize("setting, said", [
    ({"profile_validation": "strict"}, "MEDPORT_PROFILE_VALIDATION"),
    ({"required_profiles": "Patient"}, "is not Type=canonical"),
    ({"required_profiles": "AuditEvent=https://x.test/p"}, "written by the server itself")])
def test_settings_every_write_would_trip_on_are_refused_at_start_up(tmp_path, setting, said):
    with pytest.raises(SystemExit, match=said):
        create_app(make_settings(tmp_path, **setting))
