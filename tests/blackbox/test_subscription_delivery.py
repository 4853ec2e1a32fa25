"""Subscriptions against a real `medport serve` (its own `medport worker`): a rest-hook receiver on
127.0.0.1 gets the handshake, then the whole server is SIGKILLed right after a write whose
notification could not be delivered yet; a new server on the same store delivers it (the outbox was
written in the write's own transaction; the dead worker's lease runs out)."""
from __future__ import annotations

import time

import requests

from tests.subscriptions._world import Receiver, status_of, subscription

ENV = {"MEDPORT_SUBSCRIPTION_ALLOW_HTTP_LOOPBACK": "on", "MEDPORT_WORKER_POLL_S": "0.2",
       "MEDPORT_SUBSCRIPTION_RETRY_BASE_S": "0.2"}
HEADERS = {"Content-Type": "application/fhir+json"}


def wait_for(predicate, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_notification_survives_a_killed_server(server_factory, tmp_path):
    receiver = Receiver()
    try:
        first = server_factory(tmp_path / "store.db", env=ENV)
        r = requests.post(first.base + "/Subscription", json=subscription(receiver.url, headers=["X-Hook: 1"]),
                          headers=HEADERS, timeout=30)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        wait_for(lambda: receiver.kinds() == ["handshake"], "the handshake")
        wait_for(lambda: requests.get(f"{first.base}/Subscription/{sid}", timeout=30).json()["status"] == "active",
                 "the Subscription to be active")
        receiver.status = 503               # the receiver is down when the change is written...
        r = requests.post(first.base + "/Task", json={"resourceType": "Task", "status": "requested",
                                                      "intent": "order"}, headers=HEADERS, timeout=30)
        assert r.status_code == 201, r.text
        task_id = r.json()["id"]
        first.kill()                        # ...and the server dies before it could deliver
        receiver.status = 200
        failed = len(receiver.received)     # the handshake, and any attempt the first server made (answered 503)
        second = server_factory(tmp_path / "store.db", env=ENV)
        wait_for(lambda: len(receiver.received) > failed, "the notification after the restart")
        assert receiver.kinds()[failed:] == ["event-notification"]
        _path, headers, body = receiver.received[failed]
        status = status_of(body)
        assert headers["X-Hook"] == "1" and status["status"] == "active"
        assert [e["event-number"] for e in status["notification-event"]] == ["1"]
        assert body["entry"][1]["fullUrl"] == f"{second.base}/Task/{task_id}"
        r = requests.get(f"{second.base}/Subscription/{sid}/$status", timeout=30)
        assert status_of(r.json())["events-since-subscription-start"] == "1"
    finally:
        receiver.close()
