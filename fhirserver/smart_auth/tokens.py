"""Access and id tokens: JWTs signed with the server's key, checked by the resource server.

Access token claims: iss, sub, aud (the FHIR base URL), client_id, scope, exp, iat, jti, and
when present the SMART context (App Launch 2.2 "Launch context arrives with your access_token"):
patient, encounter, fhirContext, fhirUser, role, and grant (the id shared by every access and
refresh token of one authorization).

Revocation (App Launch 2.2 "Token revocation", RFC 7009): a revoked jti is recorded until the
token would have expired anyway; a revoked grant until its refresh tokens would have expired.
verify() refuses both at once, and refuses a token whose client or user has been disabled
(standing.py: the one check every consumer of a token goes through; seen at once by every
worker on SQLite, within standing.STANDING_TTL_S seconds elsewhere).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

from joserfc import jwt
from joserfc.errors import JoseError

from ..errors import Unauthorized
from . import jose_peek, standing
from .keys import ALG, SigningKeys

REVOKED = "revoked-jti"
REVOKED_GRANT = "revoked-grant"
MAX_LIFETIME_S = 3600          # SMART: access tokens live at most an hour


def issue(keys: SigningKeys, issuer: str, audience: str, subject: str, client_id: str, scope: str,
          lifetime_s: int = 3600, **context) -> tuple[str, dict]:
    """A signed access token and its claims; context claims that are None are left out."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": audience, "client_id": client_id, "scope": scope,
              "iat": now, "exp": now + min(lifetime_s, MAX_LIFETIME_S), "jti": secrets.token_urlsafe(16)}
    claims.update({k: v for k, v in context.items() if v is not None})
    key = keys.active()
    return jwt.encode({"alg": ALG, "kid": key.kid, "typ": "JWT"}, claims, key), claims


def issue_id_token(keys: SigningKeys, issuer: str, client_id: str, subject: str, fhir_user: str | None = None,
                   nonce: str | None = None, lifetime_s: int = 3600) -> str:
    """An OpenID Connect id_token (App Launch 2.2 "Scopes for requesting identity data"): RS256 with
    the signing key's kid; aud is the client; fhirUser an absolute resource URL when given."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": client_id, "iat": now, "exp": now + lifetime_s}
    if fhir_user:
        claims["fhirUser"] = fhir_user
    if nonce:
        claims["nonce"] = nonce
    key = keys.active()
    return jwt.encode({"alg": ALG, "kid": key.kid, "typ": "JWT"}, claims, key)


def verify(keys: SigningKeys, store, token: str, issuer: str, audience: str) -> dict:
    """The token's claims, or Unauthorized (forged, expired, revoked, for another server, or its
    client or user disabled). Expiry, revocation and standing are checked on every call; only the
    signature check is remembered."""
    claims = _signed_claims(keys, token)
    now = time.time()
    if claims.get("iss") != issuer or claims.get("aud") != audience:
        raise Unauthorized("The access token was not issued for this server")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
        raise Unauthorized("The access token has expired")
    revocations = [(REVOKED, str(claims.get("jti")))]
    if claims.get("grant"):
        revocations.append((REVOKED_GRANT, str(claims["grant"])))
    if store.any_record(revocations):
        raise Unauthorized("The access token has been revoked")
    # a user's token carries its role; a backend token (client_credentials) names only its client
    standing.check(store, claims.get("client_id"), claims.get("sub") if claims.get("role") else None)
    return claims


# A token's signature, once verified against a set of published keys, stays verified: a small
# per-process memory of verified tokens spares the RSA check on every request of a session.
_VERIFIED: OrderedDict[tuple, dict] = OrderedDict()
_VERIFIED_MAX = 4096
_verified_lock = threading.Lock()


def _signed_claims(keys: SigningKeys, token: str) -> dict:
    kids, key_set = keys.verifying()
    memo = (kids, token)        # verified against this very set of keys
    with _verified_lock:
        claims = _VERIFIED.get(memo)
    if claims is not None:
        return dict(claims)
    kid = _kid(token)
    if kid is not None and kid not in kids:     # a key this process has not seen yet: read them again
        kids, key_set = keys.verifying(kid)
        memo = (kids, token)
    try:
        claims = jwt.decode(token, key_set, algorithms=[ALG]).claims
    except (JoseError, ValueError, TypeError) as e:
        raise Unauthorized(f"Invalid access token: {e.__class__.__name__}") from None
    with _verified_lock:
        _VERIFIED[memo] = claims
        while len(_VERIFIED) > _VERIFIED_MAX:
            _VERIFIED.popitem(last=False)
    return dict(claims)


def _kid(token: str) -> str | None:
    """The kid of a compact JWS's protected header, or None if it has none or is unreadable (the
    signature check then refuses it)."""
    kid = (jose_peek.segment(token, jose_peek.HEADER) or {}).get("kid")
    return kid if isinstance(kid, str) else None


def revoke(store, claims: dict) -> None:
    """Revoke one access token by its jti."""
    store.put_record(REVOKED, str(claims["jti"]), {"sub": claims.get("sub")}, expires_at=float(claims["exp"]))


def revoke_grant(store, grant: str | None, keep_s: float) -> None:
    """Revoke every access and refresh token of one authorization; remembered for keep_s seconds
    (the longest a token of the grant could still be valid: the refresh token lifetime)."""
    if grant:
        store.put_record(REVOKED_GRANT, str(grant), {"at": time.time()}, expires_at=time.time() + keep_s)


def grant_revoked(store, grant) -> bool:
    return bool(grant) and store.get_record(REVOKED_GRANT, str(grant)) is not None


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750 2.1), else None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
