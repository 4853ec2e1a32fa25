"""The server's signing keys (RS256, for access and id tokens) and their JWKS.

Keys live in the store (records of kind "signing-key"), so every worker and machine signs with
the same key and verifies each other's tokens. Rotation without downtime: rotate() makes a new
key the active one; the previous keys stay published (and accepted) until their tokens can no
longer be valid.
"""
from __future__ import annotations

import secrets
import threading
import time
import weakref

from joserfc.jwk import KeySet, RSAKey

KIND = "signing-key"
ALG = "RS256"
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")

# Verifying keys are kept per process and per store (issue 16: reading and decoding the key
# records on every request was 13% of a read). What a token meets:
# - a kid this process does not know (a key made by another worker or `medport keys rotate`):
#   the records are read again at once, before the token is judged;
# - a key past its retirement time: refused exactly then (the cached record carries it);
# - a key retired or deleted elsewhere: seen at the next reload, at most PUBLISHED_TTL_S seconds later.
PUBLISHED_TTL_S = 30.0

# Importing an RSA key costs milliseconds (cryptography checks it), far more than verifying a
# signature: imported keys are kept per process, by kid (a kid never changes its key, and kids are
# random, so apps sharing a process share these caches harmlessly).
_imported: dict[str, RSAKey] = {}


class _Published:
    """One immutable snapshot of a store's published keys: a change builds a new snapshot, then
    replaces the reference in one step, so a concurrent request reads the old one or the new one,
    never a cache being refilled."""
    __slots__ = ("read_at", "retires", "kids", "key_set")

    def __init__(self, records: list[dict], read_at: float):
        self.read_at = read_at      # time.monotonic(): a wall-clock step neither extends nor ends the bound
        self.retires = {r["jwk"]["kid"]: r.get("retires") for r in records}
        self.kids = tuple(sorted(self.retires))
        self.key_set = KeySet([_import_public(r["jwk"]) for r in records])

    def current(self, now: float) -> tuple[tuple[str, ...], KeySet]:
        """(kids, KeySet) of the keys not retired at `now` (the same objects while none retires)."""
        if all(t is None or t > now for t in self.retires.values()):
            return self.kids, self.key_set
        live = [k for k in self.key_set.keys if self.retires[k.kid] is None or self.retires[k.kid] > now]
        return tuple(sorted(k.kid for k in live)), KeySet(live)


_published: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # store -> _Published
_lock = threading.Lock()


class SigningKeys:
    def __init__(self, store, retire_after_s: float = 24 * 3600):
        self.store = store
        self.retire_after_s = retire_after_s

    def active(self) -> RSAKey:
        """The newest key, created on first use (two workers racing create one each: both stay valid)."""
        records = self._records()
        if not records:
            return self.rotate()
        return _import(max(records, key=lambda r: r["created"])["jwk"])

    def rotate(self) -> RSAKey:
        kid = secrets.token_hex(8)
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": ALG})
        now = time.time()
        for r in self._records():   # older keys are retired: published until their tokens expire
            if r.get("retires") is None:
                r["retires"] = now + self.retire_after_s
                self.store.put_record(KIND, r["jwk"]["kid"], r, expires_at=r["retires"])
        self.store.put_record(KIND, kid, {"jwk": key.as_dict(private=True), "created": now, "retires": None})
        self._reload()      # this process sees the change at once
        return key

    def jwks(self) -> dict:
        """The public JWKS served at jwks_uri."""
        return {"keys": [_public(r["jwk"]) for r in self._records()]}

    def key_set(self, kid: str | None = None) -> KeySet:
        """Public keys for verifying tokens (any key still published), imported once per process."""
        return self.verifying(kid)[1]

    def verifying(self, kid: str | None = None) -> tuple[tuple[str, ...], KeySet]:
        """(kids, KeySet) of the published keys, from this process's snapshot: read again when it is
        older than PUBLISHED_TTL_S, or when `kid` (a token's) is not in it."""
        snapshot = _published.get(self.store)
        if snapshot is None or time.monotonic() - snapshot.read_at >= PUBLISHED_TTL_S \
                or (kid is not None and kid not in snapshot.retires):
            snapshot = self._reload()
        return snapshot.current(time.time())        # retirement times are wall-clock, as stored

    def _reload(self) -> _Published:
        snapshot = _Published(self._records(), time.monotonic())
        with _lock:
            _published[self.store] = snapshot
        return snapshot

    def _records(self) -> list[dict]:
        return [value for _key, value in self.store.list_records(KIND)]


def _public(jwk: dict) -> dict:
    return {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}


def _import(jwk: dict) -> RSAKey:
    key = _imported.get(jwk["kid"])
    if key is None:
        key = _imported[jwk["kid"]] = RSAKey.import_key(jwk)
    return key


_imported_public: dict[str, RSAKey] = {}


def _import_public(jwk: dict) -> RSAKey:
    key = _imported_public.get(jwk["kid"])
    if key is None:
        key = _imported_public[jwk["kid"]] = RSAKey.import_key(_public(jwk))
    return key
