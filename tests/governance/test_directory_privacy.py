"""The care directory is open (docs/governance.md: every authenticated client reads it; docs/directory.md:
the public directory needs no token), but a directory record about a patient is that patient's record:
a Schedule's actor may be a Patient (R4 Schedule.actor; the Patient CompartmentDefinition puts such a
Schedule in her compartment), say a hospital's home-dialysis visits for her. It was readable without a
token and by every hospital, naming her and what it is for. Now it follows the patient's rules (her
own token, the hospital that holds it, a hospital she shares Schedules with); the directory's other
records stay open. On both stores.
"""
from __future__ import annotations

import pytest

from tests.governance.test_org_leaks import consent_for
from tests.scheduling._world import World

MARK = "ASHA-HOME-DIALYSIS"


@pytest.fixture
def world(tmp_path, backend):
    w = World(tmp_path, backend)
    r = w.send(w.a, "POST", "/fhir/Schedule", {"resourceType": "Schedule", "active": True, "comment": MARK,
                                               "actor": [{"reference": f"Patient/{w.asha}"},
                                                         {"reference": "Practitioner/prac-a"}]})
    assert r.status_code == 201, r.get_data(as_text=True)
    w.home = r.get_json()["id"]
    return w


def reads(w: World, token) -> tuple[int, bool, bool]:
    """(read status, whether a search finds it, whether a search finds A's public schedule)"""
    read = w.send(token, "GET", f"/fhir/Schedule/{w.home}").status_code
    found = w.send(token, "GET", "/fhir/Schedule?_count=100").get_data(as_text=True)
    return read, MARK in found, f"Schedule/{w.schedule}" in found or f'"id":"{w.schedule}"' in found


def test_a_schedule_about_a_patient_is_not_in_the_open_directory(world):
    w = world
    assert reads(w, None) == (404, False, True)                 # no token: the public directory
    assert reads(w, w.b) == (404, False, True)                  # another hospital
    assert reads(w, w.ravi_token)[:2] == (404, False)           # another patient
    r = w.send(None, "GET", f"/fhir/Schedule?actor=Patient/{w.asha}")
    assert r.status_code == 200 and r.get_json()["total"] == 0
    assert w.send(None, "GET", f"/fhir/Slot?schedule=Schedule/{w.home}").get_json()["total"] == 0
    # absent like an id that does not exist
    assert w.send(None, "GET", "/fhir/Schedule/no-such-schedule").status_code == 404


def test_it_follows_the_patients_rules(world):
    w = world
    assert reads(w, w.a)[:2] == (200, True)                    # the hospital that holds it
    assert w.send(w.asha_token, "GET", f"/fhir/Schedule/{w.home}").status_code == 200     # the patient
    assert w.send(w.son_token, "GET", f"/fhir/Schedule/{w.home}").status_code == 200      # her proxy
    assert w.server(consent_for(f"Patient/{w.asha}", classes=("Schedule",), actor="Organization/hosp-b"))
    assert reads(w, w.b)[:2] == (200, True)                    # a hospital she shares Schedules with
