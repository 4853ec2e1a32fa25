"""What each batch/transaction entry produced, and the GET entries
(http://hl7.org/fhir/R4/bundle.html#transaction-response)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..errors import BadRequest, FhirError
from ..storage.base import Version
from . import history as history_i
from . import read as read_i
from . import search as search_i


@dataclass
class EntryResult:
    status: int
    version: Version | None = None
    created: bool = False
    search: object = None          # a SearchResult or history Page for GET searches
    search_path: str = ""
    params: list = None
    error: FhirError | None = None  # batch only: this entry failed
    is_read: bool = False           # a GET entry: its response carries the resource
    resource: dict | None = None    # an operation's result (e.g. Parameters)
    shape: tuple | None = None      # a read's _summary / _elements (read.shape)


def run_operation(ctx, e) -> EntryResult:
    """An operation entry ([Type/[id]/]$name); its result goes into the response entry."""
    from .. import operations
    query = parse_qsl(e.criteria or "", keep_blank_values=True)
    body = e.resource if e.method == "POST" else None
    result = operations.invoke(ctx, e.operation, e.type, e.id, query, body, e.method)
    if isinstance(result, operations.Raw):
        raise BadRequest(f"{e.where}: ${e.operation} answers {result.media_type} here, which a Bundle entry "
                         "cannot carry; ask for its FHIR form")
    return EntryResult(200, resource=result)


def run_get(ctx, e) -> EntryResult:
    """GET/HEAD entries: read, vread, search, history (processed after the writes)."""
    params = parse_qsl(e.criteria or "", keep_blank_values=True)
    if e.history:
        params = search_i.history_params(params)
        page = history_i.history(ctx, e.type, e.id, params)
        path = "/".join(p for p in (e.type, e.id, "_history") if p)
        return EntryResult(200, search=page, search_path=path, params=params)
    if e.type is None:
        raise BadRequest(f"{e.where}: GET {e.url!r} is not supported in bundles")
    if e.id is not None:
        got = read_i.vread(ctx, e.type, e.id, e.vid) if e.vid is not None else read_i.read(ctx, e.type, e.id)
        version = got.version
        return EntryResult(304 if _not_modified(e, version) else 200, version, is_read=True,
                           shape=read_i.shape(e.type, params))
    result = search_i.search(ctx, e.type, params, search_i.lenient())
    used = result.parsed.used + ([("_cursor", result.parsed.cursor)] if result.parsed.cursor else [])
    return EntryResult(200, search=result, search_path=e.type, params=used)


def _not_modified(e, version: Version) -> bool:
    """request.ifNoneMatch / ifModifiedSince of a GET entry, as the HTTP headers (read.not_modified)."""
    return read_i.not_modified(version, e.if_none_match, e.if_modified_since)
