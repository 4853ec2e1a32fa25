"""CORS for browser SMART apps: the FHIR API answers any origin (access rests on bearer tokens,
never on cookies, so no credentials are allowed). SMART App Launch 2.2 "Conformance" asks for
CORS on discovery, the CapabilityStatement and the token endpoint; apps need it on the API too."""
from __future__ import annotations

from flask import request

ALLOW_HEADERS = "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, " \
                "If-Modified-Since, X-Request-Id"
EXPOSE_HEADERS = "Location, Content-Location, ETag, Last-Modified, X-Request-Id, X-Progress, Retry-After"


def install(app) -> None:
    @app.after_request
    def _cors(response):
        if request.path.startswith("/fhir") and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            if request.method == "OPTIONS":     # preflight
                response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, PATCH, DELETE"
                response.headers["Access-Control-Max-Age"] = "600"
        return response
