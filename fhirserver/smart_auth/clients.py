"""Registered OAuth clients (apps) and the scopes each may ask for.

Client types follow SMART App Launch 2.2, "Client authentication": public (no secret: PKCE
only), confidential-symmetric (client_secret, stored as its SHA-256; see secret_hash) and
confidential-asymmetric (private_key_jwt: the client's public keys as an inline JWKS or a
jwks_uri; with no redirect URI it is a backend service, SMART Backend Services).
Clients are store records of kind "client" keyed by client_id.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from . import passwords, standing
from .accounts import reference_type
from .scopes import ScopeError, parse_scope

KIND = "client"
CLIENT_TYPES = ("public", "confidential-symmetric", "confidential-asymmetric")
# scopes that are not resource scopes (App Launch 2.2, "Scopes and Launch Context")
OTHER_SCOPES = ("openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
                "offline_access", "online_access", "medport/admin")
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")     # RFC 7518 6.2.2, 6.3.2, 6.4.1
_KEY_CLASSES = {"RSA": RSAKey, "EC": ECKey}
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


@dataclass
class Client:
    client_id: str
    name: str
    type: str                                             # one of CLIENT_TYPES
    redirect_uris: list[str] = field(default_factory=list)   # compared as exact strings
    scopes: list[str] = field(default_factory=list)          # the scopes the client may ask for
    secret_hash: str | None = None                        # confidential-symmetric only
    jwks: dict | None = None                              # confidential-asymmetric: public keys inline
    jwks_uri: str | None = None                           # ... or where to fetch them
    organization: str | None = None                       # "Organization/id" of a hospital backend
    disabled: bool = False
    regulator: bool = False           # a regulator's backend: reads AuditEvent, Provenance, Consent (access.py)

    def public(self) -> dict:
        """JSON view, without the secret hash."""
        view = asdict(self)
        del view["secret_hash"]
        return view

    def permits(self, scope: str) -> bool:
        """Whether the client may be granted `scope`: listed literally, or a resource scope narrower
        than a listed one (same context, type covered, permissions a subset). A listed scope with a
        query permits only itself; non-resource scopes only literally. Does not look at `disabled`."""
        if scope in self.scopes:
            return True
        try:
            wanted = parse_scope(scope)
        except ScopeError:
            return False
        if wanted is None:
            return False
        for raw in self.scopes:
            try:
                allowed = parse_scope(raw)
            except ScopeError:        # registered when the grammar allowed it (a result parameter query)
                continue
            if (allowed is not None and not allowed.query and allowed.context == wanted.context
                    and allowed.resource_type in ("*", wanted.resource_type)
                    and set(wanted.permissions) <= set(allowed.permissions)):
                return True
        return False


class Clients:
    def __init__(self, store):
        self.store = store

    def add(self, name: str, type: str, redirect_uris: Iterable[str] = (), scopes: Iterable[str] = (),
            jwks: dict | None = None, jwks_uri: str | None = None,
            organization: str | None = None, regulator: bool = False) -> tuple[Client, str | None]:
        """Register a client. Returns it and, for a confidential-symmetric client, its secret: the
        only time it is available (only its hash is kept). ValueError says what is wrong."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a client needs a name")
        if type not in CLIENT_TYPES:
            raise ValueError(f"client type {type!r} must be one of {', '.join(CLIENT_TYPES)}")
        uris = list(dict.fromkeys(redirect_uris))
        for uri in uris:
            _check_redirect_uri(uri)
        if not uris and type != "confidential-asymmetric":
            raise ValueError(f"a {type} client needs at least one redirect URI")
        if type == "confidential-asymmetric":
            if (jwks is None) == (jwks_uri is None):
                raise ValueError("a confidential-asymmetric client needs exactly one of jwks and jwks_uri")
            if jwks is not None:
                _check_jwks(jwks)
            else:
                _check_jwks_uri(jwks_uri)
        elif jwks is not None or jwks_uri is not None:
            raise ValueError(f"a {type} client has no keys: jwks and jwks_uri are for confidential-asymmetric")
        scope_list = list(dict.fromkeys(s for item in scopes for s in item.split()))
        for scope in scope_list:
            if parse_scope(scope) is None and scope not in OTHER_SCOPES:     # parse_scope raises ScopeError
                raise ScopeError(f"unknown scope {scope!r}: not a resource scope nor one of {' '.join(OTHER_SCOPES)}")
        if organization is not None and reference_type(organization) != "Organization":
            raise ValueError(f"organization {organization!r} must be a reference like Organization/1")
        if regulator and organization is not None:
            raise ValueError("a regulator's client oversees the whole exchange: it belongs to no organization")
        secret = secrets.token_urlsafe(32) if type == "confidential-symmetric" else None
        while True:
            # hex: an id starting with "-" would read as an option to `medport client disable`
            client = Client(secrets.token_hex(16), name, type, uris, scope_list,
                            secret_hash=secret_hash(secret) if secret else None,
                            jwks=jwks, jwks_uri=jwks_uri, organization=organization, regulator=bool(regulator))
            if self.store.add_record(KIND, client.client_id, asdict(client)):
                return client, secret

    def get(self, client_id: str) -> Client | None:
        record = self.store.get_record(KIND, client_id)
        return Client(**record) if record else None

    def list(self) -> list[Client]:
        """By name, then client_id."""
        return sorted((Client(**value) for _key, value in self.store.list_records(KIND)),
                      key=lambda c: (c.name, c.client_id))

    def disable(self, client_id: str) -> bool:
        """Refuse the client from now on, and every access and refresh token it holds (standing.py,
        within STANDING_TTL_S seconds on every worker); False if unknown."""
        client = self.get(client_id)
        if client is None:
            return False
        client.disabled = True
        self.store.put_record(KIND, client_id, asdict(client))
        standing.forget(self.store, KIND, client_id)    # at once here; other workers within seconds
        return True

    def check_secret(self, client: Client, secret: str) -> bool:
        """The client_secret of a confidential-symmetric client, compared in constant time.
        Does not look at `disabled`."""
        if not client.secret_hash or not isinstance(secret, str):
            return False
        if client.secret_hash.startswith(_SHA256):
            return hmac.compare_digest(secret_hash(secret).encode(), client.secret_hash.encode())
        return passwords.verify_password(secret, client.secret_hash)      # registered before: scrypt


_SHA256 = "sha256$"


def secret_hash(secret: str) -> str:
    """The stored form of a client secret. The server makes every secret (256 random bits), so a
    fast hash is as safe as a slow one (OWASP Password Storage Cheat Sheet: slow hashing is for
    low-entropy passwords), and a token, introspection or revocation request no longer costs 0.2 s
    and 32 MiB of scrypt, which anyone knowing a client_id could make the server pay at will."""
    return _SHA256 + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _check_redirect_uri(uri: str) -> None:
    """RFC 6749 3.1.2: an absolute URI without a fragment (here: http or https)."""
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URI")
    if "#" in uri:
        raise ValueError(f"redirect URI {uri!r} must not contain a fragment (RFC 6749 3.1.2)")


def _check_jwks_uri(uri: str) -> None:
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or not parts.netloc or not (
            parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS)):
        raise ValueError(f"jwks_uri {uri!r} must be an https URL (http only for localhost)")


def _check_jwks(jwks: dict) -> None:
    """Public RSA or EC keys only (SMART Backend Services signs with RS384 or ES384)."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError('jwks must be a JWK Set: {"keys": [...]} with at least one key')
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("kty") not in _KEY_CLASSES:
            raise ValueError("each key in jwks must be an RSA or EC public key (kty RSA or EC)")
        private = [m for m in PRIVATE_JWK_MEMBERS if m in jwk]
        if private:
            raise ValueError(f"jwks must hold public keys only: found private member(s) {', '.join(private)}")
        try:
            _KEY_CLASSES[jwk["kty"]].import_key(jwk)
        except (JoseError, ValueError, TypeError) as e:
            raise ValueError(f"jwks holds a malformed {jwk['kty']} key: {e}") from None
