"""Content negotiation, request bodies and the Prefer header (http://hl7.org/fhir/R4/http.html#mime-type)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app, g, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from .. import jsonio
from ..errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_TYPES = (FHIR_JSON, "application/json")
XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml")
JSON_PATCH = "application/json-patch+json"
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii"})      # ASCII is UTF-8
_FORMAT_ALIASES = {"json": FHIR_JSON, "application/json": "application/json", FHIR_JSON: FHIR_JSON,
                   "xml": "xml", "text/xml": "xml", "application/xml": "xml", "application/fhir+xml": "xml",
                   "html": "html", "text/html": "html", "ttl": "ttl", "text/turtle": "ttl"}


def response_type(allow_raw: bool = False) -> str | None:
    """The JSON media type to answer with; None means raw content (Binary only).

    _format overrides Accept (http.html#mime-type). XML and other formats -> 406."""
    req = request._get_current_object()     # one context lookup, not one per attribute
    fmt = req.args.get("_format") if req.query_string else None
    if fmt is not None:
        chosen = _FORMAT_ALIASES.get(fmt.split(";")[0].strip())
        if chosen in JSON_TYPES:
            return chosen
        raise NotAcceptable(f"_format={fmt} is not supported: this server speaks FHIR JSON only")
    accept = req.environ.get("HTTP_ACCEPT")      # request.headers.get("Accept"), without its KeyError
    if not accept:
        return None if allow_raw else FHIR_JSON
    key = (accept, allow_raw)
    chosen = _CHOSEN.get(key, _UNKNOWN)
    if chosen is _UNKNOWN:
        chosen = _for_accept(accept, allow_raw)     # raises 406 (not remembered) when nothing fits
        if len(_CHOSEN) >= 512:
            _CHOSEN.clear()
        _CHOSEN[key] = chosen
    return chosen


def wants_html() -> bool:
    """_format=html, or an Accept that prefers text/html to FHIR JSON (a browser): for the operations
    that render a page (operations.Operation.page); anything else negotiates as response_type does."""
    fmt = request.args.get("_format") if request.query_string else None
    if fmt is not None:
        return _FORMAT_ALIASES.get(fmt.split(";")[0].strip()) == "html"
    accept = request.headers.get("Accept")
    if not accept:
        return False
    offered = parse_accept_header(accept, MIMEAccept)
    return offered.quality("text/html") > max(offered.quality(t) for t in JSON_TYPES)


# Clients send the same few Accept headers over and over; what one of them chooses depends on the
# header's text alone, so each is parsed once per process (issue 16).
_CHOSEN: dict[tuple[str, bool], str | None] = {}
_UNKNOWN = object()


def _for_accept(accept: str, allow_raw: bool) -> str | None:
    """An offer whose fhirVersion parameter names another FHIR version (versioning.html#mt-version) is one
    this R4 server cannot answer: it is left out (406 when nothing else fits)."""
    parsed = [(value, q) for value, q in parse_accept_header(accept, MIMEAccept) if q > 0]
    offered = {value.split(";")[0].strip().lower(): q for value, q in parsed if not other_version(value)}
    wanted = [t for t in JSON_TYPES if t in offered]
    if wanted:
        return max(wanted, key=lambda t: offered[t])
    if allow_raw:
        return None
    if "*/*" in offered or "application/*" in offered:
        return FHIR_JSON
    if any(t in offered for t in XML_TYPES):
        raise NotAcceptable("FHIR XML is not supported: ask for application/fhir+json")
    if any(other_version(value) for value, _ in parsed):
        raise NotAcceptable(f"This server speaks FHIR R4 (fhirVersion=4.0) only, not: {accept}")
    raise NotAcceptable(f"Cannot answer with any of: {accept}; use application/fhir+json")


_FHIR_VERSION = re.compile(r";\s*fhirversion\s*=\s*\"?([^;\"\s]*)", re.IGNORECASE)


def other_version(media_type: str) -> bool:
    """The media type's fhirVersion parameter names a version other than R4 (4.0, 4.0.x)."""
    m = _FHIR_VERSION.search(media_type)
    return m is not None and m.group(1) != "4.0" and not m.group(1).startswith("4.0.")


def request_media_type() -> str:
    return (request.mimetype or "").lower()


def is_json_body() -> bool:
    return request_media_type() in ("",) + JSON_TYPES


def read_body(limit: int | None = None) -> bytes:
    """The request body, refused with 413 past the configured limit without reading it all. Kept for
    the request, so that a request run again after a transient store conflict (resources/retry.py)
    reads the same body."""
    if g.get("medport_body") is not None:
        return g.medport_body
    limit = limit or current_app.config["MEDPORT"].settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body of {request.content_length} bytes exceeds the limit of {limit}")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    g.medport_body = data
    return data


def json_body(allowed=JSON_TYPES):
    """Parse a FHIR JSON body (415 for XML or other types, or a charset other than UTF-8; 400 if malformed
    or too deep)."""
    mt = request_media_type()
    if mt and mt not in allowed:
        if mt in XML_TYPES:
            raise UnsupportedMediaType("FHIR XML is not supported: send application/fhir+json")
        raise UnsupportedMediaType(f"Content-Type {mt} is not supported here; use {allowed[0]}")
    params = {k.lower(): v for k, v in request.mimetype_params.items()} if mt else {}
    version = params.get("fhirversion")
    if version is not None and other_version(f";fhirVersion={version}"):
        raise UnsupportedMediaType(f"Content-Type fhirVersion={version}: this server takes FHIR R4 (4.0) only "
                                   "(http://hl7.org/fhir/R4/versioning.html#mt-version)")
    charset = params.get("charset")
    if charset is not None and charset.strip().lower() not in _UTF8:
        raise UnsupportedMediaType(f"Content-Type charset {charset} is not supported: FHIR bodies are UTF-8 "
                                   "(http://hl7.org/fhir/R4/http.html#mime-type); send charset=utf-8")
    settings = current_app.config["MEDPORT"].settings
    return jsonio.loads(read_body(settings.max_body_bytes), settings.max_json_depth)


def patch_document():
    """A PATCH body (http.html#patch): a JSON Patch (application/json-patch+json) or a FHIRPath Patch, a
    Parameters resource sent as FHIR JSON (fhirpatch.html); any other type is a 415."""
    content_type = request_media_type()
    if content_type == JSON_PATCH:
        return json_body(allowed=(JSON_PATCH,))
    if content_type in JSON_TYPES:
        operations = json_body()
        if not (isinstance(operations, dict) and operations.get("resourceType") == "Parameters"):
            raise BadRequest("A PATCH with FHIR JSON takes a FHIRPath Patch: a Parameters resource "
                             "(http://hl7.org/fhir/R4/fhirpatch.html)")
        return operations
    raise UnsupportedMediaType(f"PATCH takes a JSON Patch (Content-Type {JSON_PATCH}) or a FHIRPath Patch "
                               f"(a Parameters resource, Content-Type {FHIR_JSON}), not "
                               f"{content_type or 'a body without Content-Type'}")


@dataclass(frozen=True)
class Prefer:
    """The Prefer header (http.html#ops, search.html#errors)."""
    ret: str = "representation"       # minimal | representation | OperationOutcome
    strict: bool = False              # handling=strict: unknown search parameters are a 400
    asked_lenient: bool = False       # handling=lenient said outright (a bulk export is strict without it)

    @property
    def lenient(self) -> bool:
        """Unknown search parameters are ignored (the default, search.html#errors)."""
        return not self.strict


def prefer() -> Prefer:
    ret, strict, lenient = "representation", False, False
    for part in request.headers.get("Prefer", "").replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        value = value.strip().strip('"')
        if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
            ret = value
        elif key.strip().lower() == "handling":
            strict, lenient = value == "strict", value.lower() == "lenient"
    return Prefer(ret, strict, lenient)


def pretty() -> bool:
    req = request._get_current_object()     # one context lookup, not one per attribute
    return bool(req.query_string) and req.args.get("_pretty", "false").lower() == "true"
