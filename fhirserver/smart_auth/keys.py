"""The server's signing keys (RS256, for access and id tokens) and their JWKS.

Keys live in the store (records of kind "signing-key"), so every worker and machine signs with
the same key and verifies each other's tokens. Rotation without downtime: rotate() makes a new
key the active one; the previous keys stay published (and accepted) until their tokens can no
longer be valid.
"""
from __future__ import annotations

import secrets
import time

from joserfc.jwk import KeySet, RSAKey

KIND = "signing-key"
ALG = "RS256"
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")

# Importing an RSA key costs milliseconds (cryptography checks it), far more than verifying a
# signature: imported keys are kept per process, by kid (a kid never changes its key, and kids are
# random, so apps sharing a process share these caches harmlessly). The public set is one immutable
# (kids, KeySet) pair: a change builds the new pair, then replaces the reference in one step, so a
# concurrent request reads the old pair or the new one, never a cache being refilled.
_imported: dict[str, RSAKey] = {}
_public_set: tuple[tuple[str, ...], KeySet] | None = None


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
        return key

    def jwks(self) -> dict:
        """The public JWKS served at jwks_uri."""
        return {"keys": [_public(r["jwk"]) for r in self._records()]}

    def key_set(self) -> KeySet:
        """Public keys for verifying tokens (any key still published), imported once per process."""
        global _public_set
        jwks = [_public(r["jwk"]) for r in self._records()]
        kids = tuple(sorted(k["kid"] for k in jwks))
        cached = _public_set        # one read of the reference: the pair cannot change under us
        if cached is None or cached[0] != kids:     # the published set changed (rotation, retirement)
            cached = (kids, KeySet([RSAKey.import_key(k) for k in jwks]))
            _public_set = cached
        return cached[1]

    def _records(self) -> list[dict]:
        return [value for _key, value in self.store.list_records(KIND)]


def _public(jwk: dict) -> dict:
    return {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}


def _import(jwk: dict) -> RSAKey:
    key = _imported.get(jwk["kid"])
    if key is None:
        key = _imported[jwk["kid"]] = RSAKey.import_key(jwk)
    return key
