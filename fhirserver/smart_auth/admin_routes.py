"""The admin API: the same account and client management as `medport user|client`, over HTTP.

    GET  /auth/admin/users                  POST /auth/admin/users          (JSON: username, password,
    POST /auth/admin/users/<name>/disable                                     role, fhir_user, organization,
                                                                              break_glass)
    GET  /auth/admin/clients                POST /auth/admin/clients        (JSON: name, type, redirect_uris,
    POST /auth/admin/clients/<id>/disable                                     scopes, jwks, jwks_uri, organization,
                                                                              regulator)

Callers present a bearer access token of an administrator (a user with role admin) that was granted
the `medport/admin` scope: an app an administrator merely signs in to gets no admin rights. Registering a
confidential-symmetric client answers its secret once; it is stored only as a hash.

Bodies are parsed by fhirserver.jsonio (the rules of every client JSON: RFC 8259, no duplicate
names, finite numbers) and each member's JSON type is checked before anything is stored; a body
that breaks either is a 400 OperationOutcome naming the member. A well-typed request the
registry refuses (a taken username, an unknown scope) answers {"error": "invalid_request"}.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from .. import jsonio
from ..errors import BadRequest, Forbidden, Unauthorized
from ..resources.negotiation import read_body
from . import auth_audit, tokens
from .accounts import Users
from .bearer import challenge
from .clients import Clients
from .keys import SigningKeys
from .scopes import ScopeError

blp = Blueprint("smart_admin", __name__, url_prefix="/auth/admin")
ADMIN_SCOPE = "medport/admin"


def install(app) -> None:
    app.register_blueprint(blp)


def _store():
    return current_app.config["MEDPORT"].store


@blp.before_request
def _administrators_only():
    ctx = current_app.config["MEDPORT"]
    base = ctx.settings.base_url
    token = tokens.bearer(request.headers.get("Authorization"))
    if not token:
        raise Unauthorized("The admin API needs an administrator's bearer token", headers=challenge(base))
    try:
        claims = g.medport_admin_claims = tokens.verify(SigningKeys(ctx.store), ctx.store, token, base, base)
    except Unauthorized as e:
        e.headers = challenge(base, "invalid_token")
        raise
    user = Users(ctx.store).active(claims.get("sub"))
    if user is None or user.role != "admin" or claims.get("role") != "admin" \
            or ADMIN_SCOPE not in str(claims.get("scope", "")).split():
        raise Forbidden(f"The admin API needs an administrator's token granted the {ADMIN_SCOPE} scope")


@blp.after_request
def _audit_refused(response):
    """A caller the admin API turned away (no, a bad or a non-administrator's token)."""
    if response.status_code in (401, 403):
        auth_audit.administration("admin-refused", None, f"{request.method} {request.path[:200]}",
                                  response.status_code)
    return response


def _error(message: str, status: int = 400):
    return jsonify({"error": "invalid_request", "error_description": message}), status


MAX_DEPTH = 5                   # the deepest body is a client's jwks: {"keys": [{"x5c": [...]}]}
_TEXT, _OPTIONAL_TEXT, _TEXTS, _OPTIONAL_OBJECT = "a string", "a string or null", "a list of strings", \
    "an object or null"
_FLAG = "a boolean"
USER_FIELDS = {"username": _TEXT, "password": _TEXT, "role": _TEXT, "fhir_user": _OPTIONAL_TEXT,
               "organization": _OPTIONAL_TEXT, "break_glass": _FLAG}
CLIENT_FIELDS = {"name": _TEXT, "type": _TEXT, "redirect_uris": _TEXTS, "scopes": _TEXTS,
                 "jwks": _OPTIONAL_OBJECT, "jwks_uri": _OPTIONAL_TEXT, "organization": _OPTIONAL_TEXT,
                 "regulator": _FLAG}
_FITS = {
    _TEXT: lambda v: isinstance(v, str),
    _OPTIONAL_TEXT: lambda v: v is None or isinstance(v, str),
    _TEXTS: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    _OPTIONAL_OBJECT: lambda v: v is None or isinstance(v, dict),
    _FLAG: lambda v: isinstance(v, bool),
}


def _body(fields: dict) -> dict:
    """The JSON object body, each known member of the JSON type `fields` names (400 otherwise)."""
    body = jsonio.loads(read_body() or b"{}", max_depth=MAX_DEPTH)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    for name, kind in fields.items():
        if name in body and not _FITS[kind](body[name]):
            raise BadRequest(f"'{name}' must be {kind}, not {_json_type(body[name])}", expression=(name,))
    return body


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


@blp.get("/users")
def list_users():
    users = [u.public() for u in Users(_store()).list()]
    auth_audit.administration("users-listed", None, f"{len(users)} users")
    return jsonify(users)


@blp.post("/users")
def add_user():
    b = _body(USER_FIELDS)
    try:
        user = Users(_store()).add(b.get("username", ""), b.get("password", ""), b.get("role", ""),
                                   b.get("fhir_user"), b.get("organization"), break_glass=b.get("break_glass", False))
    except ValueError as e:
        auth_audit.administration("user-create", auth_audit.user_about(b.get("username")), str(e), 400)
        return _error(str(e))
    auth_audit.administration("user-create", auth_audit.user_about(user.username), auth_audit.user_text(user))
    return jsonify(user.public()), 201


@blp.post("/users/<name>/disable")
def disable_user(name):
    done = Users(_store()).disable(name)
    auth_audit.administration("user-disable", auth_audit.user_about(name), None if done else "unknown user",
                              200 if done else 404)
    return (jsonify({"disabled": name}), 200) if done else _error("unknown user", 404)


@blp.get("/clients")
def list_clients():
    clients = [c.public() for c in Clients(_store()).list()]
    auth_audit.administration("clients-listed", None, f"{len(clients)} clients")
    return jsonify(clients)


@blp.post("/clients")
def add_client():
    b = _body(CLIENT_FIELDS)
    try:
        client, secret = Clients(_store()).add(
            b.get("name", ""), b.get("type", ""), b.get("redirect_uris") or (), b.get("scopes") or (),
            b.get("jwks"), b.get("jwks_uri"), b.get("organization"), regulator=b.get("regulator", False))
    except (ValueError, ScopeError, TypeError) as e:
        auth_audit.administration("client-create", None, str(e), 400)
        return _error(str(e))
    auth_audit.administration("client-create", auth_audit.client_about(client.client_id),
                              auth_audit.client_text(client))
    out = client.public()
    if secret:
        out["client_secret"] = secret     # shown once
    return jsonify(out), 201


@blp.post("/clients/<client_id>/disable")
def disable_client(client_id):
    done = Clients(_store()).disable(client_id)
    auth_audit.administration("client-disable", auth_audit.client_about(client_id), None if done else "unknown client",
                              200 if done else 404)
    if done:
        return jsonify({"disabled": client_id}), 200
    return _error("unknown client", 404)
