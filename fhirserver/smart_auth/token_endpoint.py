"""The token endpoint, POST /auth/token (RFC 6749 section 3.2; SMART App Launch 2.2 "Obtain access
token", "Refresh access token"; SMART Backend Services "Obtaining an access token").

Client authentication (RFC 6749 2.3, App Launch 2.2 "Client Authentication"): public clients send
client_id only (or, for a refresh, nothing: the refresh token names its public client);
confidential-symmetric ones HTTP Basic or client_secret_post; confidential-asymmetric ones a
private_key_jwt assertion (RFC 7523, client_assertion.py). Grants: authorization_code (with PKCE
S256, RFC 7636 4.6), refresh_token (refresh.py) and client_credentials (Backend Services: system/
scopes, 5-minute tokens, no refresh token).
Responses are JSON with Cache-Control: no-store and Pragma: no-cache (RFC 6749 5.1); errors
follow RFC 6749 5.2.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Response, request

from ..errors import Unauthorized
from ..governance import proxy
from ..resources import ctx
from . import auth_audit, client_assertion, refresh, standing, tokens
from .clients import Clients
from .discovery import endpoints
from .keys import SigningKeys
from .scopes import ScopeError, parse_scope

CODE_KIND = "code"
USED_CODE_KIND = "code-used"       # redeemed codes: a second use revokes what the first one got
BACKEND_LIFETIME_S = 300
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


# ---- responses ---------------------------------------------------------------------------------

def json_response(body: dict, status: int = 200, headers: list | dict | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    for name, value in (headers.items() if isinstance(headers, dict) else headers or []):
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def error_response(error: OAuth2Error) -> Response:
    """RFC 6749 5.2: {error, error_description}; 401 + WWW-Authenticate for invalid_client, a Basic
    challenge with its realm (RFC 7617 2: realm is required)."""
    status = error.status_code or 400
    headers = [(k, v) for k, v in error.get_headers() if k.lower() not in ("content-type", "cache-control",
                                                                           "pragma", "www-authenticate")]
    if isinstance(error, InvalidClientError) and status == 401:
        headers.append(("WWW-Authenticate", 'Basic realm="token", error="invalid_client"'))
    return json_response(dict(error.get_body()), status, headers)


def invalid_client(description: str) -> InvalidClientError:
    return InvalidClientError(description=description, status_code=401)


# ---- client authentication ---------------------------------------------------------------------

def form_params() -> dict[str, str]:
    """The single-valued form parameters; a repeated one is invalid_request (RFC 6749 3.2)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise InvalidRequestError(description="The body must be application/x-www-form-urlencoded")
    params = {}
    for name, values in request.form.lists():
        if len(values) > 1:
            raise InvalidRequestError(description=f"Parameter {name[:40]} is repeated")
        params[name] = values[0]
    return params


def authenticate_client(c, params: dict[str, str]):
    """The calling client, authenticated by exactly one method, or InvalidClientError."""
    clients = Clients(c.store)
    basic = basic_credentials(request.headers.get("Authorization"))
    has_assertion = "client_assertion" in params or "client_assertion_type" in params
    has_secret = "client_secret" in params
    if sum((basic is not None, has_assertion, has_secret)) > 1:
        raise InvalidRequestError(description="Use exactly one client authentication method")
    if has_assertion:
        if params.get("client_assertion_type") != client_assertion.ASSERTION_TYPE:
            # an unknown assertion type is a malformed request: 400 (RFC 6749 5.2 leaves 401 optional
            # when no Authorization header was used; Inferno's Backend Services tests require 400)
            raise InvalidClientError(description="client_assertion_type must be " + client_assertion.ASSERTION_TYPE,
                                     status_code=400)
        client = client_assertion.verify(c.store, clients, params.get("client_assertion", ""),
                                         endpoints(c.base)["token"])
        if params.get("client_id") not in (None, client.client_id):
            raise invalid_client("client_id does not match the client_assertion")
        return client
    if basic is not None or has_secret:
        client_id, secret = basic if basic is not None else (params.get("client_id", ""), params["client_secret"])
        if basic is not None and params.get("client_id") not in (None, client_id):
            raise invalid_client("client_id does not match the Authorization header")
        client = _client(clients, client_id)
        if client is None or client.type != "confidential-symmetric" or not clients.check_secret(client, secret):
            raise invalid_client("Client authentication failed")
        return client
    client = _client(clients, params.get("client_id", ""))
    if client is None:
        raise invalid_client("Client authentication failed")
    if client.type != "public":
        raise invalid_client("This client must authenticate (client secret or client_assertion)")
    return client


def _names_client(params: dict[str, str]) -> bool:
    """Whether the request identifies or authenticates a client by itself (RFC 6749 2.3)."""
    return (request.headers.get("Authorization") is not None
            or any(name in params for name in ("client_id", "client_secret", "client_assertion",
                                               "client_assertion_type")))


def refresh_client(c, params: dict[str, str]):
    """The client of a refresh request that names none (SMART App Launch 2.2 "Refresh access token"
    lists only grant_type, refresh_token and scope; the SMART JS library sends no client_id): the
    public client the refresh token was issued to. A confidential client must still authenticate."""
    client = _client(Clients(c.store), refresh.client_of(c.store, c.settings, params.get("refresh_token", "")))
    if client is None:
        raise InvalidGrantError(description="The refresh token is invalid, expired or revoked")
    if client.type != "public":
        raise invalid_client("This client must authenticate (client secret or client_assertion)")
    return client


def _client(clients, client_id: str):
    if not client_id or len(client_id) > 256:
        return None
    client = clients.get(client_id)
    return None if client is None or client.disabled else client


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, secret) of an HTTP Basic Authorization header (RFC 6749 2.3.1), None for another
    scheme; invalid_client when malformed."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:          # not base64 (binascii.Error), not ASCII (a header byte >= 0x80), not UTF-8
        raise invalid_client("Malformed HTTP Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("Malformed HTTP Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)      # RFC 6749 2.3.1: form-encoded first


# ---- the endpoint ------------------------------------------------------------------------------

def token_view():
    """POST /auth/token."""
    c = ctx()
    params = client = None
    try:
        params = form_params()
        grant_type = params.get("grant_type")
        if grant_type == "refresh_token" and not _names_client(params):
            client = refresh_client(c, params)
        else:
            client = authenticate_client(c, params)
        if grant_type == "authorization_code":
            body = _authorization_code(c, client, params)
        elif grant_type == "refresh_token":
            body = _refresh_token(c, client, params)
        elif grant_type == "client_credentials":
            body = _client_credentials(c, client, params)
        elif not grant_type:
            raise InvalidRequestError(description="grant_type is required")
        else:
            raise UnsupportedGrantTypeError(re.sub(r"[^A-Za-z0-9_:.\-]", "?", grant_type)[:80])
    except OAuth2Error as e:
        auth_audit.token_failed(e, params, client)
        return error_response(e)
    return json_response(body)


def _authorization_code(c, client, params):
    code = params.get("code", "")
    if not code or len(code) > 256:
        raise InvalidRequestError(description="code is required")
    key = hashlib.sha256(code.encode()).hexdigest()
    record = c.store.take_record(CODE_KIND, key)
    if record is None:
        used = c.store.get_record(USED_CODE_KIND, key)
        if used is not None:          # RFC 6749 4.1.2: a reused code revokes the tokens it gave
            tokens.revoke_grant(c.store, used["grant"], c.settings.refresh_token_lifetime)
            auth_audit.replayed("authorization code", used["grant"])
        raise InvalidGrantError(description="The authorization code is invalid, expired or used")
    c.store.put_record(USED_CODE_KIND, key, {"grant": record["grant"]}, expires_at=record["expires_at"] + 600)
    if record["client_id"] != client.client_id:
        raise InvalidGrantError(description="The authorization code was issued to another client")
    if params.get("redirect_uri") != record["redirect_uri"]:
        raise InvalidGrantError(description="redirect_uri does not match the authorization request")
    verifier = params.get("code_verifier", "")
    if not _VERIFIER.fullmatch(verifier):      # RFC 7636 4.1: 43-128 unreserved characters
        raise InvalidGrantError(description="code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")
    if not hmac.compare_digest(create_s256_code_challenge(verifier).encode(),
                                                       record["code_challenge"].encode()):
        raise InvalidGrantError(description="code_verifier is missing or does not match the code_challenge")
    try:          # the user may have been disabled since consenting (the same check as for tokens)
        standing.check(c.store, client.client_id, record.get("username"))
    except Unauthorized:
        raise InvalidGrantError(description="The authorization code is invalid, expired or used") from None
    context = {k: record.get(k) for k in CONTEXT_FIELDS}
    check_delegation(c, context)
    refresh_token = None
    kind = refresh.wanted(record["scope"])
    if kind:
        refresh_token = refresh.issue(c.store, c.settings, client_id=client.client_id,
                                      username=record["username"], scope=record["scope"], context=context,
                                      grant=record["grant"], offline=kind == "offline",
                                      session_id=record.get("session_id"),
                                      session_expires=record.get("session_expires"))
    return user_token_response(c, client, record["scope"], context, record["grant"], refresh_token,
                               nonce=record.get("nonce"))


def _refresh_token(c, client, params):
    record, scope = refresh.redeem(c.store, c.settings, params.get("refresh_token", ""), client.client_id,
                                   params.get("scope"))
    offline = record["offline"]
    check_delegation(c, record["context"])
    new_refresh = refresh.issue(c.store, c.settings, client_id=client.client_id, username=record["username"],
                                scope=record["scope"], context=record["context"], grant=record["grant"],
                                offline=offline, session_id=record.get("session_id"),
                                session_expires=None if offline else record["expires_at"])
    return user_token_response(c, client, scope, record["context"], record["grant"], new_refresh)


def _client_credentials(c, client, params):
    if client.type == "public":
        raise UnauthorizedClientError(description="client_credentials is for confidential clients only")
    granted = []
    for raw in (params.get("scope") or "").split():
        try:
            scope = parse_scope(raw)
        except ScopeError:
            raise InvalidScopeError(description="Malformed scope") from None
        if scope is not None and scope.context == "system" and client.permits(raw) and raw not in granted:
            granted.append(raw)
    if not granted:
        raise InvalidScopeError(description="No requested system/ scope is permitted for this client")
    scope = " ".join(granted)
    lifetime = min(BACKEND_LIFETIME_S, c.settings.access_token_lifetime)
    access, claims = tokens.issue(SigningKeys(c.store), c.base, c.base, client.client_id, client.client_id, scope,
                                  lifetime_s=lifetime, grant=secrets.token_urlsafe(16),
                                  organization=client.organization)    # the hospital it acts for
    auth_audit.token_issued(claims)
    return {"access_token": access, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}


def check_delegation(c, context: dict) -> None:
    """A family proxy's code or refresh token gives tokens only while the patient's delegation is live
    (governance/proxy.py; the FHIR API checks it again on every request)."""
    if context.get("role") != proxy.ROLE or not context.get("patient"):
        return
    if proxy.live_delegation(c.store, proxy.related_person_of(context.get("fhir_user")), context["patient"]) is None:
        raise InvalidGrantError(description="The patient's delegation to this user is no longer active")


# the launch context a code (and its refresh tokens) carries
CONTEXT_FIELDS = ("username", "fhir_user", "role", "organization", "patient", "encounter", "fhirContext",
                  "need_patient_banner")


def user_token_response(c, client, scope: str, context: dict, grant: str, refresh_token: str | None,
                        nonce: str | None = None) -> dict:
    """Access token (+ refresh token, id_token) and the SMART launch context (App Launch 2.2)."""
    keys = SigningKeys(c.store)
    lifetime = min(c.settings.access_token_lifetime, tokens.MAX_LIFETIME_S)
    username = context.get("username")
    access, claims = tokens.issue(
        keys, c.base, c.base, username or client.client_id, client.client_id, scope, lifetime_s=lifetime,
        grant=grant, fhirUser=context.get("fhir_user"), role=context.get("role"), patient=context.get("patient"),
        organization=context.get("organization") or client.organization,
        encounter=context.get("encounter"), fhirContext=context.get("fhirContext") or None)
    auth_audit.token_issued(claims, refresh_token=bool(refresh_token))
    body = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}
    if refresh_token:
        body["refresh_token"] = refresh_token
    granted = scope.split()
    if "openid" in granted and username:
        fhir_user = context.get("fhir_user")
        body["id_token"] = tokens.issue_id_token(
            keys, c.base, client.client_id, username,
            fhir_user=f"{c.base}/{fhir_user}" if fhir_user and ("fhirUser" in granted or "profile" in granted)
            else None, nonce=nonce, lifetime_s=lifetime)
    for name in ("patient", "encounter", "fhirContext"):
        if context.get(name):
            body[name] = context[name]
    body["need_patient_banner"] = bool(context.get("need_patient_banner"))
    body["smart_style_url"] = endpoints(c.base)["style"]
    return body
