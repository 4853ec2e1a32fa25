"""Claim codes: the secret a hospital hands a walk-in patient with their UHID, so that they (and only
they) can later open an account on the record the hospital made.

Everything else on a health card (UHID, name, birth date) is readable by whoever sees the card, so
it cannot prove who is claiming. A code is 12 characters from a 32-letter alphabet without look-alikes
(60 bits from the OS's cryptographic source), written CCCC-CCCC-CCCC (C: a letter or digit), valid
30 days, single use, and stored only as its SHA-256, bound to one Patient. Issued by Patient/[id]/$registration-code."""
from __future__ import annotations

import hashlib
import re
import secrets
import time

KIND = "claim-code"
LIFETIME_S = 30 * 24 * 3600
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def issue(store, patient_id: str) -> tuple[str, float]:
    """A new code for the patient, and when it expires."""
    raw = draw(12)
    expires = time.time() + LIFETIME_S
    store.put_record(KIND, _digest(raw), {"patient": patient_id}, expires_at=expires)
    return grouped(raw), expires


def holds(store, code: str, patient_id: str) -> bool:
    record = store.get_record(KIND, _digest(normal(code)))
    return record is not None and record["patient"] == patient_id


def redeem(store, code: str, patient_id: str) -> bool:
    """Use the code up; False if it is not (or no longer) this patient's."""
    record = store.take_record(KIND, _digest(normal(code)))
    return record is not None and record["patient"] == patient_id


def draw(length: int, alphabet: str = ALPHABET) -> str:
    """`length` characters of `alphabet` from the OS's cryptographic source (also the registration
    confirmation codes and server-assigned usernames)."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def grouped(raw: str) -> str:
    """The code as written for people: groups of four, CCCC-CCCC-CC..."""
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def normal(code: str) -> str:
    """A code as typed (any case, spaces or dashes) back to its raw characters."""
    return re.sub(r"[\s-]", "", code).upper()


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
