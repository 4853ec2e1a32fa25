"""The one place where errors become OperationOutcome responses.

An outcome always renders: a diagnostic that quotes hostile input (say a lone surrogate, which UTF-8
cannot carry) is written with that character escaped, never turned into a second, internal error.
"""
from __future__ import annotations

import logging

from flask import g
from werkzeug.exceptions import HTTPException

from .. import jsonio
from ..errors import FhirError, Issue, operation_outcome

log = logging.getLogger("medport.error")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported", 400: "invalid"}


def _outcome_response(outcome: dict, status: int, headers: dict | None = None):
    from flask import Response
    try:
        body = jsonio.dumps(outcome)
    except TypeError:                   # a string UTF-8 cannot encode: escape it
        body = jsonio.dumps(_encodable(outcome))
    return Response(body, status=status, headers=headers, content_type="application/fhir+json; charset=utf-8")


def _encodable(value):
    """`value` with every string made UTF-8 encodable (unencodable characters as \\u escapes, e.g. \\ud800)."""
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def install(app) -> None:
    @app.errorhandler(FhirError)
    def _fhir_error(e: FhirError):
        return _outcome_response(e.outcome(), e.status, e.headers)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        # keep protocol headers such as Content-Range on a 416 (RFC 9110 15.5.17)
        headers = {k: v for k, v in e.get_headers() if k.lower() != "content-type"}
        if e.code == 405 and e.valid_methods:
            headers["Allow"] = ", ".join(e.valid_methods)
        issue = Issue(e.description or e.name, _HTTP_CODES.get(e.code, "processing"))
        return _outcome_response(operation_outcome([issue]), e.code or 500, headers)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        rid = getattr(g, "request_id", "-")
        log.exception("unhandled error (request id %s)", rid)
        issue = Issue(f"Internal server error; quote request id {rid} to the administrator", "exception")
        return _outcome_response(operation_outcome([issue]), 500)
