"""Notification Bundles (Subscriptions R5 Backport IG for R4, "Notifications" and profiles
backport-subscription-notification-r4 / backport-subscription-status-r4): a `history` Bundle whose
first entry is a Parameters giving the subscription, its topic, status, the notification type
(handshake | heartbeat | event-notification | query-status | query-event),
events-since-subscription-start and one notification-event (event-number, timestamp, focus) per event;
then, per event, the focus: the resource itself (full-resource, only when the subscriber may read that
version now, judged as its vread would be: the resource within its reach, then the version's content),
its fullUrl alone (id-only), or nothing (empty: no focus either).
"""
from __future__ import annotations

import uuid

from .. import jsonio
from ..errors import FhirError
from ..interactions.common import now_instant
from ..smart_auth.stored_claims import access_from
from .spec import BACKPORT

STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"


def status_parameters(base: str, sub_id: str, topic: str, status: str, kind: str, since: int,
                      events: list[dict], content: str, error: str | None = None) -> dict:
    params = [{"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{sub_id}"}},
              {"name": "topic", "valueCanonical": topic},
              {"name": "status", "valueCode": status},
              {"name": "type", "valueCode": kind},
              {"name": "events-since-subscription-start", "valueString": str(since)}]
    for e in events:
        part = [{"name": "event-number", "valueString": str(e["n"])},
                {"name": "timestamp", "valueInstant": e["timestamp"]}]
        if content != "empty":
            part.append({"name": "focus", "valueReference": {"reference": f"{base}/{_unversioned(e['focus'])}"}})
        params.append({"name": "notification-event", "part": part})
    if error:
        params.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return {"resourceType": "Parameters", "meta": {"profile": [STATUS_PROFILE]}, "parameter": params}


def bundle(ctx, sub_id: str, record: dict, kind: str, events: list[dict], content: str, since: int) -> dict:
    """The notification (or $events answer) for these events, judged for the subscriber now."""
    base = ctx.base
    resource = record["resource"]
    status = status_parameters(base, sub_id, resource["criteria"], record.get("status") or resource.get("status"),
                               kind, since, events, content, resource.get("error"))
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": status,
                "request": {"method": "GET", "url": f"{base}/Subscription/{sub_id}/$status"},
                "response": {"status": "200"}}]
    if content != "empty":
        reader = _reader(ctx, record) if content == "full-resource" else None
        for e in events:
            entries.append(_focus_entry(ctx, e, reader))
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"profile": [NOTIFICATION_PROFILE]},
            "type": "history", "timestamp": now_instant(), "entry": entries}


def _unversioned(focus: str) -> str:
    return focus.split("/_history/")[0]


def _focus_entry(ctx, event: dict, reader) -> dict:
    rtype, rid = _unversioned(event["focus"]).split("/", 1)
    number = int(event["focus"].rsplit("/", 1)[1])
    entry = {"fullUrl": f"{ctx.base}/{rtype}/{rid}",
             "request": {"method": "DELETE" if event.get("deleted") else "PUT", "url": f"{rtype}/{rid}"},
             "response": {"status": "204" if event.get("deleted") else "200",
                          "etag": f'W/"{number}"', "lastModified": event["timestamp"]}}
    if reader is not None and not event.get("deleted"):
        version = reader(rtype, rid, number)
        if version is not None and version.body:
            entry["resource"] = jsonio.loads_stored(version.body)
    return entry


def _reader(ctx, record: dict):
    """reader(type, id, version): that version as the subscriber's vread now answers it, else None
    (the resource deleted or out of its reach, the version's content outside its grant)."""
    try:
        access = access_from(record.get("claims"), record.get("sharing_default", "opt-in"), ctx.store)
    except FhirError:
        return lambda *_a: None
    repo = ctx.acting_as(access).repo

    def reader(rtype: str, rid: str, number: int):
        try:
            return repo.vread(rtype, rid, number, "read")
        except FhirError:
            return None
    return reader
