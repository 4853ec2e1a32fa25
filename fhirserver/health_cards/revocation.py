"""Revoking health cards (https://spec.smarthealth.cards/#revocation): a card carries `vc.rid`, an
opaque revocation id of its patient; revoking a patient's cards publishes "rid.timestamp" in the
issuer's revocation list, at [iss]/.well-known/crl/[kid].json, and every card of that patient whose
nbf is before the timestamp is revoked. The JWKS names the list's version (`crlVersion`) so that
verifiers know when to fetch it again.

rid = base64url of the first 64 bits of HMAC-SHA-256(issuer secret, Patient id) (the spec's
suggestion): stable per patient, meaningless to anyone else. Revocations are store records (one per
act, never removed), so that every worker publishes the same list and the version only grows."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SECRET_KIND = "shc-rid-secret"
REVOKED_KIND = "shc-revocation"


def rid(store, patient_id: str) -> str:
    record = store.get_record(SECRET_KIND, "secret")       # read first: issuing a card writes nothing here
    if record is None:
        store.add_record(SECRET_KIND, "secret", {"key": secrets.token_hex(32)})     # the first one made stays
        record = store.get_record(SECRET_KIND, "secret")
    key = bytes.fromhex(record["key"])
    digest = hmac.new(key, patient_id.encode(), hashlib.sha256).digest()[:8]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def revoke(store, patient_id: str, when: float | None = None) -> int:
    """Revoke every card of the patient issued before `when` (default: the next second, so that the
    cards of this second are included); returns the timestamp."""
    stamp = int(when if when is not None else time.time() + 1)
    store.add_record(REVOKED_KIND, f"{stamp}.{secrets.token_hex(4)}", {"rid": rid(store, patient_id), "at": stamp})
    return stamp


def revoked(store) -> dict[str, int]:
    """rid -> the latest revocation timestamp."""
    out: dict[str, int] = {}
    for _key, value in store.list_records(REVOKED_KIND):
        out[value["rid"]] = max(out.get(value["rid"], 0), value["at"])
    return out


def version(store) -> int:
    """crlVersion: how many revocations were ever made (0: no list)."""
    return len(store.list_records(REVOKED_KIND))


def crl(store, kid: str) -> dict:
    """The revocation list of one key (the same rids for every key: a rid names a patient)."""
    return {"kid": kid, "method": "rid", "ctr": version(store),
            "rids": [f"{r}.{at}" for r, at in sorted(revoked(store).items())]}


def problems(store, claims: dict) -> list[str]:
    """Whether a card of this issuer is revoked (for checking.verify_card)."""
    card_rid, nbf = (claims.get("vc") or {}).get("rid"), claims.get("nbf")
    at = revoked(store).get(card_rid) if isinstance(card_rid, str) else None
    if at is not None and isinstance(nbf, (int, float)) and nbf < at:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
        return [f"The card was revoked by its issuer ({when}): ask the patient for a new one"]
    return []
