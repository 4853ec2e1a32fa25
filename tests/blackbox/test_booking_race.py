"""The booking race over HTTP (docs/scheduling.md, Atomicity): `medport serve` with several worker
processes, 20 client threads booking the same Slot at once. Exactly one booking succeeds; the 19 others
answer 409 with an OperationOutcome saying the slot is no longer available; the Slot is busy, held by
the one stored Appointment."""
from __future__ import annotations

import requests

from ._server import JSON_HEADERS, TIMEOUT, get, put, session
from .test_concurrency import _run_threads

N = 20


def _parameters(slot: str, patient: str) -> dict:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "slot", "valueReference": {"reference": f"Slot/{slot}"}},
        {"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}}]}


def test_twenty_concurrent_bookings_of_one_slot_give_one_success(server_factory, tmp_path):
    srv = server_factory(tmp_path / "race.db", workers=3, threads=8, env={"MEDPORT_WORKER": "off"})
    base, s = srv.base, session()
    assert put(s, f"{base}/Location/race-loc", {
        "resourceType": "Location", "id": "race-loc", "name": "OPD",
        "hoursOfOperation": [{"daysOfWeek": ["mon"], "openingTime": "09:00:00", "closingTime": "10:00:00"}]}
    ).status_code == 201
    assert put(s, f"{base}/Schedule/race", {"resourceType": "Schedule", "id": "race",
                                            "actor": [{"reference": "Location/race-loc"}]}).status_code == 201
    made = s.post(f"{base}/Schedule/race/$generate-slots", headers=JSON_HEADERS, timeout=TIMEOUT, json={
        "resourceType": "Parameters", "parameter": [{"name": "start", "valueDate": "2031-03-03"},
                                                    {"name": "end", "valueDate": "2031-03-03"},
                                                    {"name": "minutes", "valueInteger": 60}]})
    assert made.status_code == 200, made.text
    slot = get(s, f"{base}/Slot?schedule=Schedule/race").json()["entry"][0]["resource"]["id"]
    patients = []
    for n in range(N):
        r = put(s, f"{base}/Patient/race-{n}", {"resourceType": "Patient", "id": f"race-{n}",
                                                 "name": [{"family": "Race", "given": [str(n)]}]})
        assert r.status_code == 201, r.text
        patients.append(f"race-{n}")

    answers: list = [None] * N

    def book(n: int) -> None:
        r = requests.Session().post(f"{base}/Appointment/$book", json=_parameters(slot, patients[n]),
                                    headers=JSON_HEADERS, timeout=TIMEOUT)
        answers[n] = (r.status_code, r.json())

    _run_threads(book, N)
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200] + [409] * (N - 1), statuses
    winner = next(body for status, body in answers if status == 200)
    appointment = winner["entry"][0]["resource"]
    assert appointment["status"] == "booked"
    for status, body in answers:
        if status == 409:
            assert body["resourceType"] == "OperationOutcome"
            assert "no longer available" in body["issue"][0]["diagnostics"]
    stored = get(s, f"{base}/Appointment").json()
    assert stored["total"] == 1 and stored["entry"][0]["resource"]["id"] == appointment["id"]
    booked = get(s, f"{base}/Slot/{slot}").json()
    assert booked["status"] == "busy"
    assert any(p.get("valueReference", {}).get("reference") == f"Appointment/{appointment['id']}"
               for e in booked["extension"] for p in e["extension"])
