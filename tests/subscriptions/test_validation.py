"""Writing a Subscription (docs/subscriptions.md, "Creating a Subscription"), on both stores: every
problem answers 400 with an OperationOutcome naming it, and nothing is stored; the server owns the
status (requested until the handshake succeeds) and stamps the default payload content."""
from __future__ import annotations

import pytest

from fhirserver.subscriptions import spec
from tests.scheduling._world import issue

from ._world import B, World, subscription

GOOD = "https://hooks.example.org/medport"


@pytest.fixture
def world(tmp_path, backend):
    return World(tmp_path, backend, subscription_allow_http_loopback="off")


def _channel(**changes) -> dict:
    return {**subscription(GOOD)["channel"], **changes}


BAD = [
    ("unknown topic", {"criteria": "https://medport.health/fhir/SubscriptionTopic/nope"}, "Unknown subscription topic"),
    ("criteria is a search (R4 style)", {"criteria": "Task?status=completed"}, "Unknown subscription topic"),
    ("filter on another type", {"_criteria": {"extension": [{"url": spec.FILTER, "valueString": "Patient?_id=x"}]}},
     "must be on Task"),
    ("filter parameter not allowed", {"_criteria": {"extension": [{"url": spec.FILTER, "valueString": "Task?code=x"}]}},
     "not a filter"),
    ("filter chain", {"_criteria": {"extension": [{"url": spec.FILTER, "valueString": "Task?owner.name=x"}]}},
     "not a filter"),
    ("filter value malformed", {"_criteria": {"extension": [{"url": spec.FILTER,
                                                             "valueString": "Task?status=a|b|c"}]}}, ""),
    ("email channel", {"channel": _channel(type="email", endpoint="mailto:a@b.c")}, "out of scope"),
    ("websocket channel", {"channel": _channel(type="websocket")}, "only rest-hook"),
    ("no endpoint", {"channel": {"type": "rest-hook"}}, "endpoint is required"),
    ("plain http", {"channel": _channel(endpoint="http://hooks.example.org/x")}, "must use https"),
    ("ftp", {"channel": _channel(endpoint="ftp://hooks.example.org/x")}, "https URL"),
    ("user in URL", {"channel": _channel(endpoint="https://me:pw@hooks.example.org/x")}, "user name"),
    ("private address", {"channel": _channel(endpoint="https://10.1.2.3/x")}, "RFC 1918"),
    ("metadata address", {"channel": _channel(endpoint="https://169.254.169.254/latest")}, "link-local"),
    ("decimal loopback", {"channel": _channel(endpoint="https://2130706433/x")}, "loopback"),
    ("IPv6 ULA", {"channel": _channel(endpoint="https://[fd00::1]/x")}, "unique local"),
    ("XML payload", {"channel": _channel(payload="application/fhir+xml")}, "not supported"),
    ("bad payload content", {"channel": _channel(_payload={"extension": [{"url": spec.CONTENT,
                                                                         "valueCode": "everything"}]})},
     "backport-payload-content"),
    ("header without colon", {"channel": _channel(header=["Authorization Bearer x"])}, "Name: value"),
    ("header splitting", {"channel": _channel(header=["X-A: 1\r\nX-B: 2"])}, "Name: value"),
    ("reserved header", {"channel": _channel(header=["Host: evil.example"])}, "Name: value"),
    ("heartbeat over a day", {"channel": _channel(extension=[{"url": spec.HEARTBEAT, "valueUnsignedInt": 999999}])},
     "backport-heartbeat-period"),
    ("timeout too long", {"channel": _channel(extension=[{"url": spec.TIMEOUT, "valueUnsignedInt": 3600}])},
     "backport-timeout"),
]


@pytest.mark.parametrize("what,changes,says", BAD, ids=[b[0] for b in BAD])
def test_refused_with_400_naming_the_problem(world, what, changes, says):
    body = {**subscription(GOOD), **changes}
    r = world.send(world.b, "POST", "/fhir/Subscription", body)
    assert r.status_code == 400, (what, r.get_data(as_text=True))
    assert says in issue(r)
    assert world.send(world.system, "GET", "/fhir/Subscription").get_json().get("total", 0) == 0


def test_http_loopback_needs_the_setting(world, tmp_path, backend):
    for endpoint in ("http://127.0.0.1:9/x", "https://127.0.0.1/x", "http://localhost:9/x"):
        r = world.send(world.b, "POST", "/fhir/Subscription", subscription(endpoint))
        assert r.status_code == 400, endpoint
    loose = World(tmp_path / "loose", backend, subscription_allow_http_loopback="on")
    for endpoint in ("http://127.0.0.1:9/x", "https://127.0.0.1/x", "http://localhost:9/x"):
        assert loose.send(loose.b, "POST", "/fhir/Subscription", subscription(endpoint)).status_code == 201
    assert loose.send(loose.b, "POST", "/fhir/Subscription", subscription("http://hooks.example.org/x")
                      ).status_code == 400


def test_status_and_defaults_are_the_servers(world):
    sub = world.subscribe(world.b, GOOD, filters=[f"Task?owner={B}"], status="active")
    assert sub["status"] == "requested"
    assert sub["channel"]["_payload"]["extension"] == [{"url": spec.CONTENT, "valueCode": "id-only"}]
    assert spec.PROFILE in sub["meta"]["profile"]
    sub["status"], sub["error"] = "active", "none"
    r = world.send(world.b, "PUT", f"/fhir/Subscription/{sub['id']}", sub)
    assert r.status_code == 200 and r.get_json()["status"] == "requested" and "error" not in r.get_json()
    sub["status"] = "off"
    assert world.send(world.b, "PUT", f"/fhir/Subscription/{sub['id']}", sub).get_json()["status"] == "off"


def test_a_delivery_timeout_ends_inside_the_workers_lease():
    """Past the lease another worker could take the subscription over and send the same notification."""
    from fhirserver.bulk.jobs import LEASE_S
    assert spec.MAX_TIMEOUT_S < LEASE_S
