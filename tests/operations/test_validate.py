"""$validate (operations/validate.py): structure, the base R4 definition, claimed, given and required
profiles; modes create, update and delete judged as THIS caller's write, run and rolled back; 200
whether valid or not, 4xx when validation cannot be performed."""
from __future__ import annotations

import json

import pytest

from fhirserver.interactions.create import create
from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import auth, make_app, mint

US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|5.0.1"
A, B = "Organization/hosp-a", "Organization/hosp-b"


def params(resource=None, **values) -> dict:
    out = [{"name": "resource", "resource": resource}] if resource is not None else []
    out += [{"name": k, "valueCode" if k == "mode" else "valueUri": v} for k, v in values.items()]
    return {"resourceType": "Parameters", "parameter": out}


@pytest.fixture
def world(tmp_path, backend):
    app = make_app(tmp_path, backend, required_profiles="")
    ctx = app.config["MEDPORT"]
    http = app.test_client()
    tokens = {"a": mint(app, "system/*.cruds", client_id="hosp-a", organization=A),
              "b": mint(app, "system/*.cruds", client_id="hosp-b", organization=B),
              "admin": mint(app, "user/*.cruds", subject="root", role="admin")}
    Users(ctx.store).add("root", "correct horse battery staple", "admin")

    def send(who, method, url, body=None):
        return http.open(url, method=method, data=None if body is None else json.dumps(body),
                         headers={"Content-Type": FHIR_JSON, **auth(tokens[who])})
    patient = send("a", "POST", "/fhir/Patient", {"resourceType": "Patient", "name": [{"family": "Sharma"}]})
    assert patient.status_code == 201, patient.get_data(as_text=True)
    return ctx, send, patient.get_json()


def errors(r) -> list[dict]:
    assert r.status_code == 200, r.get_data(as_text=True)
    return [i for i in r.get_json()["issue"] if i["severity"] in ("error", "fatal")]


def keys(r) -> set[str]:
    return {(i.get("details") or {}).get("text") for i in errors(r)}


def stored_versions(ctx, rtype) -> int:
    return ctx.store.history(rtype, limit=0).total


def test_the_base_definition_and_claimed_and_given_profiles(world):
    _ctx, send, patient = world
    broken = {"resourceType": "Patient", "contact": [{"gender": "male"}]}        # pat-1: a contact needs details
    r = send("a", "POST", "/fhir/Patient/$validate", broken)
    assert "pat-1" in keys(r) and any("Patient.contact" in e for i in errors(r) for e in i["expression"])
    assert keys(send("a", "POST", "/fhir/Patient/$validate", {**broken, "meta": {"profile": [US_CORE_PATIENT]}})) \
        >= {"pat-1", "Patient.identifier", "Patient.gender"}
    assert keys(send("a", "POST", "/fhir/Patient/$validate", params({"resourceType": "Patient"},
                                                                    profile=US_CORE_PATIENT))) >= {"Patient.gender"}
    r = send("a", "POST", "/fhir/Patient/$validate", params({"resourceType": "Patient"}, profile="urn:no-such"))
    assert [i["details"]["text"] for i in errors(r)] == ["urn:no-such"]
    ok = send("a", "POST", "/fhir/Patient/$validate", {"resourceType": "Patient"})
    assert errors(ok) == [] and ok.get_json()["issue"][0]["severity"] == "information"
    # an instance: its stored content
    assert errors(send("a", "GET", f"/fhir/Patient/{patient['id']}/$validate")) == []


def test_structural_errors_come_first_and_alone(world):
    _ctx, send, _patient = world
    r = send("a", "POST", "/fhir/Observation/$validate", {"resourceType": "Observation", "status": "done"})
    assert {e for i in errors(r) for e in i["expression"]} == {"Observation.status", "Observation.code"}


def test_mode_create_is_the_callers_create_rolled_back(world):
    ctx, send, _patient = world
    before = stored_versions(ctx, "CodeSystem")
    cs = {"resourceType": "CodeSystem", "url": "urn:x", "status": "active", "content": "complete"}
    r = send("a", "POST", "/fhir/CodeSystem/$validate", params(cs, mode="create"))
    assert [i["code"] for i in errors(r)] == ["forbidden"]
    assert errors(send("admin", "POST", "/fhir/CodeSystem/$validate", params(cs, mode="create"))) == []
    assert stored_versions(ctx, "CodeSystem") == before


def test_mode_update_is_the_callers_update_rolled_back(world):
    ctx, send, patient = world
    pid, changed = patient["id"], {**patient, "gender": "female"}
    url = f"/fhir/Patient/{pid}/$validate"
    assert errors(send("a", "POST", url, params(changed, mode="update"))) == []
    assert send("a", "GET", f"/fhir/Patient/{pid}").get_json()["meta"]["versionId"] == "1"
    # the UHID is permanent: changing it would be refused
    other_uhid = json.loads(json.dumps(changed))
    other_uhid["identifier"][0]["value"] = "12-3456-7890-1231"
    assert [i["code"] for i in errors(send("a", "POST", url, params(other_uhid, mode="update")))]
    assert [i["code"] for i in errors(send("a", "POST", url, params({**changed, "id": "x"}, mode="update")))]
    # hospital B does not see A's patient: as if it did not exist
    assert send("b", "POST", url, params(changed, mode="update")).status_code == 404
    assert send("a", "POST", "/fhir/Patient/$validate", params(changed, mode="update")).status_code == 400
    assert send("a", "POST", "/fhir/Patient/$validate", params(changed, mode="frobnicate")).status_code == 400


def test_mode_delete_is_the_callers_delete_rolled_back(world):
    ctx, send, patient = world
    pid = patient["id"]
    assert errors(send("a", "POST", f"/fhir/Patient/{pid}/$validate", params(mode="delete"))) == []
    assert send("a", "GET", f"/fhir/Patient/{pid}").status_code == 200
    held = create(ctx, "Organization", {"resourceType": "Organization", "name": "exchange's own"}).version.id
    r = send("a", "POST", f"/fhir/Organization/{held}/$validate", params(mode="delete"))
    assert [i["code"] for i in errors(r)] == ["forbidden"]       # held by no organisation: not A's to delete
    assert send("a", "GET", f"/fhir/Organization/{held}").status_code == 200


MEDPORT_PATIENT = "https://medport.health/fhir/StructureDefinition/medport-patient"


def test_modes_create_and_update_judge_the_resource_as_the_write_would_store_it(tmp_path, backend):
    """A Patient required to be a Med-Port Patient (UHID slice 1..1) gets its UHID from the server: the
    create answers 201, so $validate mode=create must not call the same body invalid."""
    app = make_app(tmp_path, backend, required_profiles=f"Patient={MEDPORT_PATIENT}")
    ctx = app.config["MEDPORT"]
    token = mint(app, "system/*.cruds", client_id="hosp-a", organization=A)
    http = app.test_client()

    def send(method, url, body=None):
        return http.open(url, method=method, data=None if body is None else json.dumps(body),
                         headers={"Content-Type": FHIR_JSON, **auth(token)})
    body = {"resourceType": "Patient", "name": [{"family": "Sharma"}], "gender": "female"}
    before = stored_versions(ctx, "Patient")
    assert errors(send("POST", "/fhir/Patient/$validate", params(body, mode="create"))) == []
    assert errors(send("POST", "/fhir/Patient/$validate?mode=create", body)) == []
    assert stored_versions(ctx, "Patient") == before                    # nothing stored
    created = send("POST", "/fhir/Patient", body)
    assert created.status_code == 201, created.get_data(as_text=True)
    stored = created.get_json()
    assert errors(send("POST", f"/fhir/Patient/{stored['id']}/$validate", params(stored, mode="update"))) == []
    # the definitions still judge (pat-1: a contact needs details), and nothing runs past them
    broken = {**stored, "contact": [{"gender": "male"}]}
    r = send("POST", f"/fhir/Patient/{stored['id']}/$validate", params(broken, mode="update"))
    assert keys(r) == {"pat-1"} and send("GET", f"/fhir/Patient/{stored['id']}").get_json()["meta"]["versionId"] == "1"
    # a structural error is reported as the write reports it, and nothing else runs
    r = send("POST", "/fhir/Patient/$validate", params({**body, "gender": 7}, mode="create"))
    assert [e for i in errors(r) for e in i["expression"]] == ["Patient.gender"]


def test_update_and_delete_modes_answer_alike_for_hidden_and_absent_records(world):
    """No existence oracle: another hospital's record answers as an id never stored would."""
    ctx, send, patient = world
    before = stored_versions(ctx, "Patient")
    answers = []
    for pid in (patient["id"], "never-stored"):
        body = {**patient, "id": pid, "gender": "female"}
        for p in (params(body, mode="update"), params({**body, "gender": "robot"}, mode="update"),
                  params(mode="delete"), None):
            r = send("b", "GET" if p is None else "POST", f"/fhir/Patient/{pid}/$validate", p)
            answers.append((r.status_code, r.get_data(as_text=True).replace(pid, "ID")))
    assert answers[:4] == answers[4:]
    assert {a[0] for a in answers} == {404}
    assert stored_versions(ctx, "Patient") == before


def test_a_dry_run_create_keeps_no_uhid_claim_and_no_version(world):
    """The UHID a dry run binds is claimed inside the rolled-back transaction: the real create of the same
    number succeeds afterwards, on both stores."""
    from fhirserver.uhid import number
    ctx, send, _patient = world
    uhid = number.generate()
    body = {"resourceType": "Patient", "identifier": [{"system": ctx.uhid_system, "value": uhid}]}
    before = stored_versions(ctx, "Patient"), stored_versions(ctx, "Provenance")
    assert errors(send("a", "POST", "/fhir/Patient/$validate", params(body, mode="create"))) == []
    assert (stored_versions(ctx, "Patient"), stored_versions(ctx, "Provenance")) == before
    r = send("a", "POST", "/fhir/Patient", body)
    assert r.status_code == 201, r.get_data(as_text=True)
    # now taken: the dry run answers as the create would
    assert [i["code"] for i in errors(send("a", "POST", "/fhir/Patient/$validate", params(body, mode="create")))]


def test_the_profile_walk_of_a_dry_run_holds_no_write_lock(world, monkeypatch):
    """The profiles judge off the write lock, as a write's prepare() does: a slow walk (up to its time
    budget) must not hold SQLite's BEGIN IMMEDIATE, nor a unit of work on MongoDB."""
    from fhirserver.validation import write_policy
    ctx, send, _patient = world
    seen, evaluate = [], write_policy.evaluate

    def watched(c, resource, profiles):
        seen.append(ctx.store.open_unit())
        return evaluate(c, resource, profiles)
    monkeypatch.setattr(write_policy, "evaluate", watched)
    body = {"resourceType": "Patient", "name": [{"family": "Rao"}]}
    assert errors(send("a", "POST", "/fhir/Patient/$validate", params(body, mode="create"))) == []
    assert seen == [None]


def test_mode_profile_checks_the_nominated_profile(world):
    """R4 resource-validation-mode has four codes: `profile` is general conformance to the given profile."""
    ctx, send, patient = world
    r = send("a", "POST", "/fhir/Patient/$validate", params({"resourceType": "Patient"}, mode="profile",
                                                            profile=US_CORE_PATIENT))
    assert "Patient.gender" in keys(r)
    r = send("a", "GET", f"/fhir/Patient/{patient['id']}/$validate?mode=profile&profile={US_CORE_PATIENT}")
    assert "Patient.gender" in keys(r)
    assert stored_versions(ctx, "Patient") == 1
