"""The issuer's signing keys (ES256 on P-256) and the JWKS published at /.well-known/jwks.json.

Spec: https://spec.smarthealth.cards/#determining-keys-associated-with-an-issuer and
#key-management. Keys live in the store (records of kind "shc-issuer-key", keyed by kid), so
every worker signs with the same key. kid is the key's RFC 7638 thumbprint. Rotation makes a new
key the active one; old public keys stay published forever, since the cards they signed must
stay verifiable for as long as they are clinically relevant.
"""
from __future__ import annotations

import time

from joserfc.jwk import ECKey

KIND = "shc-issuer-key"
ALG = "ES256"
CRV = "P-256"
_PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "crv", "x", "y")

# Importing a key costs far more than signing with it: imported keys are kept per process, by kid
# (a kid is the key's thumbprint, so it never changes its key).
_imported: dict[str, ECKey] = {}


class IssuerKeys:
    def __init__(self, store):
        self.store = store

    def active(self) -> ECKey:
        """The newest key, created on first use (two workers racing create one each: both stay valid)."""
        records = self._records()
        if not records:
            return self.rotate()
        newest = max(records, key=lambda r: (r["created"], r["jwk"]["kid"]))
        return _import(newest["jwk"])

    def rotate(self) -> ECKey:
        """Make a new key the active one; the older ones stay published."""
        key = ECKey.generate_key(CRV, parameters={"use": "sig", "alg": ALG}, private=True, auto_kid=True)
        jwk = key.as_dict(private=True)
        jwk["kid"] = key.thumbprint()
        self.store.put_record(KIND, jwk["kid"], {"jwk": jwk, "created": time.time()})
        _imported[jwk["kid"]] = key
        return key

    def jwks(self) -> dict:
        """The public JWKS: public members only (never "d"), one entry per key ever made."""
        return {"keys": [public_jwk(r["jwk"]) for r in self._records()]}

    def _records(self) -> list[dict]:
        return [value for _key, value in self.store.list_records(KIND)]


def public_jwk(jwk: dict) -> dict:
    """The members of a JWK that may be published (a whitelist, so private members never leak)."""
    return {k: jwk[k] for k in _PUBLIC_MEMBERS if k in jwk}


def _import(jwk: dict) -> ECKey:
    key = _imported.get(jwk["kid"])
    if key is None:
        key = _imported[jwk["kid"]] = ECKey.import_key(jwk)
    return key
