"""Patient/[id]/$everything and Patient/$everything: a patient's whole record as a searchset Bundle
(http://hl7.org/fhir/R4/patient-operation-everything.html; profiles/operations/Patient-everything.json;
docs/everything.md).

- Instance level: the caller must be able to read the Patient, and the answer is a read's when it cannot
  (operations.invoke checks the rights; then the read itself: 404 never stored, 410 deleted; a patient
  outside the caller's reach answers 404 like a nonexistent one). Type level: the records of
  every patient the caller may see; for a patient's token, that is their own record.
- Everything is searched through the request's repository (search-type rights, the guard inside every
  query): compartment records are search.mode `match`, the Practitioners, Organizations, Locations and
  Medications they refer to `include`, each once. A type the token's scopes do not grant is left out.
- start/end: care dates (each type's `date` parameter; the Patient and undated records always come);
  _since: meta.lastUpdated at or after the instant; _type: only these types; _count: page size (the
  search default when absent, capped at MEDPORT_MAX_COUNT).
- Paging: segment by segment (everything_query.py) with the store's keyset cursors, so writes between
  pages neither shift nor repeat results. The next link carries `_cursor`, bound to the request's
  selection; `_offset` (in the R4 definition) is refused: offsets shift under writes.
- Cost: at most one store query per segment per page (about 70), all within one shared time budget
  (MEDPORT_SEARCH_TIME_LIMIT_MS); Bundle.total is not computed.
"""
from __future__ import annotations

import base64
import copy
import datetime
import functools
import hashlib
import json
import re
from urllib.parse import urlencode

from .. import bounds, jsonio
from ..definitions import load_json, resource_types
from ..errors import BadRequest, Forbidden, TooCostly
from ..interactions import read as read_i
from ..interactions.instants import parse_instant
from ..search import limits
from ..storage.base import Page
from .everything_query import Filters, is_referenced, segment_query, segments
from .parameters import first

CURSOR = {"name": "_cursor", "use": "in", "min": 0, "max": "1", "type": "string",
          "documentation": "Med-Port paging: where the page starts, taken from the previous page's next link"}
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@functools.lru_cache(maxsize=1)
def everything_definition() -> dict:
    """The official OperationDefinition, plus the paging cursor its next links carry."""
    d = copy.deepcopy(load_json("operations/Patient-everything.json"))
    d["parameter"].insert(len(d["parameter"]) - 1, CURSOR)
    return d


def everything(ctx, rtype, id, params: dict) -> dict:
    if "_offset" in params:
        raise BadRequest("$everything pages with the next link of each page (a cursor that writes do not "
                         "shift); _offset is not supported")
    f = _filters(ctx, id, params)
    if id is not None:          # a Patient never stored or deleted answers as its read does (404, 410)
        read_i.read(ctx, "Patient", id)
    count = _count(ctx, first(params, "_count"))
    order = segments(f.types)
    cursor = first(params, "_cursor")
    seg, inner = _decode(cursor, f, len(order))
    entries, base, time_ms = [], ctx.base, ctx.settings.search_time_limit_ms
    with limits.shared_time_limit(time_ms):
        while seg < len(order) and len(entries) < count:
            t = order[seg]
            page = _search(ctx, t, f, count - len(entries), inner, time_ms)
            mode = "include" if is_referenced(t) else "match"
            entries += [{"fullUrl": f"{base}/{v.type}/{v.id}", "resource": jsonio.loads_stored(v.body),
                         "search": {"mode": mode}} for v in page.items]
            if page.next_cursor is not None:
                inner = page.next_cursor
            else:
                seg, inner = seg + 1, None
    used = _used(f, count)
    path = f"{base}/Patient/{id}/$everything" if id is not None else f"{base}/Patient/$everything"
    links = [{"relation": "self", "url": f"{path}?{urlencode(used + ([('_cursor', cursor)] if cursor else []))}"}]
    if seg < len(order):
        links.append({"relation": "next", "url": f"{path}?{urlencode(used + [('_cursor', _encode(f, seg, inner))])}"})
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle


def _search(ctx, rtype: str, f: Filters, limit: int, cursor: str | None, time_ms: int):
    """One page of a segment, or an empty last page when the token's scopes do not grant the type."""
    try:
        ctx.repo.allow("search-type", rtype)
    except Forbidden:
        return Page([])
    with limits.time_limit(time_ms):
        return ctx.repo.search(rtype, segment_query(rtype, f), limit=limit, cursor=cursor, total="none",
                               interaction="search-type")


# ---- parameters ---------------------------------------------------------------------------------

def _filters(ctx, id: str | None, params: dict) -> Filters:
    start, end = (_date(first(params, n), n) for n in ("start", "end"))
    since = first(params, "_since")
    if since is not None:
        parse_instant(str(since), "_since")
    return Filters(id, start, end, None if since is None else str(since), _types(ctx, params.get("_type")))


def _date(value, name: str) -> str | None:
    """A FHIR date (YYYY, YYYY-MM or YYYY-MM-DD), as the `date` type of the parameter says."""
    if value is None:
        return None
    text = str(value)
    try:
        if not _DATE.match(text):
            raise ValueError
        datetime.date.fromisoformat((text + "-01-01")[:10] if len(text) < 10 else text)
    except ValueError:
        raise BadRequest(f"{name} must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD), got {text[:40]!r}") from None
    return text


def _types(ctx, values) -> frozenset[str] | None:
    if not values:
        return None
    types = [t.strip() for v in values for t in str(v).split(",") if t.strip()]
    if len(types) > ctx.settings.search_max_values:
        raise TooCostly(f"_type names {len(types)} types; this server takes at most {ctx.settings.search_max_values}")
    unknown = sorted({t for t in types if t not in resource_types()})
    if unknown:
        raise BadRequest(f"Unknown resource type '{unknown[0][:64]}' in _type")
    return frozenset(types)


def _count(ctx, value) -> int:
    if value is None:
        return ctx.settings.default_count
    return min(bounds.parse_int(str(value), "_count", low=1), ctx.settings.max_count)


def _used(f: Filters, count: int) -> list[tuple[str, str]]:
    """The selection as it was understood, for the self and next links."""
    used = [(n, v) for n, v in (("start", f.start), ("end", f.end), ("_since", f.since)) if v is not None]
    if f.types is not None:
        used.append(("_type", ",".join(sorted(f.types))))
    return used + [("_count", str(count))]


# ---- the paging cursor --------------------------------------------------------------------------

def _fingerprint(f: Filters) -> str:
    """Binds a cursor to the selection it pages through (another patient, range or _type: 400)."""
    text = json.dumps([f.patient, f.start, f.end, f.since, sorted(f.types or ())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode(f: Filters, seg: int, inner: str | None) -> str:
    raw = json.dumps([_fingerprint(f), seg, inner], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor, f: Filters, n: int) -> tuple[int, str | None]:
    if cursor is None:
        return 0, None
    text = str(cursor)
    try:
        fingerprint, seg, inner = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        raise BadRequest(f"Invalid paging cursor {text[:40]!r}") from None
    if fingerprint != _fingerprint(f) or not isinstance(seg, int) or not 0 <= seg < n \
            or not (inner is None or isinstance(inner, str)):
        raise BadRequest("Invalid paging cursor: it does not belong to this $everything request")
    return seg, inner
