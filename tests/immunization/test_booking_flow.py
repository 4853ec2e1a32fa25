"""ImmunizationRecommendation -> Appointment -> Immunization over HTTP (docs/immunization.md, "From a
due dose to a recorded vaccination"), on both stores: the mother sees the due dose, finds a free
vaccination slot of hospital A ($find with the vaccination service type), books it ($book), hospital A
records the Immunization, and the forecast moves on to the next dose."""
from __future__ import annotations

import pytest

from tests.scheduling._world import SNOMED, VACCINE

from ._world import CVX, SIX_WEEKS, VaccinationWorld, by_series, criteria, status_of

PENTA = "Pentavalent (DTwP-HepB-Hib)"


@pytest.fixture
def world(tmp_path, backend):
    w = VaccinationWorld(tmp_path, backend)
    vacc = {"resourceType": "Schedule", "id": "sched-vacc", "active": True, "serviceType": [VACCINE],
            "actor": [{"reference": "Location/loc-a"}]}
    assert w.send(w.a, "PUT", "/fhir/Schedule/sched-vacc", vacc).status_code == 201
    r = w.generate(schedule="sched-vacc", start="2031-03-17", end="2031-03-21", minutes=15)
    assert r.status_code == 200, r.get_data(as_text=True)
    return w


def test_a_due_dose_is_booked_recorded_and_the_forecast_moves_on(world):
    world.give(world.a, "198", SIX_WEEKS)                        # Pentavalent-1, given at 6 weeks
    as_of = "2031-03-17"                                          # 10 weeks: Pentavalent-2 is due
    due = by_series(world.forecast(world.mother_token, date=as_of))[PENTA]
    assert status_of({"recommendation": [due]}, PENTA) == ("due", "Pentavalent-2: dose 2 of 3")

    # find a vaccination slot on or after the due date, for the child
    r = world.send(world.mother_token, "GET", f"/fhir/Appointment/$find?start={as_of}&end=2031-03-22"
                   f"&service-type={SNOMED}|33879002&patient=Patient/{world.child}&_count=1")
    assert r.status_code == 200, r.get_data(as_text=True)
    proposal = r.get_json()["entry"][0]["resource"]
    assert proposal["serviceType"] == [VACCINE] and proposal["start"] >= as_of
    proposal["reasonCode"] = due["vaccineCode"]                 # what the appointment is for
    proposal["description"] = due["description"]
    appointment = world.appointment(world.op(world.mother_token, "Appointment/$book", appointment=proposal))
    assert appointment["status"] == "booked" and appointment["reasonCode"] == due["vaccineCode"]
    booked = world.send(world.a, "GET", f"/fhir/Appointment?patient=Patient/{world.child}"
                        f"&service-type={SNOMED}|33879002&date=ge{as_of}").get_json()
    assert [e["resource"]["id"] for e in booked["entry"]] == [appointment["id"]]   # the hospital sees it

    # the hospital gives the dose at the appointment and records it
    given = world.give(world.a, "198", appointment["start"], location={"reference": "Location/loc-a"})
    after = by_series(world.forecast(world.mother_token, date=appointment["start"][:10]))[PENTA]
    assert status_of({"recommendation": [after]}, PENTA) == ("not-yet-due", "Pentavalent-3: dose 3 of 3")
    assert {"reference": f"Immunization/{given}"} in after["supportingImmunization"]
    # dose 3: at 14 weeks (2031-04-14), which is 4 weeks after dose 2 (2031-03-17) exactly
    assert appointment["start"][:10] == as_of
    assert (criteria(after)["30981-5"], criteria(after)["30980-7"]) == ("2031-04-14", "2031-04-14")
    recorded = world.send(world.mother_token, "GET", f"/fhir/Immunization?patient=Patient/{world.child}"
                          f"&vaccine-code={CVX}|198&_total=accurate").get_json()
    assert recorded["total"] == 2
