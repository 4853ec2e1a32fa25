"""The scheduling world (tests/scheduling/_world.py: hospitals A and B with organisation tokens, patients
asha and ravi, asha's son as her proxy) with subscription helpers, and a small HTTP receiver on
127.0.0.1 that records every notification POSTed to it."""
from __future__ import annotations

import http.server
import json
import socket
import threading
import time

from fhirserver.subscriptions import spec, topics
from fhirserver.subscriptions.deliver import Deliveries
from tests.scheduling._world import A, B
from tests.scheduling._world import World as SchedulingWorld

BACKPORT = spec.BACKPORT
__all__ = ["A", "B", "Clock", "Receiver", "World", "loopback_resolver", "status_of", "subscription", "topic"]


def topic(name: str) -> str:
    return topics.PREFIX + name


def subscription(endpoint: str, topic_name: str = "task-status-changed", filters=(), content: str | None = None,
                 headers=(), heartbeat: int | None = None, **more) -> dict:
    channel = {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}
    if content:
        channel["_payload"] = {"extension": [{"url": spec.CONTENT, "valueCode": content}]}
    if headers:
        channel["header"] = list(headers)
    if heartbeat is not None:
        channel["extension"] = [{"url": spec.HEARTBEAT, "valueUnsignedInt": heartbeat}]
    sub = {"resourceType": "Subscription", "status": "requested", "reason": "test",
           "criteria": topic(topic_name), "channel": channel, **more}
    if filters:
        sub["_criteria"] = {"extension": [{"url": spec.FILTER, "valueString": f} for f in filters]}
    return sub


class Clock:
    """An injected clock for the delivery pass: starts at the real time, then moves only when the test says."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def loopback_resolver(host, port, type=0, **_kw):
    """Every name resolves to 127.0.0.1 (the receiver), as a test DNS."""
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


class World(SchedulingWorld):
    def __init__(self, tmp_path, backend, **settings):
        settings.setdefault("subscription_allow_http_loopback", "on")
        super().__init__(tmp_path, backend, **settings)
        self.clock = Clock()
        self.deliveries = Deliveries(self.ctx, clock=self.clock)

    def subscribe(self, token: str, endpoint: str, **kw) -> dict:
        r = self.send(token, "POST", "/fhir/Subscription", subscription(endpoint, **kw))
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()

    def deliver(self, rounds: int = 1) -> int:
        return sum(self.deliveries.run_once() for _ in range(rounds))

    def task(self, token: str, owner: str, status: str = "requested", patient: str | None = None) -> dict:
        task = {"resourceType": "Task", "status": status, "intent": "order",
                "owner": {"reference": owner}}
        if patient:
            task["for"] = {"reference": f"Patient/{patient}"}
        r = self.send(token, "POST", "/fhir/Task", task)
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread; `status` is what it answers, `received` what came."""

    def __init__(self, status: int = 200, location: str | None = None):
        self.status, self.location = status, location
        self.received: list[tuple[str, dict, dict]] = []        # (path, headers, body)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                receiver.received.append((self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def kinds(self) -> list[str]:
        return [status_of(body)["type"] for _p, _h, body in self.received]


def status_of(bundle: dict) -> dict:
    """The subscription-status Parameters of a notification, as {name: value} (notification-event: a list)."""
    params = bundle["entry"][0]["resource"]
    assert params["resourceType"] == "Parameters"
    out: dict = {"notification-event": []}
    for p in params["parameter"]:
        if p["name"] == "notification-event":
            out["notification-event"].append({q["name"]: next(v for k, v in q.items() if k.startswith("value"))
                                              for q in p["part"]})
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out
