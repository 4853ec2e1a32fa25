"""Turning stored versions into HTTP responses and Bundles (http.html#ops, bundle.html).

Stored bodies are compact JSON; they are sent as they are (or spliced into
Bundles with orjson.Fragment) so that reads never re-parse a resource.
"""
from __future__ import annotations

import datetime
import functools
import re
from email.utils import format_datetime
from urllib.parse import urlencode

import orjson
from flask import Response, current_app
from werkzeug.datastructures import Headers

from .. import jsonio
from ..errors import Issue, operation_outcome
from ..search.summary import subset
from ..storage.base import Page, Version
from .binary_io import binary_json_stream
from .negotiation import FHIR_JSON, pretty


def base_url() -> str:
    return current_app.config["MEDPORT"].settings.base_url


_STORED_INSTANT = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{6}Z")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=1024)     # the same versions are read again and again
def http_date(instant: str) -> str:
    """A stored lastUpdated ('2026-01-02T03:04:05.678901Z') as an HTTP-date exactly as
    email.utils.format_datetime(usegmt=True) writes it ('Fri, 02 Jan 2026 03:04:05 GMT'). Stored
    instants are fixed-width: a regex and datetime() replace strptime (issue 16: 6% of a read)."""
    m = _STORED_INSTANT.fullmatch(instant)
    if m is None:
        when = datetime.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        return format_datetime(when, usegmt=True)
    w = datetime.datetime(*map(int, m.groups()))       # ValueError for an impossible date, as strptime
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (_DAYS[w.weekday()], w.day, _MONTHS[w.month - 1], w.year,
                                                    w.hour, w.minute, w.second)


def version_headers(v: Version) -> dict:
    return {"ETag": f'W/"{v.version}"', "Last-Modified": http_date(v.last_updated)}


def json_response(obj, status: int = 200, headers: dict | None = None, media_type: str = FHIR_JSON) -> Response:
    return Response(jsonio.dumps(obj, pretty()), status=status, headers=headers,
                    content_type=f"{media_type}; charset=utf-8")


def no_content(headers: dict | None = None) -> Response:
    """204 with no body and no Content-Type."""
    response = Response(status=204, headers=headers)
    del response.headers["Content-Type"]
    return response


def resource_response(v: Version, status: int = 200, media_type: str = FHIR_JSON, prefer_return: str = "representation",
                      location: bool = False, outcome=None, shape: tuple | None = None) -> Response:
    """A single resource with ETag, Last-Modified and (for creates) Location. outcome: the write's
    ProfileOutcome, whose findings an OperationOutcome answer lists (validation/write_policy.py).
    shape: the (_summary, _elements) of a read (interactions/read.shape), a SUBSETTED resource."""
    headers = version_headers(v)
    if location:
        headers["Location"] = f"{base_url()}/{v.type}/{v.id}/_history/{v.version}"
    if prefer_return == "minimal":
        response = Response(status=status, headers=headers)
        del response.headers["Content-Type"]
        return response
    if prefer_return == "OperationOutcome":
        oo = operation_outcome([Issue(f"{v.type}/{v.id} version {v.version} stored", "informational",
                                      "information"), *(outcome.issues() if outcome is not None else ())])
        return json_response(oo, status, headers, media_type)
    content_type = f"{media_type}; charset=utf-8"
    if shape is not None:
        return Response(jsonio.dumps(subset(resource_dict(v), *shape), pretty()), status=status, headers=headers,
                        content_type=content_type)
    if v.blob is not None:
        return Response(binary_json_stream(v), status=status, headers=headers, content_type=content_type)
    body = v.body
    if pretty():
        body = jsonio.dumps(jsonio.loads_stored(body), pretty=True)
    # the headers in the order Response(headers=..., content_type=...) puts them, built at once
    # (issue 16: werkzeug's generic Headers(dict) and Content-Type set cost more than the rest)
    ready = Headers()
    for name, value in headers.items():
        ready.add(name, value)
    ready.add("Content-Type", content_type)
    return Response(body, status=status, headers=ready)


def _entry_resource(v: Version):
    if v.blob is not None:   # Binary in a Bundle: include its data
        return orjson.Fragment(b"".join(binary_json_stream(v)))
    return jsonio.loads_stored(v.body) if pretty() else orjson.Fragment(v.body)


def _links(path: str, params: list[tuple[str, str]], page: Page) -> list[dict]:
    base = f"{base_url()}/{path}" if path else base_url()
    kept = [(k, v) for k, v in params if k != "_cursor"]
    links = [{"relation": "self", "url": base + ("?" + urlencode(params) if params else "")}]
    if page.next_cursor is not None:
        links.append({"relation": "next", "url": base + "?" + urlencode(kept + [("_cursor", page.next_cursor)])})
    return links


def history_bundle(path: str, params: list[tuple[str, str]], page: Page) -> dict:
    """A Bundle of type history (http.html#history): newest first, deletions without a resource."""
    entries = []
    for v in page.items:
        url = f"{v.type}/{v.id}"
        entry = {"fullUrl": f"{base_url()}/{url}"}
        if not v.deleted:
            entry["resource"] = _entry_resource(v)
        method = "PUT" if v.method == "PATCH" else v.method
        entry["request"] = {"method": method, "url": url if method != "POST" else v.type}
        created = method == "POST" or v.version == 1
        status = "204 No Content" if v.deleted else "201 Created" if created else "200 OK"
        entry["response"] = {"status": status, "etag": f'W/"{v.version}"', "lastModified": v.last_updated}
        entries.append(entry)
    return _bundle("history", path, params, page, entries)


def _bundle(kind: str, path: str, params, page: Page, entries: list) -> dict:
    """A paged Bundle; total and entry are left out when absent (json.html: no empty arrays)."""
    bundle = {"resourceType": "Bundle", "type": kind}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = _links(path, params, page)
    if entries:
        bundle["entry"] = entries
    return bundle


def searchset_bundle(path: str, params: list[tuple[str, str]], result) -> dict:
    """A searchset Bundle (search.html#bundle): matches, then _include/_revinclude additions."""
    spec = result.parsed.results
    page = result.page
    entries = [_search_entry(v, "match", spec) for v in page.items]
    for entry, v in zip(entries, page.items, strict=True) if result.distances else ():     # location-distance (near)
        ext = result.distances.get((v.type, v.id))
        if ext is not None:
            entry["search"]["extension"] = [ext]
    entries += [_search_entry(v, "include", spec) for v in result.included]
    if result.parsed.ignored:
        entries.append({"resource": ignored_outcome(result.parsed.ignored), "search": {"mode": "outcome"}})
    return _bundle("searchset", path, params, page, entries)


def ignored_outcome(ignored: list[str]) -> dict:
    """search.html#errors: the unknown parameters a search ignored, one warning each (search.mode outcome)."""
    return operation_outcome([Issue(f"Unknown search parameter '{name}' was ignored", "not-supported", "warning",
                                    details={"text": name}) for name in ignored])


def resource_dict(v: Version) -> dict:
    """A stored version as a parsed resource (a Binary with its data rebuilt from the blob)."""
    return jsonio.loads_stored(b"".join(binary_json_stream(v)) if v.blob else v.body)


def _search_entry(v: Version, mode: str, spec) -> dict:
    if spec.summary not in (None, "false") or spec.elements:
        resource = subset(resource_dict(v), spec.summary, spec.elements)
    else:
        resource = _entry_resource(v)
    return {"fullUrl": f"{base_url()}/{v.type}/{v.id}", "resource": resource, "search": {"mode": mode}}
