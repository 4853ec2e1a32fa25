"""history at instance, type and system level (http://hl7.org/fhir/R4/http.html#history)."""
from __future__ import annotations

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
        if not args["_count"].isdigit():
            raise BadRequest(f"_count must be a non-negative integer, got {args['_count']!r}")
        count = min(int(args["_count"]), ctx.settings.max_count)
    interaction = "history-instance" if id is not None else "history-type" if type else "history-system"
    if id is not None:
        ctx.access.check_visible(ctx.search_visible, interaction, type, id)
    elif type is not None:
        ctx.access.allow(interaction, type)
    page = ctx.store.history(type, id, since=parse_instant(args["_since"], "_since") if "_since" in args else None,
                             limit=count, cursor=args.get("_cursor"), guard=ctx.access.guard(interaction))
    if id is not None and page.total == 0 and ctx.store.read(type, id) is None:
        raise NotFound(f"{type}/{id} is not known")
    visible = ctx.access.versions(interaction, type, page.items, ctx.base)
    if len(visible) != len(page.items):   # some versions lie outside the grant: no count that includes them
        return Page(visible, page.next_cursor, None)
    return page
