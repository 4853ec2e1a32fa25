"""Who reaches a Subscription: the owner of the token that created it (smart_auth/stored_claims
owner_of: the same client, subject, organisation and patient context), and administrators; for anyone
else it does not exist (404, no oracle). Applied inside the query like every access rule: Access.guard
narrows the Subscription type to the ids the caller owns (state.SUB records), so read, vread, search,
history, update, patch, delete, $status and $events all follow from it.

Not the patient compartment nor the organisation policy: a Subscription is about its subscriber, and
a patient (or a hospital's client) may create one under any scope granting Subscription.
"""
from __future__ import annotations

import hashlib
import json

from ..errors import Unprocessable
from ..search import query as q
from ..smart_auth.stored_claims import owner_of
from . import state
from .spec import TYPE

# each live subscription costs every write of its topic's focus type (events.py): an owner holds at most so many
MAX_PER_OWNER = 100


def unlimited(access) -> bool:
    """Administrators (every use audited) and work without a token reach every Subscription."""
    return access.grants is None or access.claims.get("role") == "admin"


def owned_ids(store, claims: dict) -> tuple[str, ...]:
    """The ids of the owner's Subscriptions: one record (state.OWNED), asked on every guarded query."""
    return tuple((store.get_record(state.OWNED, _key(owner_of(claims))) or {}).get("ids", ()))


def adopt(store, owner: dict, sub_id: str) -> None:
    """A new Subscription joins its owner's index (inside its write's transaction); 422 past MAX_PER_OWNER."""
    key = _key(owner)
    ids = list((store.get_record(state.OWNED, key) or {}).get("ids", ()))
    if len(ids) >= MAX_PER_OWNER:
        raise Unprocessable(f"This client already holds {len(ids)} Subscriptions, at most {MAX_PER_OWNER}: "
                            "delete one, or widen a filter to cover several")
    store.put_record(state.OWNED, key, {"ids": [*ids, sub_id]})


def release(store, owner: dict, sub_id: str) -> None:
    """A deleted Subscription leaves its owner's index."""
    key = _key(owner)
    ids = [i for i in (store.get_record(state.OWNED, key) or {}).get("ids", ()) if i != sub_id]
    if ids:
        store.put_record(state.OWNED, key, {"ids": ids})
    else:
        store.delete_record(state.OWNED, key)


def _key(owner: dict) -> str:
    return hashlib.sha256(json.dumps(owner, sort_keys=True).encode()).hexdigest()


def wrap(access, store, interaction: str, inner):
    """The guard with Subscriptions narrowed to the caller's own (inner: the guard for every other type;
    None: no restriction)."""
    if unlimited(access) or not access.grants.decide(interaction, TYPE).allowed:
        return inner        # (the scopes' guard already denies an ungranted type)

    def guard(rtype: str):
        if rtype != TYPE:
            return inner(rtype) if inner is not None else None
        if store is None:
            return q.DENY
        ids = owned_ids(store, access.claims)
        return q.IdIn(ids) if ids else q.DENY
    return guard
