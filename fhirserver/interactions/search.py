"""search at type level (http://hl7.org/fhir/R4/http.html#search)."""
from __future__ import annotations

from ..search.parse import ParsedSearch, parse_search
from ..storage.base import Page
from .common import check_type


def search(ctx, type: str, params: list[tuple[str, str]], lenient: bool = False) -> tuple[Page, ParsedSearch]:
    check_type(type)
    parsed = parse_search(type, params, lenient)
    count = ctx.settings.default_count if parsed.count is None else min(parsed.count, ctx.settings.max_count)
    parsed.count = count
    page = ctx.store.search(type, parsed.query, limit=count, cursor=parsed.cursor)
    return page, parsed
