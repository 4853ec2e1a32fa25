"""The authorization server's HTTP routes: one plain Flask blueprint.

/fhir/.well-known/smart-configuration and openid-configuration (discovery.py), and under /auth:
authorize, consent, login, logout (authorize.py, sessions.py), token (token_endpoint.py),
introspect (introspection.py), revoke (revocation.py), launch (launch.py), jwks (keys.py) and
smart-style.json. Discovery, token, jwks, introspect, revoke and the style allow cross-origin calls
from browser apps (App Launch 2.2 "Conformance"; none of them uses cookies); the HTML pages and
/auth/launch do not.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response

from ..resources import ctx
from . import authorize, discovery, introspection, launch, revocation, sessions, token_endpoint
from .keys import SigningKeys

bp = Blueprint("smart_auth", __name__)


def _json(body: dict, cache: str = "no-cache") -> Response:
    return Response(json.dumps(body), content_type="application/json", headers={"Cache-Control": cache})


@bp.route("/fhir/.well-known/smart-configuration", methods=["GET"])
def smart_configuration():
    return _json(discovery.smart_configuration(ctx().base))


@bp.route("/fhir/.well-known/openid-configuration", methods=["GET"])
def openid_configuration():
    return _json(discovery.openid_configuration(ctx().base))


@bp.route("/auth/jwks", methods=["GET"])
def jwks():
    keys = SigningKeys(ctx().store)
    keys.active()            # a fresh server publishes its first key before signing anything
    return _json(keys.jwks())


@bp.route("/auth/smart-style.json", methods=["GET"])
def smart_style():
    return _json(discovery.SMART_STYLE, cache="max-age=3600")


bp.add_url_rule("/auth/authorize", "authorize", authorize.authorize_view, methods=["GET", "POST"])
bp.add_url_rule("/auth/consent", "consent", authorize.consent_view, methods=["GET", "POST"])
bp.add_url_rule("/auth/login", "login", sessions.login_view, methods=["GET", "POST"])
bp.add_url_rule("/auth/logout", "logout", sessions.logout_view, methods=["GET", "POST"])
bp.add_url_rule("/auth/token", "token", token_endpoint.token_view, methods=["POST"])
bp.add_url_rule("/auth/introspect", "introspect", introspection.introspect_view, methods=["POST"])
bp.add_url_rule("/auth/revoke", "revoke", revocation.revoke_view, methods=["POST"])
bp.add_url_rule("/auth/launch", "launch", launch.launch_view, methods=["POST"])


def install(app) -> None:
    app.register_blueprint(bp)
