"""history at instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Under a confined grant (a patient's compartment, a granular query) the store selects the resources
the guard admits, and Access.versions then drops the versions whose own content lies outside the
grant (and deletions): Repository.history (repository.py). The page, its total and its next link
describe only what is left:

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
from ..errors import BadRequest
from ..storage.base import Page
from .common import check_type

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
    return ctx.repo.history(type, id, since=args.get("_since"), limit=count, cursor=args.get("_cursor"),
                            max_total=ctx.settings.max_count)

