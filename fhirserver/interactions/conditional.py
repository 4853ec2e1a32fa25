"""Resolve the search criteria of conditional interactions (http.html#ccreate, #cond-update, #cdelete)."""
from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import BadRequest
from ..search.parse import parse_search
from ..smart_auth.access import intersect


def parse_criteria(type: str, criteria: str, base: str = ""):
    """A query string such as 'identifier=http://sys|123' -> query tree; empty criteria are refused."""
    pairs = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise BadRequest("Conditional interaction without search criteria")
    parsed = parse_search(type, pairs, base=base)
    if not parsed.query.parts:
        raise BadRequest(f"Conditional criteria {criteria!r} select nothing")
    return parsed.query


def matches(ctx, tx, type: str, criteria: str, interaction: str, limit: int = 2):
    """At most `limit` current resources matching the criteria, read inside the transaction, among
    those the request may touch with this interaction (others are as if absent)."""
    return tx.search(type, parse_criteria(type, criteria, ctx.settings.base_url), limit,
                     criteria_guard(ctx.access, type, interaction))


def criteria_guard(access, type: str, interaction: str):
    """The guard of a conditional interaction's search. Running criteria is a search, so it needs search
    rights as well as the interaction's own (a create- or write-only grant must not probe what exists);
    If-None-Exist also answers with the match, so it needs read rights too. Only resources inside
    both grants can match."""
    access.allow(interaction, type)
    access.allow("search-type", type)
    if interaction == "create":
        access.allow("read", type)
    own, search = access.guard(interaction), access.guard("search-type")
    if own is None:
        return search
    if search is None:
        return own
    return lambda rtype: intersect(own(rtype), search(rtype))


def tx_visible(tx):
    """search(type, query, limit, guard) inside a write transaction (for Access.visible)."""
    return lambda rtype, query, limit, guard: tx.search(rtype, query, limit, guard)
