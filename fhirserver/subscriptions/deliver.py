"""The delivery pass of the background worker (`medport worker`; fhirserver/worker_rounds.py), per
subscription, under a lease (bulk/jobs.Lease on "subscription-lease" records) so that any number of
workers share the outbox and a worker that dies loses nothing (its lease runs out; the outbox stays).

Backport IG, "rest-hook" and "Subscription lifecycle":
- requested: a handshake notification; a 2xx answer makes the Subscription active;
- active: the outbox's events in order, up to backport-max-count per notification; a delivered
  event leaves the outbox (the event log keeps it for $events); with nothing to send and a
  backport-heartbeat-period, a heartbeat once the period has passed since the last notification;
- a failure (refused endpoint, connection error, timeout, non-2xx, any redirect) is tried again after
  subscription_retry_base_s, then twice as long each time; after subscription_max_attempts the
  Subscription goes to status error (Subscription.error says why). Events keep being counted and
  kept ($status, $events); the client reactivates by writing the Subscription again (status requested);
- error and off: nothing is sent.

Status changes are new versions of the Subscription written by the server (with its Provenance),
only if the Subscription is still the version the pass acted on. The clock is injected (tests).
"""
from __future__ import annotations

import logging
import socket
import time

from .. import jsonio
from ..bulk.jobs import Lease
from ..errors import FhirError, StoreUnavailable
from ..interactions.common import store_server_written
from ..smart_auth.access import UNRESTRICTED
from . import notification, spec, state, transport

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 60.0


class Deliveries:
    def __init__(self, ctx, clock=time.time, resolver=socket.getaddrinfo, post=transport.post):
        self.ctx, self.clock, self.resolver, self.post = ctx, clock, resolver, post
        self._pruned = 0.0

    def run_once(self) -> int:
        """One pass over every subscription; returns how many notifications were delivered."""
        store, sent = self.ctx.store, 0
        for sub_id, seen in store.list_records(state.SUB):
            if not self._due(sub_id, seen, state.outbox(store, sub_id)):
                continue            # reads only: an idle subscription costs no lease write
            lease = Lease(store, sub_id, kind=state.LEASE)
            if not lease.acquire():
                continue
            try:
                rec = store.get_record(state.SUB, sub_id)       # as the last holder left it
                if rec is not None:
                    sent += self._one(sub_id, rec, state.outbox(store, sub_id))
            except StoreUnavailable:
                log.warning("subscription %s: the store is unavailable; delivery continues later", sub_id)
            except Exception:       # noqa: BLE001 - logged; the other subscriptions go on
                log.exception("subscription %s: delivery pass failed", sub_id)
            finally:
                lease.release()
        if self.clock() - self._pruned >= PRUNE_EVERY_S:
            self.prune()
        return sent

    # ---- one subscription ------------------------------------------------------------------------
    def _due(self, sub_id: str, rec: dict, outbox: list[dict]) -> bool:
        """Whether the subscription may have something to send now (checked again under the lease)."""
        if not _sendable(rec):
            return False
        delivery = self.ctx.store.get_record(state.DELIVERY, sub_id) or {}
        if rec["status"] == "requested" or outbox:
            return delivery.get("version") != rec["version"] or self.clock() >= delivery.get("next_try", 0)
        return _heartbeat_due(rec, delivery, spec.parse(rec["resource"]).heartbeat_s, self.clock())

    def _one(self, sub_id: str, rec: dict, outbox: list[dict]) -> int:
        status, now = rec.get("status"), self.clock()
        if not _sendable(rec):
            return 0
        delivery = self.ctx.store.get_record(state.DELIVERY, sub_id) or {}
        if delivery.get("version") != rec["version"] and status == "requested":
            delivery = {"version": rec["version"]}         # a new request: its own attempts
        if now < delivery.get("next_try", 0):
            return 0
        settings = spec.parse(rec["resource"])
        since = state.events_since(self.ctx.store, sub_id)
        if status == "requested":
            kind, events = "handshake", []
        elif outbox and (events := self._still_pending(sub_id, outbox[:settings.max_count])):
            kind = "event-notification"
        elif _heartbeat_due(rec, delivery, settings.heartbeat_s, now):
            kind, events = "heartbeat", []
        else:
            return 0
        body = notification.bundle(self.ctx, sub_id, rec, kind, events,
                                   "empty" if kind != "event-notification" else settings.content, since)
        outcome = self.post(settings.endpoint, jsonio.dumps(body), settings.headers, settings.timeout_s,
                            self.ctx.settings.subscription_allow_http_loopback == "on", resolver=self.resolver)
        if not outcome.ok:
            self._failed(sub_id, rec, delivery, outcome.detail, now)
            return 0
        if kind == "handshake":
            self._set_status(sub_id, rec, "active", None)
        for e in events if kind == "event-notification" else ():
            self.ctx.store.delete_record(state.outbox_kind(sub_id), state.number_key(e["n"]))
        self.ctx.store.put_record(state.DELIVERY, sub_id, {"version": rec["version"], "last_sent": now})
        return 1

    def _still_pending(self, sub_id: str, entries: list[dict]) -> list[dict]:
        """The entries (read before the lease was taken) that no other worker delivered meanwhile."""
        store = self.ctx.store
        return [e for e in entries if store.get_record(state.outbox_kind(sub_id), state.number_key(e["n"])) is not None]

    def _failed(self, sub_id: str, rec: dict, delivery: dict, detail: str, now: float) -> None:
        attempts = delivery.get("attempts", 0) + 1
        settings = self.ctx.settings
        log.info("subscription %s: delivery attempt %d failed: %s", sub_id, attempts, detail)
        if attempts >= settings.subscription_max_attempts:
            self._set_status(sub_id, rec, "error", f"Delivery failed {attempts} times; last: {detail}")
            self.ctx.store.delete_record(state.DELIVERY, sub_id)
            return
        wait = settings.subscription_retry_base_s * 2 ** (attempts - 1)
        self.ctx.store.put_record(state.DELIVERY, sub_id, {**delivery, "version": rec["version"],
                                                           "attempts": attempts, "next_try": now + wait,
                                                           "last_error": detail})

    def _set_status(self, sub_id: str, rec: dict, status: str, error: str | None) -> None:
        """A new version with the server's status, if the Subscription is still the one acted on."""
        ctx = self.ctx.acting_as(UNRESTRICTED)
        try:
            with ctx.repo.transaction() as tx:
                current = tx.read(spec.TYPE, sub_id, None)
                if current is None or current.deleted or current.version != rec["version"]:
                    return
                resource = jsonio.loads_stored(current.body)
                resource["status"] = status
                if error:
                    resource["error"] = error
                else:
                    resource.pop("error", None)
                store_server_written(tx, ctx.base, resource, current=current)
        except FhirError as e:       # changed meanwhile (VersionConflict): the client's version stands
            log.info("subscription %s: status %s not recorded: %s", sub_id, status, e)

    # ---- the event log's and the outbox's bounds ------------------------------------------------
    def prune(self) -> int:
        """Remove events past subscription_events_keep_s, or past the newest keep_max of their
        subscription; and undelivered events past the newest keep_max (an endpoint that never answers)."""
        store, settings = self.ctx.store, self.ctx.settings
        self._pruned = now = self.clock()
        removed = 0
        for sub_id, _rec in store.list_records(state.SUB):
            for kind, aged in ((state.event_kind(sub_id), True), (state.outbox_kind(sub_id), False)):
                entries = store.list_records(kind)
                excess = len(entries) - settings.subscription_events_keep_max
                for i, (key, event) in enumerate(entries):
                    if i < excess or (aged and now - event.get("at", now) > settings.subscription_events_keep_s):
                        store.delete_record(kind, key)
                        removed += 1
        return removed


def _sendable(rec: dict) -> bool:
    """requested or active, and not past Subscription.end: something may be sent."""
    return rec.get("status") in ("requested", "active") and not spec.ended(rec["resource"])


def _heartbeat_due(rec: dict, delivery: dict, heartbeat_s: int, now: float) -> bool:
    """A backport-heartbeat-period is set and has passed since the last notification (or the creation)."""
    return bool(heartbeat_s) and now - delivery.get("last_sent", rec.get("created", 0)) >= heartbeat_s
