"""Subscription/[id]/$status and Subscription/[id]/$events (Subscriptions R5 Backport IG for R4,
OperationDefinitions backport-subscription-status and backport-subscription-events).

The instance is read first with the caller's rights (operations.invoke: the same check as a read), so
only the Subscription's owner or an administrator gets an answer; anyone else gets 404. The answers
come from the subscription's records (fhirserver/subscriptions/state.py); $events judges each focus
for the subscriber now, as a notification does (notification.bundle).
"""
from __future__ import annotations

from ..errors import BadRequest, NotFound
from ..subscriptions import notification, spec, state
from .parameters import first

MAX_EVENTS = 1000


def _record(ctx, id: str) -> dict:
    rec = ctx.store.get_record(state.SUB, id)
    if rec is None:
        raise NotFound(f"Subscription/{id} is not known")
    return rec


def status_operation(ctx, rtype, id, params) -> dict:
    rec = _record(ctx, id)
    resource = rec["resource"]
    parameters = notification.status_parameters(ctx.base, id, resource["criteria"], rec["status"], "query-status",
                                                state.events_since(ctx.store, id), [], "empty",
                                                resource.get("error"))
    return {"resourceType": "Bundle", "type": "searchset", "total": 1,
            "entry": [{"fullUrl": f"urn:uuid:{id}-status", "resource": parameters, "search": {"mode": "match"}}]}


def events_operation(ctx, rtype, id, params) -> dict:
    rec = _record(ctx, id)
    low = _number(first(params, "eventsSinceNumber"), "eventsSinceNumber", 1)
    high = _number(first(params, "eventsUntilNumber"), "eventsUntilNumber", None)
    content = first(params, "content") or spec.parse(rec["resource"]).content
    if content not in spec.CONTENTS:
        raise BadRequest(f"content must be one of {', '.join(spec.CONTENTS)}, not {content!r}")
    events = state.events(ctx.store, id, low, high)[:MAX_EVENTS]
    return notification.bundle(ctx, id, rec, "query-event", events, content, state.events_since(ctx.store, id))


def _number(value, name: str, default):
    if value is None:
        return default
    try:
        n = int(str(value))
    except ValueError:
        raise BadRequest(f"{name} must be an event number, not {value!r}") from None
    if n < 0:
        raise BadRequest(f"{name} must not be negative")
    return n
