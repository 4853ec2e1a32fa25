"""Who may book, hold and cancel (docs/scheduling.md, "Who may book"), on both stores: the patient for
themselves, their family proxy for them, the publishing hospital's clients for anyone; never a patient
for another patient, never another hospital; a patient's booking is held by (so visible to) the
publishing hospital and to nobody else."""
from __future__ import annotations

import pytest

from fhirserver.governance import custodian
from fhirserver.smart_auth.accounts import Users
from tests.smart_auth._tokens import mint

from ._world import PASSWORD, A, World


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend)
    assert w.generate().status_code == 200
    assert w.generate(token=w.b, schedule=w.b_schedule).status_code == 200
    return w


def slot_ids(world, schedule=None) -> list[str]:
    return [s["id"] for s in world.slots(schedule)]


def nothing_booked(world, sid) -> bool:
    return world.slot(sid)["status"] == "free" and world.stored_appointments() == []


def test_a_patient_books_for_themselves_and_the_hospital_holds_the_booking(world):
    sid = slot_ids(world)[0]
    appt = world.appointment(world.book(world.asha_token, sid, world.asha))
    stored = world.send(world.system, "GET", f"/fhir/Appointment/{appt['id']}").get_json()
    assert custodian.of(stored) == A
    assert world.send(world.asha_token, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 200
    assert world.send(world.a, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 200
    listed = world.send(world.a, "GET", "/fhir/Appointment?actor=Practitioner/prac-a").get_json()
    assert [e["resource"]["id"] for e in listed.get("entry", ())] == [appt["id"]]
    assert world.send(world.b, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 404
    assert world.send(world.ravi_token, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 404
    assert world.send(world.b, "GET", "/fhir/Appointment").get_json().get("total") == 0


@pytest.mark.parametrize("op", ["book", "hold"])
def test_a_patient_never_books_for_another_patient(world, op):
    sid = slot_ids(world)[0]
    r = world.book(world.ravi_token, sid, world.asha, op=op)
    assert r.status_code == 403
    assert nothing_booked(world, sid)
    proposal = world.find(query=f"&patient=Patient/{world.asha}&_count=1")[0]      # asha's proposal, sent by ravi
    r = world.op(world.ravi_token, f"Appointment/${op}", appointment=proposal)
    assert r.status_code == 403
    assert nothing_booked(world, proposal["slot"][0]["reference"][5:])


def test_a_proxy_books_for_the_patient_they_act_for_only(world):
    first, second = slot_ids(world)[:2]
    appt = world.appointment(world.book(world.son_token, first, world.asha))
    assert f"Patient/{world.asha}" in {p["actor"]["reference"] for p in appt["participant"]}
    assert world.send(world.asha_token, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 200
    assert world.book(world.son_token, second, world.ravi).status_code == 403
    assert world.slot(second)["status"] == "free"
    r = world.op(world.son_token, f"Appointment/{appt['id']}/$cancel", reason="mother is away")
    assert r.status_code == 200 and world.slot(first)["status"] == "free"


def test_the_publishing_hospital_books_for_any_patient_and_another_hospital_cannot(world):
    mine, theirs = slot_ids(world)[0], slot_ids(world, world.b_schedule)[0]
    appt = world.appointment(world.book(world.a, mine, world.ravi))
    assert custodian.of(world.send(world.system, "GET", f"/fhir/Appointment/{appt['id']}").get_json()) == A
    assert world.send(world.ravi_token, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 200
    r = world.book(world.a, theirs, world.asha)             # hospital B's slot
    assert r.status_code == 403
    assert world.slot(theirs)["status"] == "free"
    assert world.book(world.a, theirs, world.asha, op="hold").status_code == 403
    assert world.book(world.b, theirs, world.asha).status_code == 200


def test_only_the_patient_and_the_holding_hospital_cancel(world):
    sid = slot_ids(world)[0]
    appt = world.appointment(world.book(world.asha_token, sid, world.asha))
    for token in (world.ravi_token, world.b):              # outside their reach: like an absent appointment
        r = world.op(token, f"Appointment/{appt['id']}/$cancel")
        assert r.status_code == 404
        assert r.get_json()["issue"][0]["diagnostics"] == world.op(token, "Appointment/absent/$cancel").get_json()[
            "issue"][0]["diagnostics"].replace("absent", appt["id"])
    assert world.slot(sid)["status"] == "busy"
    assert world.op(world.a, f"Appointment/{appt['id']}/$cancel").status_code == 200
    assert world.slot(sid)["status"] == "free"


def test_a_patients_token_cannot_reschedule_another_patients_appointment(world):
    first, second = slot_ids(world)[:2]
    theirs = world.appointment(world.book(world.a, first, world.ravi))
    r = world.book(world.asha_token, second, world.asha, replaces={"reference": f"Appointment/{theirs['id']}"})
    assert r.status_code == 404
    assert world.slot(second)["status"] == "free" and world.slot(first)["status"] == "busy"


def test_a_regulator_does_not_book(world):
    Users(world.ctx.store).add("watchdog", PASSWORD, "regulator")
    token = mint(world.app, "user/*.cruds", subject="watchdog", role="regulator")
    sid = slot_ids(world)[0]
    assert world.book(token, sid, world.asha).status_code == 403
    assert nothing_booked(world, sid)
