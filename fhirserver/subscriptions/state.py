"""What the server keeps about subscriptions, in the store's records (never in the Subscription itself):

- ("subscription", id): who subscribed (the creating token's claims and their owner, as bulk export
  jobs keep them: smart_auth/stored_claims.py), the sharing default they were judged under, and the
  Subscription's current content and status. Written only inside the write transaction of a
  Subscription version (events.py), so it always matches the stored resource;
- ("subscription-owned", hash of an owner): the ids of that owner's Subscriptions (ownership.py), kept
  with the ("subscription", id) records;
- ("subscription-counter", id): the last event number; raised inside the transaction of the change
  that fires the event (the store serialises writers), so numbers have no gaps;
- ("subscription-event:<id>", number): the event log $events answers from, kept for
  subscription_events_keep_s and at most subscription_events_keep_max per subscription (the worker
  prunes; MAX_KEEP_S bounds it whatever the settings);
- ("subscription-outbox:<id>", number): events not yet delivered (a copy of the event), removed once
  delivered, at most subscription_events_keep_max (the worker drops the oldest);
  one kind per subscription, so reading one subscription's events never lists another's;
- ("subscription-delivery", id): the delivery state (attempts, next try, last notification sent),
  written by the worker holding ("subscription-lease", id).
"""
from __future__ import annotations

SUB, COUNTER = "subscription", "subscription-counter"
DELIVERY, LEASE, OWNED = "subscription-delivery", "subscription-lease", "subscription-owned"
MAX_KEEP_S = 30 * 24 * 3600
LIVE = ("requested", "active", "error")       # statuses whose events are counted and kept


def event_kind(sub_id: str) -> str:
    return f"subscription-event:{sub_id}"


def outbox_kind(sub_id: str) -> str:
    return f"subscription-outbox:{sub_id}"


def number_key(number: int) -> str:
    return f"{number:012d}"


def events_since(store, sub_id: str) -> int:
    """events-since-subscription-start: the last event number given."""
    return int((store.get_record(COUNTER, sub_id) or {}).get("n", 0))


def events(store, sub_id: str, low: int = 1, high: int | None = None) -> list[dict]:
    """The kept events of a subscription numbered low..high, in order."""
    found = [v for _k, v in store.list_records(event_kind(sub_id))]
    return [e for e in found if e["n"] >= low and (high is None or e["n"] <= high)]


def outbox(store, sub_id: str) -> list[dict]:
    """A subscription's undelivered events, oldest first."""
    return [entry for _k, entry in store.list_records(outbox_kind(sub_id))]


def pending(store) -> dict[str, list[dict]]:
    """Outbox entries by subscription id, oldest first (every subscription's: tests and benchmarks)."""
    return {sub_id: found for sub_id, _rec in store.list_records(SUB) if (found := outbox(store, sub_id))}


def forget(store, sub_id: str) -> None:
    """A deleted subscription's records: its events, outbox, counter and delivery state."""
    for kind in (event_kind(sub_id), outbox_kind(sub_id)):
        for key, _v in store.list_records(kind):
            store.delete_record(kind, key)
    store.delete_record(COUNTER, sub_id)
    store.delete_record(DELIVERY, sub_id)
