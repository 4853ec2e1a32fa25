"""Delivery by the worker's pass (fhirserver/subscriptions/deliver.py) to a real HTTP receiver on
127.0.0.1, on both stores, with an injected clock: handshake then active, channel headers, id-only and
full-resource payloads (content only while the subscriber may read it), heartbeats, retries with
exponential backoff, status error after the last attempt (events still counted), reactivation, and
$status / $events."""
from __future__ import annotations

import pytest

from fhirserver.bulk.jobs import Lease
from fhirserver.smart_auth.accounts import Users
from fhirserver.subscriptions import state
from fhirserver.subscriptions.deliver import Deliveries
from tests.smart_auth._tokens import BASE, mint

from ._world import B, Receiver, World, status_of


@pytest.fixture
def world(tmp_path, backend):
    return World(tmp_path, backend)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def sub_status(world, token, sid) -> str:
    return world.send(token, "GET", f"/fhir/Subscription/{sid}").get_json()["status"]


def test_handshake_headers_and_an_id_only_event(world, receiver):
    sid = world.subscribe(world.b, receiver.url, filters=[f"Task?owner={B}"],
                          headers=["Authorization: Bearer hook-secret", "X-Tenant: lab-b"])["id"]
    assert world.deliver() == 1 and receiver.kinds() == ["handshake"]
    _path, headers, handshake = receiver.received[0]
    assert headers["Authorization"] == "Bearer hook-secret" and headers["X-Tenant"] == "lab-b"
    assert headers["Content-Type"] == "application/fhir+json"
    assert handshake["type"] == "history" and len(handshake["entry"]) == 1
    assert status_of(handshake)["subscription"]["reference"].endswith(f"/Subscription/{sid}")
    assert sub_status(world, world.b, sid) == "active"
    assert world.deliver() == 0                          # nothing to send, no heartbeat asked
    task = world.task(world.a, B)
    assert world.deliver() == 1 and receiver.kinds() == ["handshake", "event-notification"]
    note = receiver.received[1][2]
    status = status_of(note)
    assert status["events-since-subscription-start"] == "1" and status["status"] == "active"
    assert [e["event-number"] for e in status["notification-event"]] == ["1"]
    assert status["notification-event"][0]["focus"]["reference"].endswith(f"/Task/{task['id']}")
    focus = note["entry"][1]
    assert focus["fullUrl"].endswith(f"/Task/{task['id']}") and "resource" not in focus
    assert state.pending(world.ctx.store) == {}           # delivered: out of the outbox
    assert len(state.events(world.ctx.store, sid)) == 1    # kept for $events


def test_full_resource_only_while_the_subscriber_may_read_it(world, receiver):
    Users(world.ctx.store).add("doc-b", "pw-doc-b-1234567", "practitioner", "Practitioner/prac-b")
    doctor = mint(world.app, "user/*.cruds", subject="doc-b", client_id="hosp-b-ehr", organization=B,
                  role="practitioner", fhirUser=f"{BASE}/Practitioner/prac-b")
    sid = world.subscribe(doctor, receiver.url, content="full-resource")["id"]
    world.deliver()
    first = world.task(world.a, B)
    world.deliver()
    assert receiver.received[-1][2]["entry"][1]["resource"]["id"] == first["id"]
    second = world.task(world.a, B)
    Users(world.ctx.store).disable("doc-b")               # the doctor leaves before delivery
    world.deliver()
    entry = receiver.received[-1][2]["entry"][1]
    assert entry["fullUrl"].endswith(second["id"]) and "resource" not in entry
    assert [e["n"] for e in state.events(world.ctx.store, sid)] == [1, 2]
    world.task(world.a, B)                                 # and no new event for a disabled user
    assert [e["n"] for e in state.events(world.ctx.store, sid)] == [1, 2]


def test_full_resource_only_if_the_resource_is_readable_at_delivery(world, receiver):
    """The content goes only if the subscriber could read that version through the API now (a vread:
    the resource itself within reach, then the version's content): not once it is deleted, nor once
    it moved out of the subscriber's reach, though the version's own content still names it."""
    sid = world.subscribe(world.b, receiver.url, content="full-resource")["id"]
    world.deliver()
    gone = world.task(world.a, B)
    assert world.send(world.a, "DELETE", f"/fhir/Task/{gone['id']}").status_code == 204
    world.deliver()
    focus = [e for e in receiver.received[-1][2]["entry"][1:] if e["fullUrl"].endswith(gone["id"])]
    assert focus and "resource" not in focus[0] and focus[0]["request"]["method"] == "PUT"
    assert world.send(world.b, "GET", f"/fhir/Task/{gone['id']}/_history/1").status_code in (404, 410)
    assert [e["n"] for e in state.events(world.ctx.store, sid)][:1] == [1]


def test_heartbeat_after_the_period(world, receiver):
    world.subscribe(world.b, receiver.url, heartbeat=60)
    world.deliver()
    world.clock.now += 59
    assert world.deliver() == 0
    world.clock.now += 2
    assert world.deliver() == 1 and receiver.kinds() == ["handshake", "heartbeat"]
    assert world.deliver() == 0
    world.clock.now += 61
    assert world.deliver() == 1 and receiver.kinds()[-1] == "heartbeat"


def test_retries_back_off_then_error_and_events_keep_counting(world, receiver):
    sid = world.subscribe(world.b, receiver.url)["id"]
    world.deliver()
    receiver.status = 500
    world.task(world.a, B)
    attempts_at = []
    start = world.clock.now
    for _ in range(40):                       # 40 half-second steps
        before = len(receiver.received)
        world.deliver()
        if len(receiver.received) > before:
            attempts_at.append(world.clock.now - start)
        world.clock.now += 0.5
    assert attempts_at == [0, 1, 3, 7, 15]     # waits of 1, 2, 4, 8 seconds; 5 attempts
    sub = world.send(world.b, "GET", f"/fhir/Subscription/{sid}").get_json()
    assert sub["status"] == "error" and "HTTP 500" in sub["error"]
    world.task(world.a, B)                      # counted and kept while in error
    status = status_of(world.send(world.b, "GET", f"/fhir/Subscription/{sid}/$status").get_json())
    assert (status["status"], status["type"], status["events-since-subscription-start"]) == \
        ("error", "query-status", "2")
    world.deliver()
    assert len(receiver.received) == 6           # nothing sent in error
    receiver.status = 200                        # the client fixes its endpoint and reactivates
    sub.pop("error")
    assert world.send(world.b, "PUT", f"/fhir/Subscription/{sid}", sub).get_json()["status"] == "requested"
    world.deliver()
    world.deliver()
    assert receiver.kinds()[-2:] == ["handshake", "event-notification"]
    numbers = [e["event-number"] for e in status_of(receiver.received[-1][2])["notification-event"]]
    assert numbers == ["1", "2"] and sub_status(world, world.b, sid) == "active"


def test_events_operation(world, receiver):
    sid = world.subscribe(world.b, receiver.url)["id"]
    tasks = [world.task(world.a, B)["id"] for _ in range(4)]
    r = world.send(world.b, "GET", f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=2&eventsUntilNumber=3")
    assert r.status_code == 200, r.get_data(as_text=True)
    bundle = r.get_json()
    status = status_of(bundle)
    assert status["type"] == "query-event" and status["events-since-subscription-start"] == "4"
    assert [e["event-number"] for e in status["notification-event"]] == ["2", "3"]
    assert [e["fullUrl"].rsplit("/", 1)[1] for e in bundle["entry"][1:]] == tasks[1:3]
    assert all("resource" not in e for e in bundle["entry"][1:])
    full = world.send(world.b, "GET", f"/fhir/Subscription/{sid}/$events?content=full-resource").get_json()
    assert [e["resource"]["id"] for e in full["entry"][1:]] == tasks
    empty = world.send(world.b, "GET", f"/fhir/Subscription/{sid}/$events?content=empty").get_json()
    assert len(empty["entry"]) == 1
    assert world.send(world.b, "GET", f"/fhir/Subscription/{sid}/$events?eventsSinceNumber=x").status_code == 400


def test_the_event_log_is_bounded(tmp_path, backend, receiver):
    world = World(tmp_path, backend, subscription_events_keep_max=2, subscription_events_keep_s=100)
    sid = world.subscribe(world.b, receiver.url)["id"]
    for _ in range(3):
        world.task(world.a, B)
    world.deliveries.prune()
    assert [e["n"] for e in state.events(world.ctx.store, sid)] == [2, 3]
    for event in state.events(world.ctx.store, sid):       # age them past the keep time
        event["at"] -= 101
        world.ctx.store.put_record(state.event_kind(sid), state.number_key(event["n"]), event)
    world.deliveries.prune()
    assert state.events(world.ctx.store, sid) == [] and state.events_since(world.ctx.store, sid) == 3


def test_an_undeliverable_outbox_is_bounded_and_a_deleted_subscription_leaves_nothing(tmp_path, backend):
    """A subscription whose endpoint never answers keeps at most subscription_events_keep_max
    undelivered events (the oldest go; receivers see the gap in event numbers); deleting a
    Subscription removes its events, outbox, counter and delivery state."""
    world = World(tmp_path, backend, subscription_events_keep_max=2)
    sid = world.subscribe(world.b, "https://hooks.example.org/never")["id"]
    for _ in range(3):
        world.task(world.a, B)
    world.deliveries.prune()
    assert [e["n"] for e in state.pending(world.ctx.store)[sid]] == [2, 3]
    assert world.send(world.b, "DELETE", f"/fhir/Subscription/{sid}").status_code == 204
    store = world.ctx.store
    assert state.pending(store).get(sid) is None and state.events(store, sid) == []
    assert store.get_record(state.COUNTER, sid) is None and store.get_record(state.DELIVERY, sid) is None


def test_events_and_deliveries_read_only_their_subscriptions_records(world, receiver, monkeypatch):
    """$events, the delivery pass and the write hook never list the event log or outbox of every
    subscription (their cost does not grow with the number of others)."""
    mine = world.subscribe(world.b, receiver.url)["id"]
    for _ in range(3):
        world.subscribe(world.a, receiver.url)
    listed = world.ctx.store.list_records
    kinds: list[str] = []

    def list_records(kind):
        kinds.append(kind)
        return listed(kind)
    monkeypatch.setattr(world.ctx.store, "list_records", list_records)
    world.task(world.a, B)
    world.deliver()
    assert world.send(world.b, "GET", f"/fhir/Subscription/{mine}/$events").status_code == 200
    shared = {k for k in kinds if k in ("subscription-event", "subscription-outbox")}
    assert not shared and any(k.endswith(mine) for k in kinds)


def test_workers_share_subscriptions_by_leases(world, receiver):
    sid = world.subscribe(world.b, receiver.url)["id"]
    other = Deliveries(world.ctx, clock=world.clock)
    held = Lease(world.ctx.store, sid, owner="another-worker", kind=state.LEASE)
    assert held.acquire()
    assert world.deliver() == 0 and receiver.received == []        # another worker holds it
    held.release()
    assert world.deliver() == 1 and other.run_once() == 0           # the handshake goes once
    world.task(world.a, B)
    assert other.run_once() == 1 and world.deliver() == 0           # and the event once
    assert receiver.kinds() == ["handshake", "event-notification"]


def test_no_events_and_no_notifications_after_the_end(world, receiver):
    sid = world.subscribe(world.b, receiver.url, end="2020-01-01T00:00:00+05:30")["id"]
    world.task(world.a, B)
    assert world.deliver() == 0 and receiver.received == [] and state.events_since(world.ctx.store, sid) == 0


def test_no_events_once_the_end_passes_while_the_subscription_is_live(world):
    """Subscription.end reached after the subscription was written (the live set is cached until a
    Subscription is written): the next change records nothing."""
    import datetime
    import time

    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1.5)
    sid = world.subscribe(world.b, "https://hooks.example.org/x",
                          end=end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")["id"]
    world.task(world.a, B)
    assert state.events_since(world.ctx.store, sid) == 1
    time.sleep(max(0.0, (end - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 0.1)
    world.task(world.a, B)
    assert state.events_since(world.ctx.store, sid) == 1
