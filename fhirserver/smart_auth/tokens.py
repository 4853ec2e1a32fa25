"""Access tokens: JWTs signed with the server's key, checked by the resource server.

Claims: iss, sub, aud (the FHIR base URL), client_id, scope, exp, iat, jti, and the SMART launch
context (patient, encounter, fhirUser). Revocation (SMART App Launch 2.2 "Token revocation"):
a revoked jti is recorded until the token would have expired anyway, and verify() refuses it at once.
"""
from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.errors import JoseError

from ..errors import Unauthorized
from .keys import ALG, SigningKeys

REVOKED = "revoked-jti"
MAX_LIFETIME_S = 3600          # SMART: access tokens live at most an hour


def issue(keys: SigningKeys, issuer: str, audience: str, subject: str, client_id: str, scope: str,
          lifetime_s: int = 3600, **context) -> tuple[str, dict]:
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": audience, "client_id": client_id, "scope": scope,
              "iat": now, "exp": now + min(lifetime_s, MAX_LIFETIME_S), "jti": secrets.token_urlsafe(16)}
    claims.update({k: v for k, v in context.items() if v is not None})
    key = keys.active()
    return jwt.encode({"alg": ALG, "kid": key.kid, "typ": "JWT"}, claims, key), claims


def verify(keys: SigningKeys, store, token: str, issuer: str, audience: str) -> dict:
    """The token's claims, or Unauthorized (forged, expired, revoked, for another server)."""
    try:
        decoded = jwt.decode(token, keys.key_set(), algorithms=[ALG])
    except (JoseError, ValueError) as e:
        raise Unauthorized(f"Invalid access token: {e.__class__.__name__}") from None
    claims = decoded.claims
    now = time.time()
    if claims.get("iss") != issuer or claims.get("aud") != audience:
        raise Unauthorized("The access token was not issued for this server")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
        raise Unauthorized("The access token has expired")
    if store.get_record(REVOKED, str(claims.get("jti"))) is not None:
        raise Unauthorized("The access token has been revoked")
    return claims


def revoke(store, claims: dict) -> None:
    store.put_record(REVOKED, str(claims["jti"]), {"sub": claims.get("sub")}, expires_at=float(claims["exp"]))
