"""The one place where errors become OperationOutcome responses."""
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
    return Response(jsonio.dumps(outcome), status=status, headers=headers,
                    content_type="application/fhir+json; charset=utf-8")


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
