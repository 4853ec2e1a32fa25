"""search (http://hl7.org/fhir/R4/http.html#search, search.html): type, system and
compartment level. Returns the page, the _include/_revinclude additions and the parsed request."""
from __future__ import annotations

from dataclasses import dataclass

from ..definitions import resource_types
from ..errors import BadRequest
from ..search import query as q
from ..search.compartment import compartment_clause
from ..search.parse import ParsedSearch, parse_search
from ..storage.base import Page, Version
from .common import check_type


@dataclass
class SearchResult:
    page: Page
    included: list[Version]
    parsed: ParsedSearch


def search(ctx, type: str, params: list[tuple[str, str]], lenient: bool = False,
           compartment: tuple[str, str] | None = None) -> SearchResult:
    check_type(type)
    parsed = parse_search(type, params, lenient, ctx.settings.base_url)
    query = parsed.query
    if compartment is not None:
        query = q.And(query.parts + (compartment_clause(compartment[0], compartment[1], type),))
    return _run(ctx, type, query, parsed)


def _run(ctx, type, query, parsed: ParsedSearch) -> SearchResult:
    spec = parsed.results
    count = ctx.settings.default_count if spec.count is None else min(spec.count, ctx.settings.max_count)
    total = "accurate" if spec.summary == "count" else (spec.total or ctx.settings.default_total)
    if spec.summary == "count":
        count = 0
    page = ctx.store.search(type, query, sort=spec.sort, limit=count, cursor=spec.cursor, total=total)
    included = ctx.store.includes(page.items, spec.includes) if spec.includes else []
    return SearchResult(page, included, parsed)


def system_search(ctx, params: list[tuple[str, str]], lenient: bool = False) -> SearchResult:
    """GET [base]?_type=A,B&... : the common parameters across the listed types (search.html#all).
    One page per request, types in the order given; each type is searched in turn."""
    types = [t for name, v in params if name == "_type" for t in v.split(",") if t]
    rest = [(n, v) for n, v in params if n != "_type"]
    if not types:
        raise BadRequest("System search needs _type=Type[,Type...] on this server")
    for t in types:
        if t not in resource_types():
            raise BadRequest(f"Unknown resource type '{t}' in _type")
    if len(types) > 1 and any(n.split(":")[0] in ("_sort", "_cursor") for n, _ in rest):
        raise BadRequest("_sort and paging across several types are not supported; search one type")
    results = [search(ctx, t, rest, lenient) for t in types]
    if len(results) == 1:
        results[0].parsed.used.insert(0, ("_type", types[0]))
        return results[0]
    items = [v for r in results for v in r.page.items]
    included = [v for r in results for v in r.included]
    totals = [r.page.total for r in results]
    total = sum(totals) if all(t is not None for t in totals) else None
    merged = ParsedSearch(q.MATCH_ALL, results[0].parsed.results, [("_type", ",".join(types))] + results[0].parsed.used)
    return SearchResult(Page(items, None, total), included, merged)
