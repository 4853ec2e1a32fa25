"""private_key_jwt client authentication: a signed JWT assertion instead of a secret.

RFC 7523 section 3 (JWT bearer client authentication, with RFC 7521), as profiled by SMART
Backend Services ("Authenticating to the Token endpoint") and App Launch 2.2 "Client
Authentication: Asymmetric": header alg RS384 or ES384 (never none or HS*), kid and the alg's kty
selecting exactly one of the client's registered public keys (inline JWKS or the registered
jwks_uri; a jku header must equal that URL, and no other URL is ever fetched), iss = sub =
client_id, aud = the token endpoint URL, exp a finite number in the future and at most five minutes
ahead, jti never seen before for that iss (kept until exp). Any failure is invalid_client.
"""
from __future__ import annotations

import math
import threading
import time

import requests
from authlib.oauth2.rfc6749.errors import InvalidClientError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from .. import jsonio
from ..errors import BadRequest
from . import jose_peek

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384"]
MAX_AHEAD_S = 300
JTI_KIND = "assertion-jti"
FETCH_TIMEOUT_S = 5
MAX_JWKS_BYTES = 64 * 1024
CACHE_S = 60           # keep a fetched JWKS this long
REFETCH_AFTER_S = 5    # an unknown kid refetches a cached JWKS older than this (key rotation)

_KEY_CLASSES = {"RSA": RSAKey, "EC": ECKey}

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


def _invalid(description: str) -> InvalidClientError:
    return InvalidClientError(description=description, status_code=401)


def verify(store, clients, assertion: str, token_url: str):
    """The authenticated Client, or InvalidClientError (401)."""
    if not isinstance(assertion, str) or not assertion or len(assertion) > 16 * 1024:
        raise _invalid("Missing or oversized client_assertion")
    try:
        header = jws.extract_compact(assertion.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise _invalid("The client_assertion is not a compact JWS") from None
    if header.get("alg") not in ALGORITHMS:
        raise _invalid("The client_assertion must be signed with RS384 or ES384")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("The client_assertion header needs a kid")
    client_id = _unverified_issuer(assertion)
    client = clients.get(client_id) if client_id else None
    if client is None or client.disabled or client.type != "confidential-asymmetric":
        raise _invalid("Unknown client, or not registered for private_key_jwt")
    jku = header.get("jku")
    if jku is not None and (not client.jwks_uri or jku != client.jwks_uri):
        raise _invalid("The jku header does not match the client's registered JWKS URL")
    key = _client_key(client, kid, header["alg"])
    try:
        token = jwt.decode(assertion, key, algorithms=[header["alg"]])
    except (JoseError, ValueError, TypeError):
        raise _invalid("The client_assertion signature does not verify") from None
    claims = token.claims
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise _invalid("The client_assertion iss and sub must both be the client_id")
    aud = claims.get("aud")
    if not (aud == token_url or (isinstance(aud, list) and token_url in aud)):
        raise _invalid("The client_assertion aud must be the token endpoint URL")
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or not math.isfinite(exp) or exp <= now:
        raise _invalid("The client_assertion has no exp or has expired")
    if exp > now + MAX_AHEAD_S:
        raise _invalid("The client_assertion exp is more than five minutes ahead")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > now + 5:
        raise _invalid("The client_assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _invalid("The client_assertion needs a jti")
    if not store.add_record(JTI_KIND, f"{client.client_id}:{jti}", {"exp": exp}, expires_at=float(exp)):
        raise _invalid("The client_assertion jti has been used before")
    return client


def _unverified_issuer(assertion: str) -> str | None:
    """The iss claim read before verification, only to find whose keys to verify with."""
    iss = (jose_peek.segment(assertion, jose_peek.PAYLOAD) or {}).get("iss")
    return iss if isinstance(iss, str) and 0 < len(iss) <= 256 else None


def _client_key(client, kid: str, alg: str):
    if client.jwks is not None:
        key = _pick(client.jwks, kid, alg)
    else:
        key = _pick(_jwks_from_uri(client.jwks_uri), kid, alg)
        if key is None and _age(client.jwks_uri) > REFETCH_AFTER_S:
            key = _pick(_jwks_from_uri(client.jwks_uri, refresh=True), kid, alg)
    if key is None:
        raise _invalid("No key, or more than one, of the client matches the client_assertion kid and alg")
    return key


def _pick(jwks: dict, kid: str, alg: str):
    """The one key of the set whose kid is the header's and whose kty fits the alg (App Launch 2.2
    "client-confidential-asymmetric", signature verification step 3: RSA for RS384, EC for ES384;
    no such key, or more than one, fails). Other keys of the set (another kty, malformed) are not
    looked at."""
    kty = "RSA" if alg.startswith("RS") else "EC"
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    found = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid and k.get("kty") == kty] \
        if isinstance(keys, list) else []
    if len(found) != 1:
        return None
    try:
        return _KEY_CLASSES[kty].import_key(found[0])
    except (JoseError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _age(url: str) -> float:
    entry = _cache.get(url)
    return time.time() - entry[0] if entry else float("inf")


def _jwks_from_uri(url: str, refresh: bool = False) -> dict:
    with _lock:
        entry = _cache.get(url)
        if entry and not refresh and time.time() - entry[0] < CACHE_S:
            return entry[1]
    try:
        jwks = fetch_jwks(url)
    except (requests.RequestException, ValueError) as e:
        raise _invalid(f"The client's JWKS could not be fetched ({e.__class__.__name__})") from None
    with _lock:
        _cache[url] = (time.time(), jwks)
    return jwks


def fetch_jwks(url: str) -> dict:
    """GET the registered JWKS URL (no redirects, 5 s, 64 KiB at most); ValueError if it is not a JWKS."""
    with requests.get(url, timeout=FETCH_TIMEOUT_S, allow_redirects=False, stream=True,
                      headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        body = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS too large")
    try:
        jwks = jsonio.loads(body, max_depth=jose_peek.MAX_DEPTH)    # a deep body: refused, not a RecursionError
    except BadRequest as e:
        raise ValueError(str(e)) from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWK Set")
    return jwks


def clear_cache() -> None:
    with _lock:
        _cache.clear()
