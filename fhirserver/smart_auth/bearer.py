"""The resource server side: every FHIR request carries a bearer access token (RFC 6750) that
decides what the request may do (SMART App Launch 2.2, "Access token" / "Scopes").

Discovery and the CapabilityStatement stay open (SMART App Launch 2.2 "Conformance"); so do the
API description and the auth server's own endpoints (they authenticate their callers themselves).
The token is checked before the body is read (a forged token costs no parsing).

Every refusal carries a WWW-Authenticate challenge (RFC 6750 3: a request without a token, or whose
token does not enable the access, MUST get one): 401 without a token `Bearer realm=...`, 401 with a
bad one error="invalid_token", 403 error="insufficient_scope" (RFC 6750 3.1), on the FHIR API and
the admin API alike.
"""
from __future__ import annotations

from flask import Flask, g, request

from ..errors import Forbidden, Unauthorized
from ..resources.errorhandlers import _outcome_response
from . import public_directory, tokens
from .access import Access
from .keys import SigningKeys

# answered without a token: these paths exactly, and what is under these folders; any other path needs
# one, so a route added later is closed until it is named here (it would otherwise act unrestricted)
OPEN_PATHS = frozenset({"/fhir/metadata", "/fhir/openapi.json", "/fhir/docs",
                        "/fhir/$verify-health-card"})     # a verifier needs no account (health_cards/routes.py)
OPEN_FOLDERS = ("/fhir/.well-known/", "/fhir/docs/static/")


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_FOLDERS)


def challenge(base: str, error: str | None = None) -> dict[str, str]:
    """The WWW-Authenticate header of a refusal (RFC 6750 3)."""
    return {"WWW-Authenticate": f'Bearer realm="{base}"' + (f', error="{error}"' if error else "")}


def install(app: Flask) -> None:
    ctx = app.config["MEDPORT"]

    @app.errorhandler(Forbidden)
    def _forbidden(e: Forbidden):
        """A 403 of the FHIR API (authorization on) or the admin API: the token lacks the rights."""
        path = request.path
        if path.startswith("/auth/admin/") or (ctx.settings.auth != "off" and path.startswith("/fhir")):
            has_token = tokens.bearer(request.environ.get("HTTP_AUTHORIZATION")) is not None
            e.headers = {**challenge(ctx.settings.base_url, "insufficient_scope" if has_token else None), **e.headers}
        return _outcome_response(e.outcome(), e.status, e.headers)

    if ctx.settings.auth == "off":
        return
    keys = SigningKeys(ctx.store)

    @app.before_request
    def _authenticate():
        req = request._get_current_object()     # one context lookup per use, not one per attribute
        path = req.path
        if not path.startswith("/fhir") or is_open(path) or req.method == "OPTIONS":
            return None
        authorization = req.environ.get("HTTP_AUTHORIZATION")     # headers.get, without its KeyError
        if public_directory.applies(ctx.settings, req.method, path, authorization is not None):
            claims, access = {}, public_directory.access(ctx.settings)
        else:
            claims, access = authenticate(keys, ctx, authorization)
        request_globals = g._get_current_object()
        request_globals.medport_ctx = ctx.acting_as(access)
        request_globals.token_claims = claims
        return None


def authenticate(keys: SigningKeys, ctx, authorization: str | None) -> tuple[dict, Access]:
    """The verified claims of the bearer token of the Authorization header and the rights they give, or 401 with a
    WWW-Authenticate challenge (RFC 6750 3)."""
    base = ctx.settings.base_url
    token = tokens.bearer(authorization)
    if token is None:
        raise Unauthorized("This server needs an OAuth 2 bearer token (SMART on FHIR); "
                           f"see {base}/.well-known/smart-configuration", headers=challenge(base))
    try:
        claims = tokens.verify(keys, ctx.store, token, base, base)     # disabled client or user: refused
        return claims, Access.from_claims(claims, ctx.settings.sharing_default, ctx.store)
    except Unauthorized as e:
        e.headers = challenge(base, "invalid_token")
        raise
