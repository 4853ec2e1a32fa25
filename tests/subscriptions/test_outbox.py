"""Events are written by the one write path in the same store transaction as the change
(fhirserver/subscriptions/events.py), on both stores: a write that rolls back leaves no event and no
number used, a write that commits always has its event; numbers have no gaps under concurrent writers;
an event is recorded only for a subscriber that may read the changed content at that moment."""
from __future__ import annotations

import pytest

from fhirserver.interactions.common import new_id, prepare, store_new_version
from fhirserver.subscriptions import state
from tests.blackbox.test_concurrency import _run_threads
from tests.scheduling._world import delegation

from ._world import A, B, World

HOOK = "https://hooks.example.org/medport"


@pytest.fixture
def world(tmp_path, backend):
    return World(tmp_path, backend)


def numbers(world, sid) -> list[int]:
    return [e["n"] for e in state.events(world.ctx.store, sid)]


def outbox(world, sid) -> list[int]:
    return [e["n"] for e in state.pending(world.ctx.store).get(sid, [])]


def test_a_committed_write_has_its_event_and_a_rolled_back_one_has_none(world):
    sid = world.subscribe(world.b, HOOK, filters=[f"Task?owner={B}"])["id"]
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "owner": {"reference": B}}

    class Boom(Exception):
        pass

    ctx = world.ctx
    with pytest.raises(Boom):
        with ctx.repo.transaction() as tx:
            store_new_version(tx, prepare(ctx, "Task", dict(task)), new_id(), "POST", None)
            assert outbox(world, sid) == [1]            # recorded inside the unit...
            raise Boom
    assert numbers(world, sid) == [] and outbox(world, sid) == []     # ...and gone with it
    assert state.events_since(ctx.store, sid) == 0
    # a transaction Bundle whose second entry fails: the first entry's event goes too
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": task, "request": {"method": "POST", "url": "Task"}},
        {"resource": {**task, "id": "t-x"}, "request": {"method": "PUT", "url": "Task/t-x", "ifMatch": 'W/"7"'}}]}
    assert world.send(world.a, "POST", "/fhir", bundle).status_code >= 400
    assert numbers(world, sid) == []
    created = world.task(world.a, B)
    assert numbers(world, sid) == [1] and outbox(world, sid) == [1]
    event = state.events(ctx.store, sid)[0]
    assert event["focus"] == f"Task/{created['id']}/_history/1"
    world.task(world.a, A)                              # another owner: the filter leaves it out
    created["status"] = "accepted"
    r = world.send(world.b, "PUT", f"/fhir/Task/{created['id']}", created)     # the owner accepts
    assert r.status_code == 200, r.get_data(as_text=True)
    assert numbers(world, sid) == [1, 2] and state.events(ctx.store, sid)[1]["focus"].endswith("/_history/2")


def test_event_numbers_have_no_gaps_under_concurrent_writers(world):
    sid = world.subscribe(world.b, HOOK)["id"]
    k = 8

    def write(n):
        client = world.app.test_client()
        for _ in range(3):
            r = client.post("/fhir/Task", json={"resourceType": "Task", "status": "requested", "intent": "order",
                                                "owner": {"reference": B}},
                            headers={"Authorization": f"Bearer {world.a}", "Content-Type": "application/fhir+json"})
            assert r.status_code == 201, r.get_data(as_text=True)

    _run_threads(write, k)
    assert numbers(world, sid) == list(range(1, 3 * k + 1))
    assert state.events_since(world.ctx.store, sid) == 3 * k


def test_no_event_for_a_subscriber_that_may_not_read_the_content(world):
    hospital = world.subscribe(world.a, HOOK, topic_name="diagnostic-report-final")["id"]
    asha = world.subscribe(world.asha_token, HOOK, topic_name="diagnostic-report-final")["id"]
    ravi = world.subscribe(world.ravi_token, HOOK, topic_name="diagnostic-report-final")["id"]

    def report(token, patient):
        r = world.send(token, "POST", "/fhir/DiagnosticReport", {
            "resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
            "subject": {"reference": f"Patient/{patient}"}})
        assert r.status_code == 201, r.get_data(as_text=True)

    report(world.b, world.asha)          # held by B; asha shares nothing with A
    assert numbers(world, hospital) == [] and numbers(world, asha) == [1] and numbers(world, ravi) == []
    report(world.a, world.ravi)          # held by A
    assert numbers(world, hospital) == [1] and numbers(world, asha) == [1] and numbers(world, ravi) == [1]


def test_no_work_and_no_event_without_a_live_subscription(world):
    sid = world.subscribe(world.b, HOOK)["id"]
    sub = world.send(world.b, "GET", f"/fhir/Subscription/{sid}").get_json()
    sub["status"] = "off"
    assert world.send(world.b, "PUT", f"/fhir/Subscription/{sid}", sub).status_code == 200
    world.task(world.a, B)
    assert numbers(world, sid) == []
    assert world.send(world.b, "DELETE", f"/fhir/Subscription/{sid}").status_code == 204
    world.task(world.a, B)
    assert numbers(world, sid) == [] and world.ctx.store.get_record(state.SUB, sid) is None


def test_operations_and_deletes_fire_through_the_same_write_path(world):
    """$book writes the Appointment through the one write path: its event comes with it; a deleted
    Consent fires consent-changed, judged by the content it had."""
    booked = world.subscribe(world.asha_token, HOOK, topic_name="appointment-booked-cancelled")["id"]
    consents = world.subscribe(world.asha_token, HOOK, topic_name="consent-changed",
                               filters=[f"Consent?patient=Patient/{world.asha}"])["id"]
    assert world.generate().status_code == 200
    slot = world.slots()[0]["id"]
    appointment = world.appointment(world.book(world.asha_token, slot, world.asha))
    assert [e["focus"] for e in state.events(world.ctx.store, booked)] == [f"Appointment/{appointment['id']}/_history/1"]
    before = numbers(world, consents)           # the delegation Consent of the world was written before
    r = world.send(world.asha_token, "POST", "/fhir/Consent", delegation(world.asha, world.son))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert world.send(world.asha_token, "DELETE", f"/fhir/Consent/{r.get_json()['id']}").status_code == 204
    events = state.events(world.ctx.store, consents)
    assert [e["n"] for e in events] == before + [1, 2] and [e["deleted"] for e in events] == [False, True]


def test_judging_an_event_inside_a_write_that_rolls_back_leaves_no_trace_in_the_policy(world):
    """The hook judges the subscriber through its read guard inside the write's transaction; a
    hospital's guard reads the patients' Consents there, uncommitted ones included. A transaction that
    then rolls back must not leave its Consent behind in the policy's cache (SQLite gives the next
    version the same write number, so a cache keyed on it took the phantom Consent for the next one)."""
    world.subscribe(world.b, HOOK, topic_name="diagnostic-report-final")
    ctx = world.ctx
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
              "subject": {"reference": f"Patient/{world.asha}"}}
    r = world.send(world.a, "POST", "/fhir/DiagnosticReport", report)       # held by A
    assert r.status_code == 201, r.get_data(as_text=True)
    held_by_a = r.get_json()["id"]
    assert world.send(world.b, "GET", f"/fhir/DiagnosticReport/{held_by_a}").status_code == 404
    sharing = sharing_consent(world.asha, B)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with ctx.repo.transaction() as tx:
            store_new_version(tx, prepare(ctx, "Consent", dict(sharing)), new_id(), "POST", None)
            store_new_version(tx, prepare(ctx, "DiagnosticReport", dict(report)), new_id(), "POST", None)
            raise Boom
    # the next version written is a Consent too (ravi's, sharing nothing with B)
    r = world.send(world.ravi_token, "POST", "/fhir/Consent", sharing_consent(world.ravi, A))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert world.send(world.b, "GET", f"/fhir/DiagnosticReport/{held_by_a}").status_code == 404


def sharing_consent(patient: str, actor: str) -> dict:
    """A patient's active Consent sharing every record with one organisation (docs/governance.md)."""
    return {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient}"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                     "code": "IRCP"}]}, "reference": {"reference": actor}}]}}


def test_a_write_judges_only_the_subscriptions_of_the_patients_it_names(world, monkeypatch):
    """Patient-confined subscribers are kept by patient (events.Bucket): a report about asha is read-checked
    for asha's and her son's subscriptions and the hospitals', never for the other patients' (a write's
    cost does not grow with how many patients subscribe); each still gets exactly its own events."""
    from fhirserver.subscriptions import events
    asha = world.subscribe(world.asha_token, HOOK, topic_name="diagnostic-report-final")["id"]
    son = world.subscribe(world.son_token, HOOK, topic_name="diagnostic-report-final")["id"]
    ravi = world.subscribe(world.ravi_token, HOOK, topic_name="diagnostic-report-final")["id"]
    hospital = world.subscribe(world.a, HOOK, topic_name="diagnostic-report-final")["id"]
    judged = []
    real = events._may_read
    monkeypatch.setattr(events, "_may_read", lambda tx, sub, *a: judged.append(sub.id) or real(tx, sub, *a))
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
              "subject": {"reference": f"Patient/{world.asha}"}}
    assert world.send(world.a, "POST", "/fhir/DiagnosticReport", report).status_code == 201
    assert sorted(judged) == sorted([asha, son, hospital])
    assert [len(numbers(world, s)) for s in (asha, son, ravi, hospital)] == [1, 1, 0, 1]
