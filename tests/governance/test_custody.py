"""Custody survives deletion (docs/governance.md, "Who holds a record"): only the custodian organisation
changes or deletes a record, and bringing a deleted record back (update-as-create over its deletion,
http.html#update) is a change of that record. Otherwise another hospital could PUT the id of a
deleted Schedule, Location or Organization its owner published, become the new version's custodian,
and act as the publisher: book the Slots the first hospital made on that Schedule (scheduling/who.py
books a Slot for the hospital holding its Schedule), or keep the deleted record's place in the
directory. On both stores.
"""
from __future__ import annotations

import pytest

from tests.scheduling._world import World, issue


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend)
    assert w.generate().status_code == 200          # A's Slots on its Schedule
    return w


def published(w: World, key: str) -> dict:
    body = w.send(w.a, "GET", f"/fhir/{key}").get_json()
    body.pop("meta")
    return body


@pytest.mark.parametrize("key", ["Schedule/sched-a", "Location/loc-a", "Practitioner/prac-a"])
def test_another_hospital_cannot_bring_back_a_deleted_record_it_never_held(world, key):
    w = world
    body = published(w, key)
    assert w.send(w.a, "DELETE", f"/fhir/{key}").status_code == 204
    for method, url in (("PUT", f"/fhir/{key}"), ("PUT", f"/fhir/{key.split('/')[0]}?_id={key.split('/')[1]}")):
        r = w.send(w.b, method, url, body)
        assert r.status_code == 403, r.get_data(as_text=True)
        assert "custodian" in issue(r)
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": body, "request": {"method": "PUT", "url": key}}]}
    assert w.send(w.b, "POST", "/fhir", bundle).status_code == 403
    assert w.send(w.system, "GET", f"/fhir/{key}").status_code == 410      # still deleted
    # its custodian brings it back, and holds it again
    r = w.send(w.a, "PUT", f"/fhir/{key}", body)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert w.send(w.b, "PUT", f"/fhir/{key}", body).status_code == 403


def test_another_hospital_cannot_take_over_a_deleted_schedule_to_book_its_slots(world):
    w = world
    slot = w.slots()[0]["id"]
    schedule = published(w, f"Schedule/{w.schedule}")
    assert w.send(w.a, "DELETE", f"/fhir/Schedule/{w.schedule}").status_code == 204
    assert w.send(w.b, "PUT", f"/fhir/Schedule/{w.schedule}", schedule).status_code == 403
    assert w.book(w.b, slot, w.asha).status_code in (403, 404, 410)   # its Schedule is gone, not B's
    assert w.slot(slot)["status"] == "free"
