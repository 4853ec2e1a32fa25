"""history at instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Under a confined grant (a patient's compartment, a granular query) the store selects the resources
the guard admits, and Access.versions then drops the versions whose own content lies outside the
grant (and deletions). The page, its total and its next link describe only what is left:

- a page is filled from whole store pages, and its next link is given only once a later visible
  version has been seen, pointing just before the store page that holds it; so no page ends with a
  next link that leads to nothing;
- Bundle.total counts visible versions alone. When the first page reached the end of the history it
  is that page's size; otherwise the admitted versions are judged once more, all of them, if there
  are at most max_count (the cost of one largest page). Past that it is left out (Bundle.total is
  optional, bundle.html#Bundle.total) rather than counting versions the caller may not see.
"""
from __future__ import annotations

from ..bounds import parse_int
from ..errors import BadRequest, NotFound
from ..storage.base import Page
from .common import check_type
from .instants import parse_instant

HISTORY_PARAMS = {"_count", "_since", "_cursor", "_format", "_pretty"}


def history(ctx, type: str | None, id: str | None, params: list[tuple[str, str]]) -> Page:
    if type is not None:
        check_type(type)
    args = {}
    for name, value in params:
        if name not in HISTORY_PARAMS:
            raise BadRequest(f"Unknown parameter '{name}' for history")
        args[name] = value
    count = ctx.settings.default_count
    if "_count" in args:
        count = min(parse_int(args["_count"], "_count", high=2 ** 31 - 1), ctx.settings.max_count)
    interaction = "history-instance" if id is not None else "history-type" if type else "history-system"
    if id is not None:
        ctx.access.check_visible(ctx.search_visible, interaction, type, id)
    elif type is not None:
        ctx.access.allow(interaction, type)
    guard = ctx.access.guard(interaction)
    since = parse_instant(args["_since"], "_since") if "_since" in args else None

    def fetch(cursor):
        return ctx.store.history(type, id, since=since, limit=count, cursor=cursor, guard=guard)

    cursor = args.get("_cursor")
    page = fetch(cursor)
    if id is not None and page.total == 0 and ctx.store.read(type, id) is None:
        raise NotFound(f"{type}/{id} is not known")
    if guard is None or (type is not None and not ctx.access.confined(interaction, type)):
        return page         # nothing can be hidden: the store's page, total and cursor stand
    admitted = page.total
    items, next_cursor, end = _visible_page(ctx, interaction, type, page, cursor, count, fetch)
    if end and cursor is None and count > 0:
        total = len(items)
    elif admitted is not None and admitted <= ctx.settings.max_count:
        everything = ctx.store.history(type, id, since=since, limit=max(admitted, 1), guard=guard)
        total = len(ctx.access.versions(interaction, type, everything.items, ctx.base))
    else:
        total = None
    return Page(items, next_cursor, total)


def _visible_page(ctx, interaction, type, page: Page, cursor, count: int, fetch):
    """Up to `count` visible versions from whole store pages, starting at `page` (read at `cursor`):
    (items, the cursor of the next page or None, whether the end of the history was reached)."""
    items: list = []
    while True:
        shown = ctx.access.versions(interaction, type, page.items, ctx.base)
        if shown and len(items) + len(shown) > count:       # this store page starts the next page
            return items, cursor, False
        items += shown
        if page.next_cursor is None:                        # the end: nothing visible lies beyond
            return items, None, True
        cursor = page.next_cursor
        page = fetch(cursor)
