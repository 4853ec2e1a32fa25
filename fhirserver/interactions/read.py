"""read and vread (http://hl7.org/fhir/R4/http.html#read, #vread), and conditional read (http.html#cread).

_summary and _elements shape a read as they shape search results (http.html#read: "the search parameter
_summary can be used when reading a resource"; search.html#summary, #elements): `shape` reads them."""
from __future__ import annotations

import datetime
import re
from email.utils import parsedate_to_datetime

from ..bounds import is_digits, parse_int
from ..errors import BadRequest, Gone, NotFound
from ..search.results import ResultSpec, parse_result_param
from ..storage.base import Version
from .common import Result, check_type, current_or_raise


def read(ctx, type: str, id: str) -> Result:
    check_type(type)
    return Result(current_or_raise(ctx.repo.read(type, id), type, id))


def vread(ctx, type: str, id: str, version_id: str) -> Result:
    check_type(type)
    if not is_digits(version_id):
        raise NotFound(f"{type}/{id} has no version '{version_id}'")
    version = ctx.repo.vread(type, id, parse_int(version_id, "The version id"))
    if version is None:     # absent, or its own content is outside the grant
        raise NotFound(f"{type}/{id} has no version {version_id}")
    if version.deleted:   # http.html#vread: a deleted version answers 410
        raise Gone(f"Version {version_id} of {type}/{id} is a deletion")
    return Result(version)


def shape(type: str, params) -> tuple[str | None, tuple[str, ...] | None] | None:
    """The (_summary, _elements) a read asks for, checked as a search checks them (400 for a bad value);
    None when the whole resource is asked for. `params`: the request's query, (name, value) pairs."""
    spec = ResultSpec()
    for name, value in params:
        if name in ("_summary", "_elements"):
            parse_result_param(type, spec, name, value)
    if spec.summary == "count":
        raise BadRequest("_summary=count applies to searches only, not to a read")
    if spec.summary in (None, "false") and not spec.elements:
        return None
    return spec.summary, spec.elements


def not_modified(version: Version, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """Conditional read (RFC 9110 13.1.2, 13.1.3, 13.2.2): True when a GET may answer 304.

    If-None-Match, when present, decides alone: `*` matches any current version, otherwise the
    listed entity tags are compared weakly (W/"1" and "1" both match version 1). Without it,
    If-Modified-Since (an HTTP-date; a FHIR instant in Bundle entries) matches when the version
    was last changed no later than that time, compared at one-second resolution; a value that
    is not a valid date is ignored."""
    if if_none_match is not None and if_none_match.strip():
        return none_match_hits(version, if_none_match)
    if if_modified_since and if_modified_since.strip():
        since = _http_time(if_modified_since.strip())
        if since is None:
            return False
        stored = datetime.datetime.strptime(version.last_updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc, microsecond=0)
        return stored <= since.replace(microsecond=0)
    return False


def none_match_hits(version: Version, if_none_match: str) -> bool:
    """If-None-Match (not blank) names this version (RFC 9110 13.1.2): `*`, or one of its entity tags. A read
    then answers 304, a write 412 (update.check_if_none_match)."""
    tags = if_none_match.strip()
    return tags == "*" or str(version.version) in _entity_tags(tags)


_ETAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def _entity_tags(header: str) -> set[str]:
    """The opaque tags of an If-None-Match list (weak comparison: W/ is dropped). A list without any
    quotes (1, 2) is read as bare tags, as clients sometimes send them; anything unreadable matches
    nothing."""
    if '"' not in header:
        return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
    tags, pos = set(), 0
    while pos < len(header):
        m = _ETAG.match(header, pos)
        if m is None:
            return tags
        tags.add(m.group(1))
        pos = m.end()
    return tags


def _http_time(value: str) -> datetime.datetime | None:
    """An HTTP-date (RFC 9110 5.6.7) or an ISO 8601 instant, as an aware UTC time; None if neither."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)
