"""Verifying a card as a verifier does: form, issuer, key, signature, dates, contents.

Spec: https://spec.smarthealth.cards/#presenting-health-cards-to-a-verifier, #determining-keys-associated-with-an-issuer
(keys at iss + "/.well-known/jwks.json", found by kid), #via-file-download (the .smart-health-card
file) and #health-cards-as-qr-codes. Every fault of the card becomes a problem, in a sentence a
clerk understands; nothing about the card's text makes verify() raise.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone

from .credential import HEALTH_CARD
from .jws import CardError, check_signature, parse
from .qr import PREFIX, from_numeric

log = logging.getLogger(__name__)

CLOCK_SKEW_S = 60   # a card signed a moment ago by a server whose clock runs a little ahead is valid
MAX_CARDS = 10      # cards in one .smart-health-card file that are checked (each is checked whole)
MAX_INFLATED = 256 * 1024   # a card's contents; real cards are a few KiB (a QR code holds 1,195 characters)


@dataclass
class Verdict:
    valid: bool
    problems: list[str]
    issuer: str | None = None
    kid: str | None = None
    payload: dict | None = None
    bundle: dict | None = None


def verify(card: str, keys_for: Callable[[str], dict | None], *,
           trusted_issuers: Collection[str] | None = None,
           check_bundle: Callable[[dict], list[str]] | None = None,
           check_claims: Callable[[str, dict], list[str]] | None = None,
           high_s_issuers: Collection[str] = (),
           now: float | None = None) -> Verdict:
    """Check a card given as a compact JWS, as the numeric "shc:/" text of its QR code, or as the
    JSON of a .smart-health-card file (every card in it is checked; a problem in any makes the
    verdict invalid, and the other fields describe the first card).

    keys_for(iss) returns the issuer's JWKS, or None when it is unknown or unreachable; it is
    called only for trusted issuers when trusted_issuers is given. check_bundle(bundle) adds its
    own problems about the card's FHIR Bundle; check_claims(kid, claims) its problems about a card
    that is otherwise valid (revocation). A signature must have the low s (jws.py: one valid
    encoding per card) except from high_s_issuers, other issuers whose signers need not normalise it
    (the SMART Health Cards spec does not require it)."""
    try:
        jwss = _cards(card)
    except CardError as e:
        return Verdict(False, [str(e)])
    now = time.time() if now is None else now
    if isinstance(trusted_issuers, str):   # one issuer given bare: "in" would match any substring of it
        trusted_issuers = (trusted_issuers,)
    jwks_by_issuer: dict[str, dict | None] = {}

    def cached_keys(iss: str) -> dict | None:
        if iss not in jwks_by_issuer:
            jwks_by_issuer[iss] = _fetch(keys_for, iss)
        return jwks_by_issuer[iss]

    verdicts = [_verify_one(jws, cached_keys, trusted_issuers, check_bundle, now, high_s_issuers) for jws in jwss]
    if check_claims is not None:      # e.g. revocation: asked only of cards whose signature holds
        for v in verdicts:
            if v.valid:
                v.problems += _bundle_problems(lambda p, k=v.kid: check_claims(k, p), v.payload)
                v.valid = not v.problems
    if len(verdicts) == 1:
        return verdicts[0]
    problems = [f"Card {n}: {p}" for n, v in enumerate(verdicts, 1) for p in v.problems]
    first = verdicts[0]
    return Verdict(not problems, problems, first.issuer, first.kid, first.payload, first.bundle)


def _cards(card) -> list[str]:
    """The JWS texts in whatever form the card came."""
    if isinstance(card, bytes):
        try:
            card = card.decode("utf-8")
        except UnicodeDecodeError:
            raise CardError("The card is not text") from None
    if not isinstance(card, str) or not card.strip():
        raise CardError("No card was given")
    text = card.strip()
    if text.startswith("{"):
        try:
            jwss = json.loads(text).get("verifiableCredential")
        except (ValueError, RecursionError, AttributeError):
            raise CardError("The file is not a health card file (JSON with a verifiableCredential list)") from None
        if not isinstance(jwss, list) or not all(isinstance(j, str) for j in jwss):
            raise CardError("The file is not a health card file (JSON with a verifiableCredential list)")
        if not jwss:
            raise CardError("The health card file holds no cards")
        if len(jwss) > MAX_CARDS:
            raise CardError(f"The file holds {len(jwss)} cards; at most {MAX_CARDS} are checked at once")
        return jwss
    if text[:len(PREFIX)].lower() == PREFIX:
        return [from_numeric(text)]
    return [text]


def _verify_one(jws: str, keys_for: Callable[[str], dict | None], trusted_issuers: Collection[str] | None,
                check_bundle: Callable[[dict], list[str]] | None, now: float,
                high_s_issuers: Collection[str] = ()) -> Verdict:
    try:
        header, payload, signing_input, signature = parse(jws, MAX_INFLATED)
    except CardError as e:
        return Verdict(False, [str(e)])
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    iss = payload.get("iss") if isinstance(payload.get("iss"), str) else None
    problems = _signature_problems(iss, kid, signing_input, signature, keys_for, trusted_issuers,
                                   low_s_only=iss not in high_s_issuers)
    problems += _date_problems(payload, now)
    vc = payload.get("vc") if isinstance(payload.get("vc"), dict) else {}
    types = vc.get("type")
    if not isinstance(types, list) or HEALTH_CARD not in types:
        problems.append(f"The card is not a health card (vc.type lacks {HEALTH_CARD})")
    subject = vc.get("credentialSubject") if isinstance(vc.get("credentialSubject"), dict) else {}
    bundle = subject.get("fhirBundle")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        problems.append("The card holds no FHIR Bundle")
        bundle = None
    else:
        if not any(r.get("resourceType") == "Patient" for r in _resources(bundle)):
            problems.append("The card holds no Patient")
        if check_bundle is not None:
            problems += _bundle_problems(check_bundle, bundle)
    return Verdict(not problems, problems, iss, kid, payload, bundle)


def _signature_problems(iss: str | None, kid: str | None, signing_input: bytes, signature: bytes,
                        keys_for: Callable[[str], dict | None],
                        trusted_issuers: Collection[str] | None, low_s_only: bool = True) -> list[str]:
    if iss is None:
        return ["The card does not name its issuer (iss), so its signature cannot be checked"]
    if trusted_issuers is not None and iss not in trusted_issuers:
        return [f"The issuer {iss} is not trusted here"]
    if kid is None:
        return ["The card does not say which key signed it (its header has no kid)"]
    jwks = keys_for(iss)
    if jwks is None:
        return [f"The keys of the issuer {iss} could not be obtained, so the signature cannot be checked"]
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    key = next((k for k in keys if isinstance(k, dict) and k.get("kid") == kid), None) \
        if isinstance(keys, list) else None
    if key is None:
        return [f"The card was signed with key {kid}, which {iss} does not publish"]
    if not check_signature(signing_input, signature, key, low_s_only):
        return ["The signature does not match the card's contents: it was changed after it was signed"]
    return []


def _date_problems(payload: dict, now: float) -> list[str]:
    problems = []
    nbf, exp = payload.get("nbf"), payload.get("exp")
    if not _is_time(nbf):
        problems.append("The card has no valid issue date (nbf)")
    elif nbf > now + CLOCK_SKEW_S:
        problems.append(f"The card is not valid before {_iso(nbf)}")
    if exp is not None and not _is_time(exp):
        problems.append("The card's expiry date (exp) is not valid")
    elif exp is not None and exp <= now - CLOCK_SKEW_S:
        problems.append(f"The card expired at {_iso(exp)}")
    return problems


def _bundle_problems(check_bundle: Callable[[dict], list[str]], bundle: dict) -> list[str]:
    try:
        return [str(p) for p in check_bundle(bundle)]
    except Exception:   # the card's contents are whatever the holder brought: a check may trip on them
        log.exception("health card bundle check failed")
        return ["The card's contents could not be checked"]


def _fetch(keys_for: Callable[[str], dict | None], iss: str) -> dict | None:
    try:
        return keys_for(iss)
    except Exception:   # iss is whatever the card says: an unusable URL is the card's fault
        log.warning("fetching the keys of health card issuer %r failed", iss, exc_info=True)
        return None


def _resources(bundle: dict) -> list[dict]:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def _is_time(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{seconds} seconds after 1970"
