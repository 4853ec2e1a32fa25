"""Request ids and one structured (JSON) access-log line per request.

Query strings are not logged: they carry patient identifiers. Only the
parameter names are, which is enough to see what kind of query was made.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import g, request

log = logging.getLogger("medport.access")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def install(app) -> None:
    @app.before_request
    def _start():
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if _CLIENT_ID.match(supplied) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        rid = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Request-Id"] = rid
        started = getattr(g, "started", None)
        claims = getattr(g, "token_claims", None) or {}
        log.info(json.dumps({
            "request_id": rid,
            "method": request.method,
            "path": request.path,
            "params": sorted(set(request.args.keys())),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "bytes": response.content_length,
            "remote": request.remote_addr,
            "client_id": claims.get("client_id"),      # who acted (SMART token), for the audit trail
            "user": claims.get("sub"),
            "patient": claims.get("patient"),
        }, separators=(",", ":")))
        return response
