"""Token revocation, POST /auth/revoke (RFC 7009; SMART App Launch 2.2 "Token revocation").

The client authenticates as at the token endpoint and may revoke only its own tokens. An access
token is revoked by its jti and its grant; a refresh token is deleted and its grant revoked. A
revoked grant stops every access and refresh token of that authorization at once (tokens.verify
and refresh.find check it). Unknown, expired or foreign tokens still get 200 (RFC 7009 2.2).
"""
from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error

from ..errors import Unauthorized
from ..resources import ctx
from . import auth_audit, refresh, tokens
from .keys import SigningKeys
from .token_endpoint import authenticate_client, error_response, form_params, json_response


def revoke(c, client_id: str, token: str, hint: str | None = None) -> bool:
    """Revoke a token of client_id; True if something was revoked."""
    checks = (_refresh, _access) if hint == "refresh_token" else (_access, _refresh)
    return any(check(c, client_id, token) for check in checks)


def _access(c, client_id, token) -> bool:
    try:
        claims = tokens.verify(SigningKeys(c.store), c.store, token, c.base, c.base)
    except Unauthorized:
        return False
    if claims.get("client_id") != client_id:
        return False
    tokens.revoke(c.store, claims)
    tokens.revoke_grant(c.store, claims.get("grant"), c.settings.refresh_token_lifetime)
    auth_audit.revoked(client_id, "access token", claims.get("grant"),
                       claims.get("sub") if claims.get("role") else None, claims.get("patient"), claims.get("jti"))
    return True


def _refresh(c, client_id, token) -> bool:
    record = refresh.find(c.store, token)
    if record is None or record["client_id"] != client_id:
        return False
    refresh.delete(c.store, token)
    tokens.revoke_grant(c.store, record.get("grant"), c.settings.refresh_token_lifetime)
    auth_audit.revoked(client_id, "refresh token", record.get("grant"), record.get("username"),
                       (record.get("context") or {}).get("patient"))
    return True


def revoke_view():
    """POST /auth/revoke."""
    c = ctx()
    params = client = None
    try:
        params = form_params()
        client = authenticate_client(c, params)
        token = params.get("token")
        if not token:
            raise InvalidRequestError(description="token is required")
    except OAuth2Error as e:
        auth_audit.token_failed(e, params, client, endpoint="revocation")
        return error_response(e)
    if len(token) <= 16 * 1024:
        revoke(c, client.client_id, token, params.get("token_type_hint"))
    return json_response({})
