"""Subscription events, recorded by the one write path (interactions/common.py store_new_version and
store_delete) in the SAME store transaction as the change (backport IG, "Subscription Notifications":
event numbers per subscription, without gaps; docs/subscriptions.md, "Events"):

- a version of a type no topic watches costs one dict lookup; a watched type costs one cached look at
  the live subscriptions (cached per store, checked with Store.last_write("Subscription"): one index
  lookup), and nothing more when none is live for its topics;
- for each live subscription whose topic fires (topics.Topic.trigger on the replaced and the new
  content) and whose filter criteria match the content (search semantics: the pure-Python Matcher),
  the subscriber's rights are rebuilt from its stored claims (smart_auth/stored_claims.access_from) and
  the event is recorded only if it may read that very version now (its read guard, inside the write's
  transaction: its scopes, its compartment for a patient, its organisation's policy for a hospital);
- recording an event raises the subscription's counter and writes the event (for $events) and its
  outbox entry (for the worker) as store records, which join the open unit (Store.unit): a write that
  rolls back leaves no event, a write that commits always has its event.

A Subscription version itself updates the subscription's record (state.SUB) in the same way: its
owner (the first writer's claims), content and status; a new one joins its owner's index (at most
ownership.MAX_PER_OWNER), a deleted one leaves it.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

from .. import jsonio
from ..errors import BadRequest, FhirError
from ..governance import proxy
from ..interactions.references import references
from ..search import query as q
from ..search.matcher import matches_alone
from ..smart_auth.access import own_patient
from ..smart_auth.scopes import Grants, ScopeError
from ..smart_auth.stored_claims import access_from, owner_of
from ..storage.base import Version
from . import ownership, spec, state, topics


@dataclass(frozen=True)
class Live:
    """A subscription that collects events."""
    id: str
    topic: str
    filters: tuple
    claims: dict | None
    sharing_default: str
    resource: dict                    # its content (Subscription.end is checked at each change)


# store -> (Store.last_write("Subscription") when read, {topic url: Bucket}); units that wrote a
# Subscription read the records afresh (their own uncommitted state must never be cached)
_LIVE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_WROTE_SUBSCRIPTION: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def note(tx, version: Version, access, base: str, new: dict | None, old_body: bytes | None) -> None:
    """Called for every version written (new: its content, None for a delete; old_body: the content
    it replaced, None if none)."""
    if version.type == spec.TYPE:
        _subscription_written(tx, version, access, new)
        return
    watching = topics.BY_TYPE.get(version.type)
    if not watching:
        return
    live = _live(tx)
    buckets = [live[t.url] for t in watching if t.url in live]
    if not buckets:
        return
    old = jsonio.loads_stored(old_body) if old_body else None
    interaction = "delete" if new is None else "create" if old is None else "update"
    content = new if new is not None else old
    if content is None:
        return
    named = _patients_named(content) if any(b.by_patient for b in buckets) else ()
    candidates = [(t, s) for t in watching if t.url in live
                  for s in live[t.url].for_patients(named) if not spec.ended(s.resource)]
    for topic, sub in candidates:
        if topic.trigger(interaction, old, new) and _matches(content, sub.filters, base) \
                and _may_read(tx, sub, version, content, base):
            record(tx.store, sub.id, topic.url, version)


def record(store, sub_id: str, topic: str, version: Version) -> int:
    """Give the next event number and record the event and its outbox entry (in the open unit)."""
    n = state.events_since(store, sub_id) + 1
    store.put_record(state.COUNTER, sub_id, {"n": n})
    now = time.time()
    event = {"sub": sub_id, "n": n, "topic": topic, "timestamp": version.last_updated, "at": now,
             "focus": f"{version.type}/{version.id}/_history/{version.version}", "deleted": version.deleted}
    store.put_record(state.event_kind(sub_id), state.number_key(n), event, expires_at=now + state.MAX_KEEP_S)
    store.put_record(state.outbox_kind(sub_id), state.number_key(n), event, expires_at=now + state.MAX_KEEP_S)
    return n


def _matches(content: dict, filters: tuple, base: str) -> bool:
    return not filters or matches_alone(content, base, q.And(tuple(filters)))


def _may_read(tx, sub: Live, version: Version, content: dict, base: str) -> bool:
    """Whether the subscriber may read this content now (no event otherwise). A written version is
    looked up through the subscriber's read guard inside the write's own transaction, so rules that
    look beyond the resource (a result based on an order the subscriber holds, governance/addressed.py;
    the resource's patient sharing through a Consent) judge the state being committed; a deletion,
    whose content is gone from the store, is judged by the content it removed (Access.versions)."""
    try:
        access = access_from(sub.claims, sub.sharing_default, tx.store)
        if not access.confined("read", version.type):
            return True
        if not version.deleted:
            found = tx.search(version.type, q.And((q.IdIn((version.id,)),)), 1, access.guard("read"))
            return bool(found)
        judged = Version(version.type, version.id, version.version, version.last_updated, "PUT",
                         jsonio.dumps(content))
        return bool(access.versions("read", version.type, [judged], base))
    except FhirError:           # the client or user was disabled, the scopes no longer cover the type
        return False


@dataclass
class Bucket:
    """A topic's live subscriptions: those of patient-confined subscribers by their patient (an event
    about other patients never reaches their read check, so a write costs the same however many
    patients subscribe), the others in a list."""
    anyone: list = field(default_factory=list)
    by_patient: dict = field(default_factory=dict)

    def add(self, sub: Live) -> None:
        patient = _confined_to(sub.claims)
        if patient is None:
            self.anyone.append(sub)
        else:
            self.by_patient.setdefault(patient, []).append(sub)

    def for_patients(self, patients) -> list:
        return self.anyone + [s for p in patients for s in self.by_patient.get(p, ())]


def _confined_to(claims: dict | None) -> str | None:
    """The patient a subscriber's rights are confined to: every scope reads one patient's compartment
    and nothing else, else None. That patient is the one Access.from_claims reads: a patient user's own
    (whatever patient an EHR launch named; her user/ scopes act as patient/ ones), a proxy's or the
    token's patient context."""
    if not claims:
        return None
    try:
        grants = Grants.parse(str(claims.get("scope", "")))
    except ScopeError:
        return None
    own = own_patient(claims)
    patient = own if own is not None else claims.get("patient")
    as_patient = ("patient", "user") if own is not None or claims.get("role") == proxy.ROLE else ("patient",)
    confined = grants.scopes and all(g.context in as_patient for g in grants.scopes)
    return patient if confined and isinstance(patient, str) else None


def _patients_named(content: dict) -> set[str]:
    """Ids of every Patient the content references (or is): a superset of the compartments it is in."""
    found = {content["id"]} if content.get("resourceType") == "Patient" and content.get("id") else set()
    for ref in references(content):
        parts = ref.split("/_history/")[0].rsplit("/", 2)
        if len(parts) >= 2 and parts[-2] == "Patient":
            found.add(parts[-1])
    return found


def _live(tx) -> dict[str, Bucket]:
    store = tx.store
    written = store.last_write(spec.TYPE)
    fresh = tx in _WROTE_SUBSCRIPTION
    hit = None if fresh else _LIVE.get(store)
    if hit is not None and hit[0] == written:
        return hit[1]
    found: dict[str, Bucket] = {}
    for key, rec in store.list_records(state.SUB):
        if rec.get("status") not in state.LIVE or spec.ended(rec["resource"]):
            continue
        try:
            parsed = spec.parse(rec["resource"])
        except BadRequest:          # a topic withdrawn since: the subscription collects nothing
            continue
        found.setdefault(parsed.topic.url, Bucket()).add(
            Live(key, parsed.topic.url, parsed.filters, rec.get("claims"), rec.get("sharing_default", "opt-in"),
                 rec["resource"]))
    if not fresh:
        _LIVE[store] = (written, found)
    return found


def _subscription_written(tx, version: Version, access, resource: dict | None) -> None:
    store = tx.store
    _WROTE_SUBSCRIPTION[tx] = True
    if resource is None:            # deleted: no more events; its records go
        gone = store.get_record(state.SUB, version.id)
        if gone is not None and gone.get("owner"):
            ownership.release(store, gone["owner"], version.id)
        store.delete_record(state.SUB, version.id)
        state.forget(store, version.id)
        return
    rec = store.get_record(state.SUB, version.id)
    if rec is None:
        claims = dict(access.claims) if access.grants is not None else None
        rec = {"owner": owner_of(claims) if claims else None, "claims": claims,
               "sharing_default": getattr(access, "sharing_default", "opt-in"), "created": time.time()}
        if rec["owner"]:
            ownership.adopt(store, rec["owner"], version.id)
    rec.update({"resource": resource, "status": resource.get("status"), "version": version.version})
    store.put_record(state.SUB, version.id, rec)
