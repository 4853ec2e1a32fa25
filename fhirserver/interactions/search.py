"""search (http://hl7.org/fhir/R4/http.html#search, search.html): type, system and
compartment level. Returns the page, the _include/_revinclude additions and the parsed request.

Every search is bounded (search/limits.py): its size while parsed, its time in the store; the
searches of one system search or batch share one time budget.

Unknown parameters are ignored (search.html#errors: "Servers SHALL ignore unknown parameters")
unless the client asks for strict handling (Prefer: handling=strict), which answers 400. What was
ignored is listed in ParsedSearch.ignored, reported by an OperationOutcome entry of the searchset,
and left out of the self link. The HTTP layer sets the request's handling for the searches a Bundle
runs (`handling`); history parameters follow the same rule (`history_params`)."""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from .. import bounds, jsonio
from ..definitions import resource_types
from ..errors import BadRequest, Forbidden, TooCostly
from ..search import limits, near, opening_hours
from ..search import query as q
from ..search.compartment import compartment_clause
from ..search.parse import ParsedSearch, parse_search
from ..storage.base import Page, Version
from .common import check_type
from .history import HISTORY_PARAMS

_STRICT = contextvars.ContextVar("medport_strict_handling", default=False)
_HISTORY_KNOWN = HISTORY_PARAMS | {"_at", "_list"}      # known to R4 history; unsupported ones stay a 400


@contextlib.contextmanager
def handling(strict: bool):
    """The request's Prefer: handling, for the searches of the Bundle it carries."""
    token = _STRICT.set(strict)
    try:
        yield
    finally:
        _STRICT.reset(token)


def lenient() -> bool:
    """Unknown parameters are ignored unless the request asked for strict handling."""
    return not _STRICT.get()


def history_params(params: list[tuple[str, str]], strict: bool | None = None) -> list[tuple[str, str]]:
    """The parameters a history interaction uses: unknown ones dropped unless strict (then history
    answers 400 for them). _at and _list, and modifiers on known names, are kept, to be refused."""
    if strict is None:
        strict = not lenient()
    if strict:
        return params
    return [(n, v) for n, v in params if n.split(":")[0] in _HISTORY_KNOWN]


@dataclass
class SearchResult:
    page: Page
    included: list[Version]
    parsed: ParsedSearch
    distances: dict | None = None      # (type, id) -> location-distance extension (search/near.py)


def search(ctx, type: str, params: list[tuple[str, str]], lenient: bool = False,
           compartment: tuple[str, str] | None = None, budget: limits.NodeBudget | None = None) -> SearchResult:
    """`budget`: the node budget this search shares with others (the GET entries of a batch)."""
    check_type(type)
    opening = [(n, v) for n, v in params if n in ("open-now", "open-at")] if type == "Location" else []
    params = [p for p in params if p not in opening]
    parsed = parse_search(type, params, lenient, ctx.settings.base_url,
                          limits.SearchLimits.from_settings(ctx.settings), budget, ctx.terminology)
    parsed.used += opening
    query = parsed.query
    if compartment is not None:
        query = q.And(query.parts + (compartment_clause(compartment[0], compartment[1], type),))
    nearby = near.condition(query)
    if opening or any(k.kind == "near" for k in parsed.results.sort):
        if nearby is None:
            raise BadRequest("_sort=near, open-now and open-at need a near parameter (search.html#special)")
        if len(parsed.results.sort) > 1:
            raise BadRequest("_sort=near cannot be combined with other sort keys")
        return _run_near(ctx, type, query, parsed, nearby, opening)
    result = _run(ctx, type, query, parsed)
    if nearby is not None:
        result.distances = _distances(result.page.items, nearby)
    return result


def _run_near(ctx, type, query, parsed: ParsedSearch, nearby, opening) -> SearchResult:
    """Every match within the distance (at most near.MAX_NEAR), filtered by opening hours if asked,
    nearest first (or farthest with _sort=-near), paged by position."""
    spec = parsed.results
    count = _page_size(ctx, spec)
    offset = bounds.parse_int(spec.cursor.removeprefix("near."), "the paging cursor") \
        if spec.cursor and spec.cursor.startswith("near.") else 0
    with limits.time_limit(ctx.settings.search_time_limit_ms):
        found = ctx.repo.search(type, query, limit=near.MAX_NEAR + 1, total="none").items
    if len(found) > near.MAX_NEAR:
        raise TooCostly(f"More than {near.MAX_NEAR} matches within this distance: ask for a smaller one")
    ranked = []
    at = opening_hours.when(*opening[-1]) if opening else None
    for v in found:
        resource = jsonio.loads_stored(v.body)
        if at is not None and not opening_hours.is_open(resource, at, ctx.settings.directory_timezone):
            continue
        d = near.distance(resource, nearby)
        ranked.append((d if d is not None else float("inf"), v.id, v, d))
    descending = bool(spec.sort) and spec.sort[0].descending
    ranked.sort(key=lambda r: (-r[0] if descending else r[0], r[1]))
    window = ranked[offset:offset + count] if spec.summary != "count" else []
    items = [v for _, _, v, _ in window]
    following = f"near.{offset + count}" if offset + count < len(ranked) and spec.summary != "count" else None
    included = ctx.repo.includes(items, spec.includes) if spec.includes else []
    distances = {(v.type, v.id): near.extension(d, nearby) for _, _, v, d in window if d is not None}
    return SearchResult(Page(items, following, len(ranked)), included, parsed, distances)


def _distances(items: list[Version], nearby) -> dict:
    out = {}
    for v in items:
        d = near.distance(jsonio.loads_stored(v.body), nearby)
        if d is not None:
            out[(v.type, v.id)] = near.extension(d, nearby)
    return out


def _page_size(ctx, spec) -> int:
    """The page size asked (_count), within the server's bounds."""
    return ctx.settings.default_count if spec.count is None else min(spec.count, ctx.settings.max_count)


def _run(ctx, type, query, parsed: ParsedSearch, interaction: str = "search-type") -> SearchResult:
    spec = parsed.results
    count = _page_size(ctx, spec)
    total = "accurate" if spec.summary == "count" else (spec.total or ctx.settings.default_total)
    if spec.summary == "count":
        count = 0
    # the page and what it includes come from one committed state (a write in between could make an
    # include point at a version the page never saw)
    repo = ctx.repo
    if interaction == "search-type":    # the type's shipped definitions in place first (a snapshot only reads);
        repo.ready(type)                # a system search or an export reads what the store holds
    snapshot = repo.snapshot() if spec.includes else contextlib.nullcontext()
    with limits.time_limit(ctx.settings.search_time_limit_ms), snapshot:
        page = repo.search(type, query, sort=spec.sort, limit=count, cursor=spec.cursor, total=total,
                           interaction=interaction)
        included = repo.includes(page.items, spec.includes) if spec.includes else []
    return SearchResult(page, included, parsed)


def system_search(ctx, params: list[tuple[str, str]], lenient: bool = False) -> SearchResult:
    """GET [base]?_type=A,B&... (or without _type: every type): the common parameters across the
    types (search.html#all). Results come type by type in the order given (without _type,
    alphabetical); the cursor names the type and the position in it. The types share one time budget."""
    with limits.shared_time_limit(ctx.settings.search_time_limit_ms):
        return _system_search(ctx, params, lenient)


def _system_search(ctx, params: list[tuple[str, str]], lenient: bool) -> SearchResult:
    """With several types, a parameter must be common to all of them (search.html#all): one that
    some of the types know is a 400; one that none knows is ignored like any unknown parameter.
    Without _type, every resource type (http.html#search: GET [base]?[parameters]): the cursor
    indexes the list of all types, so a type's first resource between pages shifts nothing; types
    the store never held, or the token may not search, are passed over (each type searched goes
    through the repository, as with _type)."""
    types = [t for name, v in params if name == "_type" for t in v.split(",") if t]
    implicit = not types
    if implicit:
        types = sorted(resource_types())
    elif len(types) > ctx.settings.search_max_values:
        raise TooCostly(f"_type names {len(types)} types; this server searches at most "
                        f"{ctx.settings.search_max_values} at once. Split the search")
    for t in types:
        if t not in resource_types():
            raise BadRequest(f"Unknown resource type '{t}' in _type")
    if len(types) == 1 and not implicit:
        result = search(ctx, types[0], [(n, v) for n, v in params if n != "_type"], lenient)
        result.parsed.used.insert(0, ("_type", types[0]))
        return result
    if any(n.split(":")[0] == "_sort" for n, _ in params):
        raise BadRequest("_sort across several types is not supported; search one type")
    cursor = next((v for n, v in params if n == "_cursor"), None)
    rest = [(n, v) for n, v in params if n not in ("_type", "_cursor", "_count")]
    if lenient:
        _common_or_unknown(ctx, types, rest)
    counts = [v for n, v in params if n == "_count"]
    count = ctx.settings.default_count if not counts or not bounds.is_digits(counts[-1]) \
        else min(bounds.parse_int(counts[-1], "_count"), ctx.settings.max_count)
    held = _held(ctx, types) if implicit else set(types)
    start, inner = _split_cursor(cursor, len(types))
    items, included, next_cursor, first = [], [], None, None
    for i in range(start, len(types)):
        if types[i] not in held:
            continue
        page_params = rest + [("_count", str(count - len(items)))] + ([("_cursor", inner)] if inner else [])
        result = search(ctx, types[i], own_includes(page_params, types[i], types), lenient)
        first = first or result
        items += result.page.items
        included += result.included
        inner = None
        if result.page.next_cursor:
            next_cursor = f"{i}.{result.page.next_cursor}"
            break
        if len(items) >= count:         # _count=0 asks for the total only: no next page
            if count and any(t in held for t in types[i + 1:]):
                next_cursor = f"{i + 1}."
            break
    searched = [t for t in types if t in held]
    total = _total_across(ctx, searched, types, rest, lenient)
    if first is None:           # no type held: the parameters parsed once for the Bundle's self link
        first = SearchResult(Page([], None, 0), [], parse_search(types[0], own_includes(rest, types[0], types),
                                                                 lenient, ctx.settings.base_url))
    used = ([] if implicit else [("_type", ",".join(types))]) + \
        [(n, v) for n, v in first.parsed.used if n != "_count"] + \
        [(n, v) for n, v in rest if n == "_include" and (n, v) not in first.parsed.used] + [("_count", str(count))]
    merged = ParsedSearch(q.MATCH_ALL, first.parsed.results, used, first.parsed.ignored)
    merged.results.cursor = cursor
    return SearchResult(Page(items, next_cursor, total), included, merged)


def _held(ctx, types: list[str]) -> set[str]:
    """The types a search over all types looks at: held by the store (never written: nothing to find,
    and the shipped definitions not yet put in place are not imported by it) and searchable by the token."""
    held = set()
    for t in types:
        if ctx.store.last_write(t) is None:
            continue
        try:
            ctx.repo.allow("search-type", t)
        except Forbidden:
            continue
        held.add(t)
    return held


def own_includes(params: list[tuple[str, str]], rtype: str, types: list[str]) -> list[tuple[str, str]]:
    """In a search over several types, _include=Source:param applies to the Source type's matches
    (search.html#include); for the other types it is left out. A source type not searched stays, a 400."""
    return [(n, v) for n, v in params
            if n != "_include" or (src := v.split(":")[0]) == rtype or src not in types]


def _common_or_unknown(ctx, types, rest) -> None:
    search_limits = limits.SearchLimits.from_settings(ctx.settings)
    ignored = [set(parse_search(t, own_includes(rest, t, types), True, ctx.settings.base_url, search_limits,
                                terminology=ctx.terminology).ignored) for t in types]
    some = set.union(*ignored) - set.intersection(*ignored)
    if some:
        name = sorted(some)[0]
        knows = [t for t, i in zip(types, ignored, strict=True) if name not in i]
        raise BadRequest(f"'{name}' is not a parameter common to every type in _type (only "
                         f"{', '.join(knows)} know it); search those types separately")


def _split_cursor(cursor: str | None, n_types: int) -> tuple[int, str | None]:
    if cursor is None:
        return 0, None
    index, _, inner = cursor.partition(".")
    return bounds.parse_int(index, f"The type index of paging cursor {cursor[:40]!r}", high=n_types - 1), \
        inner or None


def _total_across(ctx, searched, types, rest, lenient) -> int | None:
    """The total of the types searched (those held); an _include is judged against every type of the
    search, as on its pages (own_includes), whichever the store holds."""
    if any(n == "_total" and v == "none" for n, v in rest):
        return None
    totals = [search(ctx, t, own_includes(rest, t, types) + [("_count", "0")], lenient).page.total
              for t in searched]
    return sum(totals) if all(t is not None for t in totals) else None
