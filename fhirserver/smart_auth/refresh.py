"""Refresh tokens (RFC 6749 sections 1.5 and 6; SMART App Launch 2.2 "Refresh access token").

Opaque random strings; the store keeps only their SHA-256 (records of kind "refresh"), with the
client, the user, the originally granted scope, the launch context, the grant id and whether the
grant is offline. Issued only when offline_access (lifetime refresh_token_lifetime, renewed on
each use) or online_access (ends with the user's login session, SMART App Launch 2.2 "Scopes for
requesting a refresh token") was granted. Rotation: each
use takes the old token (single use) and issues a new one with the same scope (RFC 6749 6);
the requested scope may only narrow the original one, judged by meaning (scopes.within: a v1
`.read` is `.rs`, `patient/Patient.rs` is inside `patient/*.rs`, a granular query only narrows).

SMART App Launch 2.2 lists only grant_type, refresh_token and scope for a refresh request, and
public apps (the SMART JS library among them) send no client_id: the token endpoint then takes the
client from the refresh token (client_of), for public clients only.
"""
from __future__ import annotations

import hashlib
import secrets
import time

from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidScopeError

from ..errors import Unauthorized
from . import auth_audit, standing, tokens
from .scopes import within
from .sessions import KIND as SESSION_KIND

KIND = "refresh"
USED_KIND = "refresh-used"      # rotated-away tokens: presenting one again revokes the grant


def wanted(scope: str) -> str | None:
    """'offline' or 'online' if the granted scope asks for a refresh token, else None."""
    parts = scope.split()
    if "offline_access" in parts:
        return "offline"
    if "online_access" in parts:
        return "online"
    return None


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(store, settings, *, client_id: str, username: str | None, scope: str, context: dict, grant: str,
          offline: bool, session_id: str | None = None, session_expires: float | None = None) -> str:
    """A new refresh token. An online one lives only as long as the login session session_id."""
    now = time.time()
    if offline:
        expires_at = now + settings.refresh_token_lifetime
    else:
        expires_at = session_expires if session_expires else now + settings.session_lifetime
        expires_at = min(expires_at, now + settings.session_lifetime)
    token = secrets.token_urlsafe(32)
    store.put_record(KIND, _key(token), {
        "client_id": client_id, "username": username, "scope": scope, "context": context, "grant": grant,
        "offline": offline, "session_id": None if offline else session_id, "expires_at": expires_at},
        expires_at=expires_at)
    return token


def find(store, token) -> dict | None:
    """The live record of a refresh token (not expired, grant not revoked, its client and user not
    disabled: standing.py, the same check as for access tokens), or None."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    record = store.get_record(KIND, _key(token))
    if record is None or tokens.grant_revoked(store, record.get("grant")):
        return None
    if record.get("session_id") and store.get_record(SESSION_KIND, record["session_id"]) is None:
        return None          # online_access: the user has signed out, or the session expired
    try:
        standing.check(store, record.get("client_id"), record.get("username"))
    except Unauthorized:
        return None
    return record


def client_of(store, settings, token) -> str:
    """The client a live refresh token was issued to (a request that names no client), or
    InvalidGrantError; a rotated-away token presented again revokes its grant, as in redeem."""
    record = find(store, token)
    if record is None:
        _replayed(store, settings, token)
        raise InvalidGrantError(description="The refresh token is invalid, expired or revoked")
    return record["client_id"]


def redeem(store, settings, token, client_id: str, requested_scope: str | None) -> tuple[dict, str]:
    """Use a refresh token once: (its record, the scope of the new access token).
    InvalidGrantError if unknown, expired, revoked, already used or another client's;
    InvalidScopeError if the requested scope is not within the original one (by meaning)."""
    record = find(store, token)
    if record is None:
        _replayed(store, settings, token)
    if record is None or record["client_id"] != client_id:
        raise InvalidGrantError(description="The refresh token is invalid, expired or revoked")
    original = record["scope"].split()
    scope = record["scope"]
    if requested_scope is not None and requested_scope.strip():
        asked = requested_scope.split()
        if not within(asked, original):
            raise InvalidScopeError(description="The requested scope exceeds the scope originally granted")
        scope = " ".join(dict.fromkeys(asked))
    if store.take_record(KIND, _key(token)) is None:      # a concurrent use won the race
        _replayed(store, settings, token)
        raise InvalidGrantError(description="The refresh token is invalid, expired or revoked")
    store.put_record(USED_KIND, _key(token), {"grant": record["grant"]}, expires_at=record["expires_at"])
    return record, scope


def _replayed(store, settings, token) -> None:
    """A rotated-away refresh token presented again means it leaked: revoke its whole grant
    (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2)."""
    if isinstance(token, str) and token and len(token) <= 512:
        used = store.get_record(USED_KIND, _key(token))
        if used is not None:
            tokens.revoke_grant(store, used.get("grant"), settings.refresh_token_lifetime)
            auth_audit.replayed("refresh token", used.get("grant"))


def delete(store, token: str) -> None:
    store.delete_record(KIND, _key(token))
