"""The topic table (fhirserver/subscriptions/topics.py), every topic alike: canonical, focus type, its
trigger on (interaction, old, new), and its filters, each of which is a search parameter of the focus
type that a Subscription may use (and nothing else may be used)."""
from __future__ import annotations

import pytest

from fhirserver.capability import capability_statement
from fhirserver.config import Settings
from fhirserver.definitions import resource_types
from fhirserver.errors import BadRequest
from fhirserver.search.registry import lookup
from fhirserver.subscriptions import spec, topics

from ._world import subscription

SAMPLE = {"reference": "Organization/x", "token": "final", "string": "x", "date": "2031-01-01"}

# topic name -> [(interaction, old status, new status, fires)]
TRIGGERS = {
    "task-status-changed": [("create", None, "requested", True), ("update", "requested", "accepted", True),
                            ("update", "accepted", "accepted", False), ("delete", "accepted", None, False)],
    "diagnostic-report-final": [("create", None, "final", True), ("create", None, "preliminary", False),
                                ("update", "preliminary", "final", True), ("update", "final", "amended", True),
                                ("update", "final", "final", False), ("delete", "final", None, False)],
    "appointment-booked-cancelled": [("create", None, "booked", True), ("update", "pending", "booked", True),
                                     ("update", "booked", "cancelled", True), ("create", None, "proposed", False),
                                     ("update", "booked", "booked", False), ("update", "booked", "fulfilled", False)],
    "communication-received": [("create", None, "completed", True), ("update", "in-progress", "completed", False),
                               ("delete", "completed", None, False)],
    "consent-changed": [("create", None, "active", True), ("update", "active", "inactive", True),
                        ("update", "active", "active", True), ("delete", "active", None, True)],
}


def test_every_topic_has_a_trigger_table_and_a_unique_canonical():
    assert set(TRIGGERS) == {t.name for t in topics.TOPICS}
    assert len(topics.BY_URL) == len(topics.TOPICS)
    for t in topics.TOPICS:
        assert t.url == f"https://medport.health/fhir/SubscriptionTopic/{t.name}"
        assert t.resource in resource_types() and t.description


@pytest.mark.parametrize("t", topics.TOPICS, ids=lambda t: t.name)
def test_trigger(t):
    for interaction, old, new, fires in TRIGGERS[t.name]:
        before = {"resourceType": t.resource, "status": old} if old else None
        after = {"resourceType": t.resource, "status": new} if new else None
        assert t.trigger(interaction, before, after) is fires, (interaction, old, new)


@pytest.mark.parametrize("t", topics.TOPICS, ids=lambda t: t.name)
def test_each_filter_is_a_search_parameter_of_the_focus_and_is_accepted(t):
    for name in t.filters:
        param = lookup(t.resource, name)
        assert param is not None, name
        resource = subscription("https://hooks.example.org/x", t.name,
                                filters=[f"{t.resource}?{name}={SAMPLE[param.kind]}"])
        spec.prepare(resource, allow_http_loopback=False)
        assert len(spec.parse(resource).filters) == 1


@pytest.mark.parametrize("t", topics.TOPICS, ids=lambda t: t.name)
def test_other_filters_are_refused(t):
    other = "Patient" if t.resource != "Patient" else "Task"
    for criteria in (f"{t.resource}?_id=1", f"{t.resource}?patient.name=x", f"{other}?_id=1",
                     f"{t.resource}?{t.filters[0]}=", t.resource):
        with pytest.raises(BadRequest) as e:
            spec.prepare(subscription("https://hooks.example.org/x", t.name, filters=[criteria]), False)
        assert "criteria" in str(e.value).lower()


def test_the_capability_statement_names_every_topic():
    cs = capability_statement(Settings(base_url="http://fhir.test/fhir"), "2026-12-05")
    entry = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Subscription")
    assert [e["valueCanonical"] for e in entry["extension"]] == [t.url for t in topics.TOPICS]
    assert {e["url"] for e in entry["extension"]} == {topics.CAPABILITY_EXTENSION}
    ops = {o["name"] for o in entry["operation"]}
    assert {"status", "events"} <= ops
