"""The closed table of subscription topics this server offers (Subscriptions R5 Backport IG for R4,
"Topics": a topic is a canonical URL; R4 has no SubscriptionTopic resource, so the canonicals are
advertised on the CapabilityStatement's Subscription entry with the extension
capabilitystatement-subscriptiontopic-canonical, and documented in docs/subscriptions.md).

Each topic names the one resource type it triggers on (the focus), a trigger (which interactions, and
a predicate on the replaced and the new content), and the search parameters of the focus type a
Subscription may filter on (backport-filter-criteria, e.g. `Task?owner=Organization/x`). A topic is a
Topic value; adding one is one entry in TOPICS (tests/subscriptions/test_topics.py runs over all).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

PREFIX = "https://medport.health/fhir/SubscriptionTopic/"
CAPABILITY_EXTENSION = ("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                        "capabilitystatement-subscriptiontopic-canonical")

# trigger(interaction, old, new): interaction create | update | delete; old/new the content replaced and
# the content written (None when there is none: old on a create, new on a delete)
Trigger = Callable[[str, "dict | None", "dict | None"], bool]


@dataclass(frozen=True)
class Topic:
    name: str
    resource: str                     # the focus type
    description: str                  # what fires it, in words (docs, CapabilityStatement)
    trigger: Trigger
    filters: tuple[str, ...]          # search parameters of the focus type allowed in filter criteria

    @property
    def url(self) -> str:
        return PREFIX + self.name


def _status(resource: dict | None) -> str | None:
    return (resource or {}).get("status")


def _status_changed(interaction: str, old: dict | None, new: dict | None) -> bool:
    return new is not None and _status(new) != _status(old)


def _became(*statuses: str) -> Trigger:
    def trigger(interaction: str, old: dict | None, new: dict | None) -> bool:
        return new is not None and _status(new) in statuses and _status(old) != _status(new)
    return trigger


def _created(interaction: str, old: dict | None, new: dict | None) -> bool:
    return interaction == "create" and new is not None


def _any_change(interaction: str, old: dict | None, new: dict | None) -> bool:
    return True


TOPICS: tuple[Topic, ...] = (
    Topic("task-status-changed", "Task",
          "A Task is created or its status changes (Clinical Order Workflows: requested, received, "
          "accepted, in-progress, completed, rejected, failed, cancelled)",
          _status_changed, ("owner", "requester", "patient", "focus", "based-on", "status")),
    Topic("diagnostic-report-final", "DiagnosticReport",
          "A DiagnosticReport's status becomes final, amended, corrected or appended",
          _became("final", "amended", "corrected", "appended"),
          ("patient", "subject", "based-on", "performer", "code")),
    Topic("appointment-booked-cancelled", "Appointment",
          "An Appointment's status becomes booked or cancelled",
          _became("booked", "cancelled"), ("patient", "actor", "practitioner", "location", "status")),
    Topic("communication-received", "Communication",
          "A Communication is created (a message sent to its recipients)",
          _created, ("recipient", "sender", "patient", "subject", "part-of")),
    Topic("consent-changed", "Consent",
          "A Consent is created, updated or deleted",
          _any_change, ("patient", "actor", "category", "status")),
)

BY_URL: dict[str, Topic] = {t.url: t for t in TOPICS}
BY_TYPE: dict[str, tuple[Topic, ...]] = {}
for _t in TOPICS:
    BY_TYPE[_t.resource] = BY_TYPE.get(_t.resource, ()) + (_t,)


def capability_extensions() -> list[dict]:
    """The CapabilityStatement.rest.resource (Subscription) extensions naming every topic."""
    return [{"url": CAPABILITY_EXTENSION, "valueCanonical": t.url} for t in TOPICS]
