"""Token introspection, POST /auth/introspect (RFC 7662; SMART App Launch 2.2 "Token Introspection").

The caller is a confidential client (authenticated as at the token endpoint) or presents a valid
bearer access token (RFC 7662 2.1). Anything invalid, expired or revoked is {"active": false};
an active access token reports scope, client_id, sub, exp, iat, iss, token_type and the launch
context (patient, encounter, fhirContext, fhirUser as an absolute URL); an active refresh token
reports token_type refresh_token, scope, client_id, sub and exp.
"""
from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from flask import request

from ..errors import Unauthorized
from ..resources import ctx
from . import auth_audit, refresh, tokens
from .keys import SigningKeys
from .token_endpoint import authenticate_client, error_response, form_params, invalid_client, json_response

_CONTEXT = ("patient", "encounter", "fhirContext")


def introspect(c, token: str) -> dict:
    """The RFC 7662 answer for one token."""
    if not isinstance(token, str) or not token or len(token) > 16 * 1024:
        return {"active": False}
    try:
        claims = tokens.verify(SigningKeys(c.store), c.store, token, c.base, c.base)
    except Unauthorized:
        claims = None
    if claims is not None:
        body = {"active": True, "token_type": "Bearer"}
        body.update({k: claims[k] for k in ("scope", "client_id", "sub", "exp", "iat", "iss") if k in claims})
        body.update({k: claims[k] for k in _CONTEXT if claims.get(k)})
        if claims.get("fhirUser"):
            body["fhirUser"] = f"{c.base}/{claims['fhirUser']}"
        return body
    record = refresh.find(c.store, token)
    if record is None:
        return {"active": False}
    return {"active": True, "token_type": "refresh_token", "scope": record["scope"], "client_id": record["client_id"],
            "sub": record.get("username") or record["client_id"], "exp": int(record["expires_at"]), "iss": c.base}


def introspect_view():
    """POST /auth/introspect."""
    c = ctx()
    params, client = None, None
    try:
        params = form_params()
        bearer = tokens.bearer(request.headers.get("Authorization"))
        if bearer is not None:
            try:
                caller = tokens.verify(SigningKeys(c.store), c.store, bearer, c.base, c.base)
            except Unauthorized:
                raise invalid_client("The bearer token of the caller is not valid") from None
            caller_id, caller_user = caller.get("client_id"), caller.get("sub") if caller.get("role") else None
        else:
            client = authenticate_client(c, params)
            if client.type == "public":
                raise invalid_client("Introspection needs a confidential client or a bearer token")
            caller_id, caller_user = client.client_id, None
        if not params.get("token"):
            raise InvalidRequestError(description="token is required")
    except OAuth2Error as e:
        auth_audit.token_failed(e, params, client, endpoint="introspection")
        return error_response(e)
    answer = introspect(c, params["token"])
    auth_audit.introspected(caller_id, caller_user, answer)
    return json_response(answer)
