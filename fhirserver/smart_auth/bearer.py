"""The resource server side: every FHIR request carries a bearer access token (RFC 6750) that
decides what the request may do (SMART App Launch 2.2, "Access token" / "Scopes").

Discovery and the CapabilityStatement stay open (SMART App Launch 2.2 "Conformance"); so do the
API description and the auth server's own endpoints (they authenticate their callers themselves).
The token is checked before the body is read (a forged token costs no parsing).
"""
from __future__ import annotations

from flask import Flask, g, request

from ..errors import Unauthorized
from . import tokens
from .access import Access
from .keys import SigningKeys

OPEN_PATHS = ("/fhir/metadata", "/fhir/.well-known/", "/fhir/openapi.json", "/fhir/docs",
              "/fhir/$verify-health-card")      # a verifier needs no account (health_cards/routes.py)


def install(app: Flask) -> None:
    ctx = app.config["MEDPORT"]
    if ctx.settings.auth == "off":
        return
    keys = SigningKeys(ctx.store)

    @app.before_request
    def _authenticate():
        path = request.path
        if not path.startswith("/fhir") or path.startswith(OPEN_PATHS) or request.method == "OPTIONS":
            return None
        claims, access = authenticate(keys, ctx)
        g.medport_ctx = ctx.acting_as(access)
        g.token_claims = claims
        return None


def authenticate(keys: SigningKeys, ctx) -> tuple[dict, Access]:
    """The verified claims of the request's bearer token and the rights they give, or 401 with a
    WWW-Authenticate challenge (RFC 6750 3)."""
    base = ctx.settings.base_url
    token = tokens.bearer(request.headers.get("Authorization"))
    if token is None:
        raise Unauthorized("This server needs an OAuth 2 bearer token (SMART on FHIR); "
                           f"see {base}/.well-known/smart-configuration",
                           headers={"WWW-Authenticate": f'Bearer realm="{base}"'})
    try:
        claims = tokens.verify(keys, ctx.store, token, base, base)     # disabled client or user: refused
        return claims, Access.from_claims(claims, ctx.settings.sharing_default, ctx.store)
    except Unauthorized as e:
        e.headers = {"WWW-Authenticate": f'Bearer realm="{base}", error="invalid_token"'}
        raise
