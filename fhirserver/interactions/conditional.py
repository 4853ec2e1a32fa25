"""Resolve the search criteria of conditional interactions (http.html#ccreate, #cond-update, #cdelete).
They run under the request's rights: Repository.matches / GuardedTransaction.matches (repository.py)."""
from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import BadRequest
from ..search.parse import parse_search


def parse_criteria(type: str, criteria: str, base: str = "", terminology=None):
    """A query string such as 'identifier=http://sys|123' -> query tree; empty criteria are refused.
    `terminology`: the server's (ctx.terminology), for token :in/:not-in/:below/:above."""
    pairs = parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise BadRequest("Conditional interaction without search criteria")
    parsed = parse_search(type, pairs, base=base, terminology=terminology)
    if not parsed.query.parts:
        raise BadRequest(f"Conditional criteria {criteria!r} select nothing")
    return parsed.query


def matches(ctx, tx, type: str, criteria: str, interaction: str, limit: int = 2):
    """At most `limit` current resources matching the criteria, read inside the (guarded) transaction,
    among those the request may touch with this interaction (others are as if absent)."""
    query = parse_criteria(type, criteria, ctx.settings.base_url, ctx.terminology)
    return tx.matches(type, query, limit, interaction)
