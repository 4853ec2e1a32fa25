"""Patient/[id]/$immunization-status over HTTP with authorization on, on both stores: the answer, bad
input, and who sees what (docs/immunization.md, "Who sees what": the forecast counts only the
Immunizations the caller may see, and reveals nothing of the others)."""
from __future__ import annotations

import datetime
import json

import pytest

from fhirserver import validation
from fhirserver.operations import registry
from tests.governance.test_org_leaks import consent_for
from tests.scheduling._world import B, issue
from tests.smart_auth._tokens import BASE, mint

from ._world import SIX_WEEKS, VaccinationWorld, by_series, criteria, status_of

AS_OF = "2031-03-03"        # the child is 8 weeks old


@pytest.fixture
def world(tmp_path, backend):
    return VaccinationWorld(tmp_path, backend)


def test_the_answer_is_an_immunization_recommendation_with_the_date_criteria(world):
    iid = world.give(world.a, "198", SIX_WEEKS)                   # Pentavalent-1 at 6 weeks
    got = world.forecast(world.child_token, date=AS_OF)
    assert got["patient"] == {"reference": f"Patient/{world.child}"} and got["date"] == AS_OF
    assert "id" not in got and "meta" not in got                   # not stored
    penta = by_series(got)["Pentavalent (DTwP-HepB-Hib)"]
    assert status_of(got, penta["series"]) == ("not-yet-due", "Pentavalent-2: dose 2 of 3")
    assert penta["doseNumberPositiveInt"] == 2 and penta["seriesDosesPositiveInt"] == 3
    assert penta["supportingImmunization"] == [{"reference": f"Immunization/{iid}"}]
    # 10 weeks is 2031-03-17, but 4 weeks after dose 1 is 2031-03-17 too; overdue 14 weeks; latest 1 year
    assert criteria(penta) == {"30981-5": "2031-03-17", "30980-7": "2031-03-17", "59778-1": "2031-04-14",
                               "59777-3": "2032-01-06"}
    assert status_of(got, "Rotavirus vaccine (RVV)") == ("due", "RVV-1: dose 1 of 3")
    assert status_of(got, "BCG") == ("overdue", "BCG: dose 1 of 1")
    assert status_of(got, "Hepatitis B birth dose")[0] == "aged-out"
    assert {c["system"] for c in penta["vaccineCode"][0]["coding"]} >= {"http://hl7.org/fhir/sid/cvx"}


def test_get_and_post_answer_the_same(world):
    world.give(world.a, "198", SIX_WEEKS)
    post = world.status(world.child_token, method="POST", date=AS_OF)
    assert post.status_code == 200 and post.get_json() == world.forecast(world.child_token, date=AS_OF)


def test_the_date_defaults_to_today(world):
    r = world.send(world.a, "POST", "/fhir/Patient", {"resourceType": "Patient", "birthDate": "2020-05-01"})
    older = r.get_json()["id"]
    got = world.forecast(world.a, older)
    assert got["date"] == datetime.datetime.now(datetime.timezone.utc).date().isoformat()


@pytest.mark.parametrize("value", ["2031-13-01", "soon", "2031-03", "03/03/2031", "2031-03-03T10:00:00Z"])
def test_a_bad_date_is_400(world, value):
    r = world.status(world.child_token, date=value)
    assert r.status_code == 400 and "date must be a date" in issue(r)


def test_a_date_before_birth_is_422(world):
    r = world.status(world.child_token, date="2030-12-31")
    assert r.status_code == 422 and "before the patient's birth date" in issue(r)


def test_a_patient_without_a_birth_date_is_422(world):
    r = world.status(world.asha_token, world.asha, date=AS_OF)
    assert r.status_code == 422 and "birthDate" in issue(r)


def test_unknown_schedule_and_condition_are_400(world):
    r = world.status(world.child_token, date=AS_OF, schedule="atlantis")
    assert r.status_code == 400 and "india-uip" in issue(r)
    r = world.status(world.child_token, date=AS_OF, condition="moon-base")
    assert r.status_code == 400 and "je-endemic" in issue(r)


def test_japanese_encephalitis_only_where_endemic(world):
    titles = set(by_series(world.forecast(world.child_token, date=AS_OF)))
    assert "Japanese encephalitis (JE)" not in titles
    got = world.forecast(world.child_token, date=AS_OF, condition="je-endemic")
    assert status_of(got, "Japanese encephalitis (JE)") == ("not-yet-due", "JE-1: dose 1 of 2")


def test_persist_in_a_get_is_refused_and_stores_nothing(world):
    r = world.status(world.child_token, date=AS_OF, persist="true")
    assert r.status_code == 400 and "POST" in issue(r)
    found = world.send(world.system, "GET", "/fhir/ImmunizationRecommendation").get_json()
    assert found.get("total", len(found.get("entry", ()))) == 0


def test_the_patient_and_her_proxy_see_the_same_forecast_others_get_404(world):
    world.give(world.a, "198", SIX_WEEKS)
    mine = world.forecast(world.child_token, date=AS_OF)
    assert world.forecast(world.mother_token, date=AS_OF) == mine
    missing = world.status(world.child_token, "no-such-patient", date=AS_OF)
    for token in (world.ravi_token, world.son_token, world.b):       # another patient, asha's proxy, hospital B
        r = world.status(token, date=AS_OF)
        assert r.status_code == 404 == missing.status_code, (token, r.get_data(as_text=True))
        assert issue(r).replace(world.child, "X") == issue(missing).replace("no-such-patient", "X")


def test_a_token_that_may_not_search_immunizations_gets_403(world):
    patient_only = mint(world.app, "patient/Patient.rs", subject=f"user-{world.child}", role="patient",
                        fhirUser=f"{BASE}/Patient/{world.child}", patient=world.child)
    r = world.status(patient_only, date=AS_OF)
    assert r.status_code == 403 and "Immunization" in issue(r)


def test_a_hospital_counts_only_the_doses_it_may_see_and_learns_nothing_of_the_others(world):
    # the child shares her Patient record with hospital B, not her Immunizations
    world.server(consent_for(f"Patient/{world.child}", classes=("Patient",), actor=B))
    before = world.forecast(world.b, date=AS_OF)
    a_dose = world.give(world.a, "198", SIX_WEEKS, lotNumber="A-LOT-7731")   # held by hospital A
    b_dose = world.give(world.b, "122", SIX_WEEKS)                            # rotavirus, held by B
    seen_by_b = world.forecast(world.b, date=AS_OF)
    text = json.dumps(seen_by_b)
    assert a_dose not in text and "A-LOT-7731" not in text and "hosp-a" not in text
    # oracle: B's answer is exactly what it was before A's dose existed, but for B's own dose
    assert by_series(seen_by_b)["Pentavalent (DTwP-HepB-Hib)"] == by_series(before)["Pentavalent (DTwP-HepB-Hib)"]
    assert status_of(seen_by_b, "Pentavalent (DTwP-HepB-Hib)") == ("due", "Pentavalent-1: dose 1 of 3")
    assert by_series(seen_by_b)["Rotavirus vaccine (RVV)"]["supportingImmunization"] == [
        {"reference": f"Immunization/{b_dose}"}]
    # hospital A holds the Patient and its own dose; B's dose is not shared with A
    seen_by_a = world.forecast(world.a, date=AS_OF)
    assert b_dose not in json.dumps(seen_by_a)
    assert status_of(seen_by_a, "Rotavirus vaccine (RVV)") == ("due", "RVV-1: dose 1 of 3")
    assert status_of(seen_by_a, "Pentavalent (DTwP-HepB-Hib)")[1] == "Pentavalent-2: dose 2 of 3"
    # the patient sees both
    mine = world.forecast(world.child_token, date=AS_OF)
    assert status_of(mine, "Pentavalent (DTwP-HepB-Hib)")[1] == "Pentavalent-2: dose 2 of 3"
    assert status_of(mine, "Rotavirus vaccine (RVV)")[1] == "RVV-2: dose 2 of 3"
    # once she shares her Immunizations with B, B counts A's dose too
    world.server(consent_for(f"Patient/{world.child}", classes=("Immunization",), actor=B))
    shared = by_series(world.forecast(world.b, date=AS_OF))["Pentavalent (DTwP-HepB-Hib)"]
    assert shared["supportingImmunization"] == [{"reference": f"Immunization/{a_dose}"}]


def test_doses_not_completed_or_subpotent_or_undated_are_not_counted(world):
    world.give(world.a, "198", SIX_WEEKS, status="not-done",
               statusReason={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                         "code": "PATOBJ"}]})
    world.give(world.a, "122", SIX_WEEKS, isSubpotent=True)
    del_date = world.give(world.a, "10", SIX_WEEKS)
    world.send(world.a, "PUT", f"/fhir/Immunization/{del_date}", {
        "resourceType": "Immunization", "id": del_date, "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "10"}]},
        "patient": {"reference": f"Patient/{world.child}"}, "occurrenceString": "sometime in February"})
    got = world.forecast(world.child_token, date=AS_OF)
    for series in ("Pentavalent (DTwP-HepB-Hib)", "Rotavirus vaccine (RVV)",
                   "Fractional inactivated polio vaccine (fIPV)"):
        assert status_of(got, series)[1].endswith("dose 1 of " + str(by_series(got)[series]["seriesDosesPositiveInt"]))
        assert "supportingImmunization" not in by_series(got)[series]


def test_the_definition_is_valid_and_listed(world):
    definition = registry()["immunization-status"].definition
    validation.validate(definition)
    cs = world.send(world.system, "GET", "/fhir/metadata").get_json()
    ops = {(r["type"], o["name"], o["definition"]) for r in cs["rest"][0]["resource"] for o in r.get("operation", ())}
    assert ("Patient", "immunization-status", definition["url"]) in ops


def test_a_week_date_is_not_an_r4_date(world):
    r = world.status(world.child_token, date="2031-W10-1")     # ISO 8601 week date: fromisoformat takes it
    assert r.status_code == 400 and "date must be a date" in issue(r)


def test_dates_near_the_end_of_the_calendar_answer_422_not_500(world):
    r = world.send(world.a, "POST", "/fhir/Patient", {"resourceType": "Patient", "birthDate": "9990-01-06"})
    assert r.status_code == 201, r.get_data(as_text=True)
    pid = r.get_json()["id"]
    r = world.status(world.a, pid, date="9999-12-31")           # the schedule's ages run past 9999
    assert r.status_code == 422 and "9999" in issue(r), r.get_data(as_text=True)
    world.give(world.a, "198", "9999-12-20", patient=pid)       # a dose's minimum interval runs past it
    r = world.status(world.a, pid, date="9999-12-31")
    assert r.status_code == 422 and "9999" in issue(r), r.get_data(as_text=True)
