"""Storing the forecast (persist=true, docs/immunization.md "Storing the forecast"): one
ImmunizationRecommendation per patient and holder, updated next time, written through the ordinary
write path (scopes, admission, custody, Provenance), and found with the R4 search parameters."""
from __future__ import annotations

import pytest

from fhirserver.governance import custodian
from tests.governance.test_org_leaks import consent_for
from tests.scheduling._world import B, issue
from tests.smart_auth._tokens import mint

from ._world import BIRTH, CVX, SIX_WEEKS, VaccinationWorld

AS_OF = "2031-03-03"
IDENTIFIER = "https://medport.health/fhir/sid/immunization-forecast"


@pytest.fixture
def world(tmp_path, backend):
    return VaccinationWorld(tmp_path, backend)


def persist(world, token, date=AS_OF):
    return world.status(token, method="POST", date=date, persist=True)


def stored(world, token, query: str = "") -> list[dict]:
    r = world.send(token, "GET", f"/fhir/ImmunizationRecommendation?patient=Patient/{world.child}{query}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return [e["resource"] for e in r.get_json().get("entry", ())]


def test_persist_writes_one_resource_and_updates_it_next_time(world):
    first = persist(world, world.child_token)
    assert first.status_code == 200, first.get_data(as_text=True)
    saved = first.get_json()
    assert saved["meta"]["versionId"] == "1" and saved["identifier"] == [
        {"system": IDENTIFIER, "value": f"Patient/{world.child}"}]
    assert custodian.of(saved) is None                       # the patient's own: held by no hospital
    iid = world.give(world.a, "198", SIX_WEEKS)
    again = persist(world, world.mother_token).get_json()     # her proxy refreshes the same one
    assert again["id"] == saved["id"] and again["meta"]["versionId"] == "2"
    assert [r["id"] for r in stored(world, world.child_token)] == [saved["id"]]
    current = world.send(world.child_token, "GET", f"/fhir/ImmunizationRecommendation/{saved['id']}").get_json()
    assert {"reference": f"Immunization/{iid}"} in [s for r in current["recommendation"]
                                                     for s in r.get("supportingImmunization", ())]
    # written through the write path: the server's Provenance targets each version
    prov = world.send(world.system, "GET", f"/fhir/Provenance?target=ImmunizationRecommendation/{saved['id']}")
    targets = {t["reference"] for e in prov.get_json().get("entry", ()) for t in e["resource"]["target"]}
    assert {f"ImmunizationRecommendation/{saved['id']}/_history/1",
            f"ImmunizationRecommendation/{saved['id']}/_history/2"} <= targets


def test_a_hospital_stores_its_own_forecast_beside_the_patients(world):
    mine = persist(world, world.child_token).get_json()
    held = persist(world, world.a).get_json()
    assert held["id"] != mine["id"] and custodian.of(held) == "Organization/hosp-a"
    assert persist(world, world.a).get_json()["id"] == held["id"]             # updated, not a third one
    assert persist(world, world.child_token).get_json()["id"] == mine["id"]  # hers stays hers
    assert sorted(r["id"] for r in stored(world, world.child_token)) == sorted([mine["id"], held["id"]])
    assert [r["id"] for r in stored(world, world.a)] == [held["id"]]        # A sees what it holds


def test_only_a_caller_who_may_write_it_stores_it(world):
    reader = mint(world.app, "patient/*.rs", subject=f"user-{world.child}", role="patient",
                  fhirUser=f"http://fhir.test/fhir/Patient/{world.child}", patient=world.child)
    assert world.forecast(reader, date=AS_OF)["recommendation"]          # reading is fine
    r = persist(world, reader)
    assert r.status_code == 403, r.get_data(as_text=True)
    assert persist(world, world.ravi_token).status_code == 404             # another patient: not there
    assert persist(world, world.b).status_code == 404                      # B cannot see her
    assert stored(world, world.system) == []


def test_persist_false_stores_nothing(world):
    r = world.status(world.child_token, method="POST", date=AS_OF, persist=False)
    assert r.status_code == 200 and "id" not in r.get_json()
    assert stored(world, world.system) == []


def test_the_search_recipe(world):
    """ImmunizationRecommendation?patient=X&status=due and the other R4 parameters are indexed."""
    iid = world.give(world.a, "198", SIX_WEEKS)
    world.give(world.a, "19", BIRTH)                          # BCG: that series is complete
    rid = persist(world, world.child_token).get_json()["id"]
    for query in ("&status=due", "&status=complete",
                  f"&vaccine-type={CVX}|198", f"&support=Immunization/{iid}", f"&date={AS_OF}",
                  f"&identifier={IDENTIFIER}|Patient/{world.child}",
                  "&status=https://medport.health/fhir/CodeSystem/immunization-forecast-status|not-yet-due"):
        assert [r["id"] for r in stored(world, world.child_token, query)] == [rid], query
    for query in (f"&vaccine-type={CVX}|99999", "&date=2031-03-04", "&status=overdue",
                  "&support=Immunization/other"):
        assert stored(world, world.child_token, query) == [], query


def test_persist_is_refused_in_the_query_string_of_a_post(world):
    r = world.send(world.child_token, "POST",
                   f"/fhir/Patient/{world.child}/$immunization-status?persist=true&date={AS_OF}")
    assert r.status_code == 400 and "valueBoolean" in issue(r)


def test_a_deleted_forecast_is_stored_again_under_the_same_id(world):
    saved = persist(world, world.child_token).get_json()
    r = world.send(world.child_token, "DELETE", f"/fhir/ImmunizationRecommendation/{saved['id']}")
    assert r.status_code in (200, 204), r.get_data(as_text=True)
    assert stored(world, world.child_token) == []
    again = persist(world, world.child_token).get_json()
    assert again["id"] == saved["id"] and again["meta"]["versionId"] == "3"     # create, delete, store
    assert [r["id"] for r in stored(world, world.child_token)] == [saved["id"]]


def test_a_consent_for_forecasts_shares_every_stored_forecast_not_the_doses(world):
    """docs/immunization.md: a Consent with class ImmunizationRecommendation shares her forecasts, the
    ones hospitals stored included (they name their doses), and no Immunization."""
    iid = world.give(world.a, "198", SIX_WEEKS)
    held = persist(world, world.a).get_json()
    mine = persist(world, world.child_token).get_json()
    assert stored(world, world.b) == []
    world.server(consent_for(f"Patient/{world.child}", classes=("ImmunizationRecommendation",), actor=B))
    assert sorted(r["id"] for r in stored(world, world.b)) == sorted([held["id"], mine["id"]])
    assert world.send(world.b, "GET", f"/fhir/Immunization/{iid}").status_code == 404
