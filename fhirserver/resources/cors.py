"""CORS for browser SMART apps: the FHIR API answers any origin (access rests on bearer tokens,
never on cookies, so no credentials are allowed). SMART App Launch 2.2 "Conformance" asks for
CORS on discovery, the CapabilityStatement and the token endpoint; apps need it on the API too.
Applied after every request (request_hooks.py)."""
from __future__ import annotations

from .response_headers import put

ALLOW_HEADERS = "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-None-Exist, " \
                "If-Modified-Since, X-Request-Id"
# what a browser app may read of an answer (Fetch standard: only the CORS-safelisted ones otherwise);
# WWW-Authenticate carries a refusal's RFC 6750 3 challenge (error="insufficient_scope", ...)
EXPOSE_HEADERS = "Location, Content-Location, ETag, Last-Modified, X-Request-Id, X-Progress, Retry-After, " \
                 "Expires, WWW-Authenticate"
AUTH_EXPOSE_HEADERS = "WWW-Authenticate, Retry-After"
# the public JSON endpoints of authorization (discovery, token, keys, introspection, revocation)
AUTH_PATHS = ("/fhir/.well-known/", "/auth/token", "/auth/jwks", "/auth/introspect", "/auth/revoke",
              "/auth/smart-style.json")


def apply(req, headers, names: set) -> None:
    """(After every request: request_hooks.py.) names: the response's lower-case header names."""
    path = req.path
    if path.startswith(AUTH_PATHS):
        put(headers, "Access-Control-Allow-Origin", "*")
        exposed = EXPOSE_HEADERS if path.startswith("/fhir") else AUTH_EXPOSE_HEADERS
        put(headers, "Access-Control-Expose-Headers", exposed)
        if req.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            headers["Access-Control-Max-Age"] = "600"
    elif path.startswith("/fhir") and "access-control-allow-origin" not in names:
        headers.add("Access-Control-Allow-Origin", "*")
        put(headers, "Access-Control-Expose-Headers", EXPOSE_HEADERS)
        if req.method == "OPTIONS":     # preflight
            headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, PATCH, DELETE"
            headers["Access-Control-Max-Age"] = "600"
