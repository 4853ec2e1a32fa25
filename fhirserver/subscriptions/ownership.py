"""Who reaches a Subscription: the owner of the token that created it (smart_auth/stored_claims
owner_of: the same client, subject, organisation and patient context), and administrators; for anyone
else it does not exist (404, no oracle). Applied inside the query like every access rule: Access.guard
narrows the Subscription type to the ids the caller owns (state.SUB records), so read, vread, search,
history, update, patch, delete, $status and $events all follow from it.

Not the patient compartment nor the organisation policy: a Subscription is about its subscriber, and
a patient (or a hospital's client) may create one under any scope granting Subscription.
"""
from __future__ import annotations

from ..search import query as q
from ..smart_auth.stored_claims import owner_of
from . import state

TYPE = "Subscription"


def unlimited(access) -> bool:
    """Administrators (every use audited) and work without a token reach every Subscription."""
    return access.grants is None or access.claims.get("role") == "admin"


def owned_ids(store, claims: dict) -> tuple[str, ...]:
    me = owner_of(claims)
    return tuple(key for key, record in store.list_records(state.SUB) if record.get("owner") == me)


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
