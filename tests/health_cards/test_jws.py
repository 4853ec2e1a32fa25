"""The compact JWS: what we sign checks out with an independent library (PyJWT), and parse()
refuses every malformed card with a sentence, a deflate bomb without inflating it."""
from __future__ import annotations

import base64
import json
import tracemalloc
import zlib

import jwt
import pytest
from jwt.algorithms import ECAlgorithm

from fhirserver.health_cards import jws
from fhirserver.health_cards.issuer_keys import IssuerKeys
from tests.health_cards._cards import FakeStore, card_payload


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def forged(header: dict, body: bytes, signature: bytes = bytes(64)) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(body)}.{b64(signature)}"


GOOD_HEADER = {"alg": "ES256", "zip": "DEF", "kid": "k"}


def test_round_trip():
    keys = IssuerKeys(FakeStore())
    payload = card_payload()
    card = jws.sign(payload, keys.active())
    header, parsed, signing_input, signature = jws.parse(card)
    assert header == {"alg": "ES256", "zip": "DEF", "kid": keys.active().kid}
    assert parsed == payload and len(signature) == 64
    assert signing_input == card.rsplit(".", 1)[0].encode()
    assert jws.check_signature(signing_input, signature, keys.jwks()["keys"][0])
    assert not jws.check_signature(signing_input + b"x", signature, keys.jwks()["keys"][0])
    assert not jws.check_signature(signing_input, signature[:-1], keys.jwks()["keys"][0])
    assert not jws.check_signature(signing_input, signature, {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})
    assert not jws.check_signature(signing_input, signature, {"kty": "EC", "crv": "P-256", "x": 1, "y": []})


def test_pyjwt_verifies_our_card_and_reads_the_same_payload():
    keys = IssuerKeys(FakeStore())
    payload = card_payload()
    card = jws.sign(payload, keys.active())
    public = ECAlgorithm.from_jwk(json.dumps(keys.jwks()["keys"][0]))
    decoded = jwt.PyJWS().decode_complete(card, key=public, algorithms=["ES256"])
    assert decoded["header"] == {"alg": "ES256", "zip": "DEF", "kid": keys.active().kid}
    raw = zlib.decompress(decoded["payload"], -15)
    assert raw == json.dumps(payload, separators=(",", ":")).encode()     # minified
    other_keys = IssuerKeys(FakeStore())
    other_keys.active()
    other = ECAlgorithm.from_jwk(json.dumps(other_keys.jwks()["keys"][0]))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.PyJWS().decode_complete(card, key=other, algorithms=["ES256"])


@pytest.mark.parametrize("card, message", [
    ("abc.def", "three base64url parts"),
    ("a.b.c.d", "three base64url parts"),
    ("eyJ.e30.", "three base64url parts"),
    ("a+b.e30.AA", "three base64url parts"),
    ("e30=.e30.AA", "three base64url parts"),
    (f"{b64(b'not json')}.e30.AA", "header is not a JSON object"),
    (f"{b64(b'[1]')}.e30.AA", "header is not a JSON object"),
    (forged({"alg": "none", "zip": "DEF"}, deflate(b"{}")), "algorithm 'none'"),
    (forged({"alg": "HS256", "zip": "DEF"}, deflate(b"{}")), "algorithm 'HS256'"),
    (forged({"zip": "DEF"}, deflate(b"{}")), "names no signature algorithm"),
    (forged({"alg": "ES256"}, b"{}"), "zip is not DEF"),
    (forged(GOOD_HEADER, b"{}"), "not DEFLATE-compressed"),
    (forged(GOOD_HEADER, zlib.compress(b"{}")), "not DEFLATE-compressed"),        # zlib header: not raw
    (forged(GOOD_HEADER, deflate(b"{}")[:-1]), "not DEFLATE-compressed"),          # cut short
    (forged(GOOD_HEADER, deflate(b"{}") + b"junk"), "not DEFLATE-compressed"),
    (forged(GOOD_HEADER, deflate(b"[]")), "contents are not a JSON object"),
    (forged(GOOD_HEADER, deflate(b"\xff{}")), "contents are not a JSON object"),
    (forged(GOOD_HEADER, deflate(b"[" * 100000)), "contents are not a JSON object"),
])
def test_malformed_cards_are_refused_with_a_sentence(card, message):
    with pytest.raises(jws.CardError, match=message.replace("(", r"\(")):
        jws.parse(card)


def test_non_canonical_base64url_is_refused():
    """Two spellings of the same signature would let a flipped last character pass unnoticed."""
    card = jws.sign(card_payload(), IssuerKeys(FakeStore()).active())
    head, sig = card.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(sig[-1]) ^ 1]           # same 2 data bits, different padding bits
    with pytest.raises(jws.CardError, match="signature is not valid base64url"):
        jws.parse(f"{head}.{sig[:-1]}{twin}")


def test_a_deflate_bomb_is_refused_without_inflating_it():
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    bomb = b"".join(c.compress(bytes(1 << 20)) for _ in range(50)) + c.flush()      # 50 MB of zeros
    card = forged(GOOD_HEADER, bomb)
    tracemalloc.start()
    try:
        with pytest.raises(jws.CardError, match="too large"):
            jws.parse(card)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20                 # the 1 MiB limit and the card itself, not 50 MB
    with pytest.raises(jws.CardError, match="too large"):
        jws.parse(forged(GOOD_HEADER, deflate(b'{"a":"' + b"x" * 2000 + b'"}')), max_inflated=1000)
    assert jws.parse(forged(GOOD_HEADER, deflate(b'{"a":"xx"}')), max_inflated=10)[1] == {"a": "xx"}
