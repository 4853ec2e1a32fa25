"""Schedule/[id]/$generate-slots and Appointment/$find, on both stores (docs/scheduling.md)."""
from __future__ import annotations

import pytest

from fhirserver.scheduling import slots as slots_mod

from ._world import CARDIO, CONSULT, SNOMED, World, issue


@pytest.fixture
def world(tmp_path, backend):
    return World(tmp_path, backend)


def test_generate_slots_from_opening_hours_is_idempotent(world):
    r = world.generate(end="2031-03-09", minutes=30)       # Monday to Sunday: five open days of 09:00-12:00
    assert r.status_code == 200, r.get_data(as_text=True)
    assert {p["name"]: p["valueInteger"] for p in r.get_json()["parameter"]} == {"created": 30, "existing": 0}
    found = world.slots()
    assert len(found) == 30
    assert (found[0]["start"], found[0]["end"]) == ("2031-03-03T09:00:00Z", "2031-03-03T09:30:00Z")
    assert found[5]["end"] == "2031-03-03T12:00:00Z" and found[6]["start"] == "2031-03-04T09:00:00Z"
    assert {s["status"] for s in found} == {"free"}
    assert found[0]["serviceType"] == [CONSULT] and found[0]["specialty"] == [CARDIO]
    again = world.generate(start="2031-03-02", end="2031-03-10", minutes=30)     # overlapping range: no duplicates
    assert {p["name"]: p["valueInteger"] for p in again.get_json()["parameter"]} == {"created": 6, "existing": 30}
    assert len(world.slots()) == 36
    assert found[0]["id"] == slots_mod.slot_id(world.schedule, found[0]["start"], found[0]["end"])


def test_generate_slots_in_a_time_zone_and_within_the_planning_horizon(world):
    sched = world.send(world.a, "GET", f"/fhir/Schedule/{world.schedule}").get_json()
    sched["planningHorizon"] = {"start": "2031-03-03T04:00:00Z", "end": "2031-03-03T06:00:00Z"}
    assert world.send(world.a, "PUT", f"/fhir/Schedule/{world.schedule}", sched).status_code == 200
    r = world.generate(minutes=60, timezone="Asia/Kolkata")      # 09:00-12:00 IST = 03:30-06:30 UTC
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [(s["start"], s["end"]) for s in world.slots()] == [("2031-03-03T04:30:00Z", "2031-03-03T05:30:00Z")]


def test_only_the_schedules_hospital_generates_its_slots(world):
    assert world.generate(token=world.b).status_code == 403
    # a patient never generates: 403, or 404 where the patient's scopes do not reach Schedules at all
    # (no place in their compartment) and the operation answers as the Schedule's read
    assert world.generate(token=world.asha_token).status_code in (403, 404)
    assert world.slots() == []
    assert world.generate(token=world.system).status_code == 200       # the exchange's own tools


def test_generate_slots_refuses_bad_input(world):
    assert world.generate(minutes=0).status_code == 400
    assert world.generate(start="2031-03-05", end="2031-03-03").status_code == 400
    assert world.generate(timezone="Mars/Olympus").status_code == 400
    assert "too-costly" in world.generate(end="2033-03-03").get_data(as_text=True)
    assert world.send(world.a, "GET", f"/fhir/Schedule/{world.schedule}/$generate-slots").status_code == 405
    bare = {"resourceType": "Schedule", "id": "bare", "actor": [{"reference": "Practitioner/prac-a"}]}
    assert world.send(world.a, "PUT", "/fhir/Schedule/bare", bare).status_code == 201
    assert "opening hours" in issue(world.generate(schedule="bare"))


def test_find_proposes_free_slots_by_criteria(world):
    world.generate()
    world.generate(token=world.b, schedule=world.b_schedule)
    every = world.find(query="&_count=100")
    assert len(every) == 12 and {a["status"] for a in every} == {"proposed"}
    assert [a["start"] for a in every] == sorted(a["start"] for a in every)
    mine = world.find(query="&practitioner=Practitioner/prac-a&_count=100")
    assert len(mine) == 6
    assert {p["actor"]["reference"] for p in mine[0]["participant"]} == {"Location/loc-a", "Practitioner/prac-a"}
    assert mine[0]["slot"][0]["reference"].startswith("Slot/") and mine[0]["serviceType"] == [CONSULT]
    assert len(world.find(query="&location=Location/loc-b&_count=100")) == 6
    assert len(world.find(query=f"&service-type={SNOMED}|11429006&specialty=394579002&_count=100")) == 12
    assert world.find(query=f"&service-type={SNOMED}|33879002") == []
    assert len(world.find(query="&_count=2")) == 2
    near = world.find(query="&near=12.98|77.60|10|km&_count=100")       # Bengaluru, not Mumbai
    assert len(near) == 6 and {p["actor"]["reference"] for a in near for p in a["participant"]} >= {"Location/loc-a"}
    assert world.find(query="&near=0|0|1|km") == []
    late = world.send(world.a, "GET", "/fhir/Appointment/$find?start=2031-03-03T10:30:00Z&end=2031-03-03T11:30:00Z"
                                      "&practitioner=Practitioner/prac-a").get_json()
    assert [e["resource"]["start"] for e in late["entry"]] == ["2031-03-03T10:30:00Z", "2031-03-03T11:00:00Z"]
    with_patient = world.find(query=f"&patient=Patient/{world.asha}&_count=1")
    assert {"actor": {"reference": f"Patient/{world.asha}"}, "status": "needs-action"} in with_patient[0]["participant"]


def test_a_patients_token_finds_slots_and_stores_nothing(world):
    world.generate()
    before = len(world.stored_appointments())
    found = world.find(token=world.asha_token, query="&_count=100")
    assert len(found) == 6
    assert len(world.stored_appointments()) == before == 0
    other = world.send(world.asha_token, "GET", f"/fhir/Appointment/$find?patient=Patient/{world.ravi}")
    assert other.status_code == 403


def test_find_refuses_bad_input(world):
    for query in ("start=tomorrow", "start=2031-03-05&end=2031-03-04", "near=91|0", "practitioner=Location/x",
                  "_count=0", "color=blue"):
        assert world.send(world.a, "GET", f"/fhir/Appointment/$find?{query}").status_code == 400, query
    assert world.send(world.a, "GET", "/fhir/Appointment/x/$find").status_code == 404
