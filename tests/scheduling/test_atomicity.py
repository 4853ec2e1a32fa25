"""The Slot's state and the Appointment change together or not at all (docs/scheduling.md, Atomicity),
on both stores: a failure injected at the Appointment's write, after its Slots were written in the same
unit, leaves the Slots as they were and stores no Appointment."""
from __future__ import annotations

import pytest

from fhirserver.interactions import common
from fhirserver.scheduling import book, cancel, state

from ._world import World


class Boom(RuntimeError):
    pass


def failing_appointment_write(monkeypatch, module):
    real = common.store_new_version

    def write(tx, prepared, id, method, current):
        if prepared.type == "Appointment":
            raise Boom("injected")
        return real(tx, prepared, id, method, current)
    monkeypatch.setattr(module, "store_new_version", write)


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend)
    assert w.generate().status_code == 200
    return w


def test_a_booking_that_fails_after_taking_its_slot_takes_nothing(world, monkeypatch):
    sid = world.slots()[0]["id"]
    failing_appointment_write(monkeypatch, book)
    assert world.book(world.asha_token, sid, world.asha).status_code == 500
    assert world.slot(sid)["status"] == "free" and world.stored_appointments() == []
    monkeypatch.undo()
    assert world.book(world.asha_token, sid, world.asha).status_code == 200


def test_a_cancel_that_fails_after_freeing_its_slot_frees_nothing(world, monkeypatch):
    sid = world.slots()[0]["id"]
    appt = world.appointment(world.book(world.asha_token, sid, world.asha))
    failing_appointment_write(monkeypatch, cancel)
    assert world.op(world.asha_token, f"Appointment/{appt['id']}/$cancel").status_code == 500
    assert state.mark(world.slot(sid)) == (appt["id"], None) and world.slot(sid)["status"] == "busy"
    assert world.send(world.system, "GET", f"/fhir/Appointment/{appt['id']}").get_json()["status"] == "booked"


def test_a_reschedule_that_fails_at_the_new_appointment_keeps_the_old_booking(world, monkeypatch):
    first, second = [s["id"] for s in world.slots()[:2]]
    old = world.appointment(world.book(world.asha_token, first, world.asha))
    failing_appointment_write(monkeypatch, book)      # the old one is cancelled (cancel's write), then this fails
    r = world.book(world.asha_token, second, world.asha, replaces={"reference": f"Appointment/{old['id']}"})
    assert r.status_code == 500
    assert world.slot(first)["status"] == "busy" and world.slot(second)["status"] == "free"
    assert world.send(world.system, "GET", f"/fhir/Appointment/{old['id']}").get_json()["status"] == "booked"
    assert len(world.stored_appointments()) == 1
