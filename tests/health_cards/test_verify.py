"""Verifying cards: a good card in each of its forms, and every kind of tampering or malformed
input turned into a problem a clerk can read (never an exception)."""
from __future__ import annotations

import base64
import json
import time
import zlib

import jwt
import pytest

from fhirserver.health_cards import credential, jws, qr
from fhirserver.health_cards.issuer_keys import IssuerKeys
from fhirserver.health_cards.verify import MAX_INFLATED, Verdict, verify
from tests.health_cards._cards import ISSUER, FakeStore, card_payload, issue, keys_for, patient

CHANGED = "The signature does not match the card's contents: it was changed after it was signed"


@pytest.fixture
def keys():
    return IssuerKeys(FakeStore())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def problems(card, keys, **kw) -> list[str]:
    verdict = verify(card, keys_for(keys), **kw)
    assert verdict.valid == (not verdict.problems)
    return verdict.problems


def test_a_good_card_is_valid_in_every_form(keys):
    card = issue(keys)
    for form in (card, qr.to_numeric(card), json.dumps({"verifiableCredential": [card]}), f"  {card}\n"):
        verdict = verify(form, keys_for(keys), trusted_issuers={ISSUER})
        assert verdict == Verdict(True, [], ISSUER, keys.active().kid, jws.parse(card)[1],
                                  jws.parse(card)[1]["vc"]["credentialSubject"]["fhirBundle"])
    assert verdict.bundle["entry"][0]["resource"]["name"] == [{"family": "Rao", "given": ["Asha"]}]


def test_a_card_signed_by_pyjwt_is_valid(keys):
    """Independent signer: PyJWT with the issuer's private key, raw-deflated minified payload."""
    jwk = keys.active().as_dict(private=True)
    private = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(json.dumps(card_payload(), separators=(",", ":")).encode()) + c.flush()
    card = jwt.api_jws.encode(body, private, algorithm="ES256", headers={"zip": "DEF", "kid": jwk["kid"]})
    # PyJWT does not normalise s: an issuer like it is trusted with either s (high_s_issuers) ...
    assert problems(card, keys, high_s_issuers={ISSUER}) == []
    # ... and its card with the low s is valid without that allowance
    assert problems(malleate(card, low=True), keys) == []


def malleate(card: str, low: bool | None = None) -> str:
    """The card with the signature (r, n - s), which verifies as well under plain ECDSA; low=True/False:
    the one of the pair with the low/high s."""
    head, sig = card.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(sig + "==")
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin = jws.P256_ORDER - s
    if low is not None:
        twin = min(s, twin) if low else max(s, twin)
    return f"{head}.{b64(r + twin.to_bytes(32, 'big'))}"


def test_a_malleated_signature_is_refused_unless_the_issuer_may_sign_high_s(keys):
    """ECDSA's (r, n - s) twin of a valid signature checks out mathematically; only the low-s one is the card."""
    card = issue(keys)
    s = int.from_bytes(base64.urlsafe_b64decode(card.rsplit(".", 1)[1] + "==")[32:], "big")
    assert s <= jws.P256_ORDER // 2                        # we sign with the low s
    twin = malleate(card)
    assert twin != card and malleate(twin) == card
    assert problems(card, keys) == []
    assert problems(twin, keys) == [CHANGED]
    assert problems(twin, keys, high_s_issuers={ISSUER}) == []        # a foreign issuer's card: both
    # the check itself: the twin is a valid ECDSA signature, refused for its high s only
    _header, _payload, signing_input, signature = jws.parse(twin)
    jwk = keys.jwks()["keys"][0]
    assert not jws.check_signature(signing_input, signature, jwk)
    assert jws.check_signature(signing_input, signature, jwk, low_s_only=False)


def test_every_card_is_signed_with_the_low_s(keys):
    for _ in range(24):      # a signer that does not normalise gives a high s half the time
        sig = base64.urlsafe_b64decode(issue(keys).rsplit(".", 1)[1] + "==")
        assert int.from_bytes(sig[32:], "big") <= jws.P256_ORDER // 2


def test_rotation_keeps_old_cards_verifiable(keys):
    old_card = issue(keys)
    keys.rotate()
    new_card = issue(keys)
    assert jws.parse(old_card)[0]["kid"] != jws.parse(new_card)[0]["kid"]
    assert problems(old_card, keys) == [] and problems(new_card, keys) == []


def test_changed_contents_are_detected(keys):
    card = issue(keys)
    header, body, signature = card.split(".")
    payload = card_payload()
    payload["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]["birthDate"] = "1990-01-01"
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    changed = b64(c.compress(json.dumps(payload, separators=(",", ":")).encode()) + c.flush())
    assert problems(f"{header}.{changed}.{signature}", keys) == [CHANGED]
    one_char = problems(f"{header}.{flip(body, len(body) // 2)}.{signature}", keys)
    assert len(one_char) == 1 and one_char[0] in (     # depending on where the bits fall
        CHANGED, "The card's contents are not DEFLATE-compressed as health cards require",
        "The card's contents are not a JSON object")
    assert problems(f"{header}.{body}.{flip(signature, 40)}", keys) == [CHANGED]


def test_a_changed_kid_is_detected(keys):
    old_kid = keys.active().kid
    keys.rotate()
    card = issue(keys)
    _, body, signature = card.split(".")
    for kid in (old_kid, "not-a-key"):
        header = b64(json.dumps({"alg": "ES256", "zip": "DEF", "kid": kid}).encode())
        expected = CHANGED if kid == old_kid else f"The card was signed with key not-a-key, which {ISSUER} does not publish"
        assert problems(f"{header}.{body}.{signature}", keys) == [expected]


def test_a_card_signed_with_an_unpublished_key_is_refused(keys):
    keys.active()
    stranger = IssuerKeys(FakeStore()).active()
    card = jws.sign(card_payload(), stranger)
    assert problems(card, keys) == [f"The card was signed with key {stranger.kid}, which {ISSUER} does not publish"]
    # the stranger claims a published kid: the signature then fails
    header = b64(json.dumps({"alg": "ES256", "zip": "DEF", "kid": keys.active().kid}).encode())
    _, body, signature = card.split(".")
    assert problems(f"{header}.{body}.{signature}", keys) == [CHANGED]


def test_another_issuer_is_refused_unless_trusted_and_its_keys_are_not_even_fetched(keys):
    evil = IssuerKeys(FakeStore())
    card = jws.sign(card_payload(issuer="https://evil.test"), evil.active())
    asked = []

    def keys_for_any(iss):
        asked.append(iss)
        return evil.jwks() if iss == "https://evil.test" else keys.jwks()

    verdict = verify(card, keys_for_any, trusted_issuers=[ISSUER])
    assert verdict.problems == ["The issuer https://evil.test is not trusted here"] and asked == []
    assert verdict.issuer == "https://evil.test" and not verdict.valid
    prefix = jws.sign(card_payload(issuer="https://hospital.test"), keys.active())     # a prefix of ISSUER
    assert verify(prefix, keys_for_any, trusted_issuers=ISSUER).problems == [
        "The issuer https://hospital.test is not trusted here"]
    # the issuer swapped in a card of ours: the signature no longer matches
    payload = card_payload()
    payload["iss"] = "https://evil.test"
    header, _, signature = issue(keys).split(".")
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    swapped = f"{header}.{b64(c.compress(json.dumps(payload).encode()) + c.flush())}.{signature}"
    assert verify(swapped, lambda iss: keys.jwks()).problems == [CHANGED]


def test_dates(keys):
    now = time.time()
    future = jws.sign(card_payload(nbf=1893456000), keys.active())          # 2030-01-01
    assert problems(future, keys) == ["The card is not valid before 2030-01-01T00:00:00Z"]
    assert problems(future, keys, now=1893456000) == []
    expired = card_payload()
    expired["exp"] = int(now) - 3600
    assert problems(jws.sign(expired, keys.active()), keys)[0].startswith("The card expired at ")
    for nbf in ("2024-01-01", None, True):
        payload = card_payload()
        payload["nbf"] = nbf
        assert problems(jws.sign(payload, keys.active()), keys) == ["The card has no valid issue date (nbf)"]


def test_contents(keys):
    payload = card_payload()
    payload["vc"]["type"] = ["https://smarthealth.cards#immunization"]
    assert problems(jws.sign(payload, keys.active()), keys) == [
        "The card is not a health card (vc.type lacks https://smarthealth.cards#health-card)"]
    no_patient = credential.payload(ISSUER, {"resourceType": "Bundle", "type": "collection", "entry": []},
                                    int(time.time()))
    assert problems(jws.sign(no_patient, keys.active()), keys) == ["The card holds no Patient"]
    no_bundle = card_payload()
    del no_bundle["vc"]["credentialSubject"]
    assert problems(jws.sign(no_bundle, keys.active()), keys) == ["The card holds no FHIR Bundle"]


def test_check_bundle_adds_its_problems(keys):
    card = issue(keys)
    seen = []

    def check(bundle):
        seen.append(bundle["entry"][0]["resource"]["identifier"][0]["value"])
        return ["The UHID 1234567897 has a wrong check digit"]

    assert problems(card, keys, check_bundle=check) == ["The UHID 1234567897 has a wrong check digit"]
    assert seen == [patient()["identifier"][0]["value"]]
    assert problems(card, keys, check_bundle=lambda b: b["no such"]) == ["The card's contents could not be checked"]


def test_issuer_keys_unavailable(keys):
    card = issue(keys)
    unreachable = f"The keys of the issuer {ISSUER} could not be obtained, so the signature cannot be checked"
    assert verify(card, lambda iss: None).problems == [unreachable]

    def failing(iss):
        raise OSError("connection refused")

    assert verify(card, failing).problems == [unreachable]
    assert verify(card, lambda iss: {"keys": "nonsense"}).problems == [
        f"The card was signed with key {keys.active().kid}, which {ISSUER} does not publish"]


def test_a_file_with_a_bad_card_is_invalid(keys):
    good = issue(keys)
    header, body, signature = good.split(".")
    bad = f"{header}.{body}.{flip(signature, 40)}"
    verdict = verify(json.dumps({"verifiableCredential": [good, bad]}), keys_for(keys))
    assert not verdict.valid and verdict.problems == [f"Card 2: {CHANGED}"] and verdict.issuer == ISSUER
    assert verify('{"verifiableCredential": []}', keys_for(keys)).problems == ["The health card file holds no cards"]


def test_a_deflate_bomb_is_a_problem(keys):
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    bomb = b"".join(c.compress(bytes(1 << 20)) for _ in range(50)) + c.flush()
    header = b64(json.dumps({"alg": "ES256", "zip": "DEF", "kid": keys.active().kid}).encode())
    verdict = verify(f"{header}.{b64(bomb)}.{b64(bytes(64))}", keys_for(keys))
    assert verdict.problems == [f"The card's contents are too large (over {MAX_INFLATED} bytes once uncompressed)"]


def test_qr_texts(keys):
    numeric = qr.to_numeric(issue(keys))
    wrong_pair = numeric[:9] + "99" + numeric[11:]
    assert problems(wrong_pair, keys) == [
        "The QR code's text holds a digit pair above 77: it was misread or altered"]
    misread = numeric[:9] + ("10" if numeric[9:11] != "10" else "11") + numeric[11:]
    assert problems(misread, keys)                          # a valid pair, but not the signed one
    assert problems("shc:/1/2/" + numeric[5:], keys) == [
        "This QR code is one part of a card split over several QR codes; such split cards are not accepted "
        "here (ask for the card as a single QR code or a file)"]


@pytest.mark.parametrize("card", [
    "", "   ", None, b"\xff", 42, "{", "{}", '{"verifiableCredential": "x"}', '{"verifiableCredential": [1]}',
    "[1]", "hello", "a.b.c", "...", "shc:/", "SHC:/00", "e30.e30.e30", "x" * 10000,
])
def test_garbage_is_a_problem_not_an_exception(card, keys):
    verdict = verify(card, keys_for(keys))
    assert not verdict.valid and verdict.problems and all(isinstance(p, str) for p in verdict.problems)
