"""$hold, $book, $cancel and reschedule, on both stores (docs/scheduling.md): a Slot is taken by one
Appointment at a time, the Slot's state and the Appointment change in one transaction, an expired hold
counts as free and is swept by whoever takes its Slot."""
from __future__ import annotations

import pytest

from fhirserver.scheduling import state

from ._world import VACCINE, World, issue


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend)
    assert w.generate().status_code == 200
    return w


def ids(world) -> list[str]:
    return [s["id"] for s in world.slots()]


def test_book_marks_the_slot_busy_and_a_second_booking_is_409(world):
    sid = ids(world)[0]
    appt = world.appointment(world.book(world.asha_token, sid, world.asha))
    assert appt["status"] == "booked" and appt["slot"] == [{"reference": f"Slot/{sid}"}]
    assert (appt["start"], appt["end"]) == ("2031-03-03T09:00:00Z", "2031-03-03T09:30:00Z")
    assert {p["actor"]["reference"] for p in appt["participant"]} == {
        f"Patient/{world.asha}", "Location/loc-a", "Practitioner/prac-a"}
    slot = world.slot(sid)
    assert slot["status"] == "busy" and state.mark(slot) == (appt["id"], None)
    second = world.book(world.ravi_token, sid, world.ravi)
    assert second.status_code == 409 and "no longer available" in issue(second)
    assert [a["id"] for a in world.stored_appointments()] == [appt["id"]]
    assert sid not in {a["slot"][0]["reference"][5:] for a in world.find(query="&_count=100")}


def test_book_a_proposal_from_find(world):
    proposal = world.find(token=world.asha_token, query=f"&patient=Patient/{world.asha}&_count=1")[0]
    proposal["description"] = "follow-up"
    appt = world.appointment(world.op(world.asha_token, "Appointment/$book", appointment=proposal))
    assert appt["status"] == "booked" and appt["description"] == "follow-up"
    assert appt["slot"] == proposal["slot"] and appt["serviceType"] == proposal["serviceType"]
    assert world.slot(appt["slot"][0]["reference"][5:])["status"] == "busy"


def test_hold_then_book_confirms_the_hold(world):
    sid = ids(world)[1]
    held = world.appointment(world.book(world.asha_token, sid, world.asha, op="hold"))
    assert held["status"] == "pending"
    expires = [e["valueInstant"] for e in held["extension"] if e["url"] == state.HOLD_EXPIRES]
    assert len(expires) == 1 and state.parse(expires[0]) > state.now()
    assert world.slot(sid)["status"] == "busy-tentative"
    assert world.book(world.ravi_token, sid, world.ravi).status_code == 409        # held for asha
    assert world.book(world.ravi_token, sid, world.ravi, op="hold").status_code == 409
    assert sid not in {a["slot"][0]["reference"][5:] for a in world.find(query="&_count=100")}
    booked = world.appointment(world.op(world.asha_token, "Appointment/$book", appointment=held))
    assert booked["id"] == held["id"] and booked["status"] == "booked" and "extension" not in booked
    assert world.slot(sid)["status"] == "busy" and state.mark(world.slot(sid)) == (held["id"], None)
    again = world.op(world.asha_token, "Appointment/$book", appointment=held)      # no longer pending
    assert again.status_code == 409


def test_an_expired_hold_counts_as_free_and_is_swept_by_the_next_booking(tmp_path, backend):
    world = World(tmp_path, backend, appointment_hold_s=0)      # every hold has expired by the next request
    world.generate()
    sid = ids(world)[0]
    held = world.appointment(world.book(world.asha_token, sid, world.asha, op="hold"))
    assert world.slot(sid)["status"] == "busy-tentative"
    assert sid in {a["slot"][0]["reference"][5:] for a in world.find(query="&_count=100")}
    taken = world.appointment(world.book(world.ravi_token, sid, world.ravi))
    assert state.mark(world.slot(sid)) == (taken["id"], None)
    stale = world.send(world.system, "GET", f"/fhir/Appointment/{held['id']}").get_json()
    assert stale["status"] == "cancelled" and "expired" in stale["cancelationReason"]["text"]
    assert world.op(world.asha_token, "Appointment/$book", appointment=held).status_code == 409


def test_an_expired_hold_still_free_is_booked_by_its_holder(tmp_path, backend):
    world = World(tmp_path, backend, appointment_hold_s=0)
    world.generate()
    sid = ids(world)[0]
    held = world.appointment(world.book(world.asha_token, sid, world.asha, op="hold"))
    booked = world.appointment(world.op(world.asha_token, "Appointment/$book", appointment=held))
    assert booked["id"] == held["id"] and world.slot(sid)["status"] == "busy"


def test_cancel_frees_the_slots_in_the_same_transaction(world):
    sid = ids(world)[2]
    appt = world.appointment(world.book(world.asha_token, sid, world.asha))
    r = world.op(world.asha_token, f"Appointment/{appt['id']}/$cancel", reason="feeling better")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["status"] == "cancelled" and r.get_json()["cancelationReason"]["text"] == "feeling better"
    slot = world.slot(sid)
    assert slot["status"] == "free" and state.mark(slot) == (None, None)
    assert world.op(world.asha_token, f"Appointment/{appt['id']}/$cancel").status_code == 409
    world.appointment(world.book(world.ravi_token, sid, world.ravi))     # bookable again
    # the cancelled Appointment's custodian stays the hospital's after the patient's change
    assert world.send(world.a, "GET", f"/fhir/Appointment/{appt['id']}").status_code == 200


def test_cancel_frees_only_slots_the_appointment_holds(tmp_path, backend):
    world = World(tmp_path, backend, appointment_hold_s=0)
    world.generate()
    sid = ids(world)[0]
    held = world.appointment(world.book(world.asha_token, sid, world.asha, op="hold"))
    taken = world.appointment(world.book(world.ravi_token, sid, world.ravi))    # takes the expired hold
    assert world.op(world.asha_token, f"Appointment/{held['id']}/$cancel").status_code == 409   # swept already
    assert state.mark(world.slot(sid)) == (taken["id"], None)


def test_reschedule_books_the_new_slot_and_frees_the_old_one_atomically(world):
    first, second, third = ids(world)[:3]
    old = world.appointment(world.book(world.asha_token, first, world.asha))
    new = world.appointment(world.book(world.asha_token, second, world.asha,
                                       replaces={"reference": f"Appointment/{old['id']}"}))
    assert new["status"] == "booked" and new["id"] != old["id"]
    assert world.slot(first)["status"] == "free" and world.slot(second)["status"] == "busy"
    cancelled = world.send(world.system, "GET", f"/fhir/Appointment/{old['id']}").get_json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelationReason"]["text"] == "rescheduled"
    # into a taken slot: nothing changes (the old appointment stays booked, its slot busy)
    world.appointment(world.book(world.ravi_token, third, world.ravi))
    refused = world.book(world.asha_token, third, world.asha, replaces={"reference": f"Appointment/{new['id']}"})
    assert refused.status_code == 409
    assert world.send(world.system, "GET", f"/fhir/Appointment/{new['id']}").get_json()["status"] == "booked"
    assert state.mark(world.slot(second)) == (new["id"], None)
    # back into its own slot
    back = world.appointment(world.book(world.asha_token, second, world.asha,
                                        replaces={"reference": f"Appointment/{new['id']}"}))
    assert state.mark(world.slot(second)) == (back["id"], None)


def test_reschedule_keeps_the_patient(world):
    first, second = ids(world)[:2]
    old = world.appointment(world.book(world.a, first, world.asha))
    r = world.book(world.a, second, world.ravi, replaces={"reference": f"Appointment/{old['id']}"})
    assert r.status_code == 400
    assert world.slot(second)["status"] == "free" and world.slot(first)["status"] == "busy"


def test_a_vaccination_is_booked_on_the_same_path_based_on_its_order(world):
    order = world.send(world.a, "POST", "/fhir/ServiceRequest", {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": VACCINE,
        "subject": {"reference": f"Patient/{world.asha}"}}).get_json()["id"]
    sid = ids(world)[4]
    appt = world.appointment(world.book(world.asha_token, sid, world.asha,
                                        basedOn={"reference": f"ServiceRequest/{order}"}))
    assert appt["basedOn"] == [{"reference": f"ServiceRequest/{order}"}]
    found = world.send(world.asha_token, "GET", f"/fhir/Appointment?based-on=ServiceRequest/{order}").get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == [appt["id"]]


def test_booking_refuses_bad_input(world):
    sid = ids(world)[0]
    assert world.op(world.a, "Appointment/$book", slot={"reference": f"Slot/{sid}"}).status_code == 400
    assert world.op(world.a, "Appointment/$book", patient={"reference": f"Patient/{world.asha}"}).status_code == 400
    assert world.book(world.a, "nope", world.asha).status_code == 404
    assert world.op(world.a, "Appointment/$book", slot={"reference": "Location/x"},
                    patient={"reference": f"Patient/{world.asha}"}).status_code == 400
    assert world.send(world.a, "GET", f"/fhir/Appointment/$book?slot=Slot/{sid}").status_code == 405
    assert world.slot(sid)["status"] == "free" and world.stored_appointments() == []
