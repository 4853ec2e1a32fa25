"""Work done later on behalf of a token (a bulk export, a subscription's notifications) keeps the
token's claims in a store record, not the token: who owns the work is owner_of(claims), and its rights
are rebuilt from the claims each time it runs (access_from), after checking that the client and the
user still stand (not disabled: smart_auth/standing.py). So the work never reads more than the token
could, and stops reading when its client or user is switched off."""
from __future__ import annotations

from . import standing


def owner_of(claims: dict | None) -> dict:
    """Who owns the work: the token's client, for the same subject, organisation and patient context
    (another token of the same app acting for someone else is not the owner)."""
    claims = claims or {}
    return {k: claims.get(k) for k in ("client_id", "sub", "organization", "patient")}


def access_from(claims: dict | None, sharing_default: str, store):
    """The rights (an Access) of the stored claims now (UNRESTRICTED for work started without a token)."""
    # (imported here: access.py itself uses owner_of, through subscriptions/ownership.py)
    from .access import UNRESTRICTED, Access
    if not claims:
        return UNRESTRICTED
    standing.check(store, claims.get("client_id"), claims.get("sub") if claims.get("role") else None)
    return Access.from_claims(claims, sharing_default, store)
