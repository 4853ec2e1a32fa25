"""The card as a compact JWS: ES256 signature, DEFLATE-compressed minified JSON payload.

Spec: https://spec.smarthealth.cards/#health-cards-are-compact (header alg "ES256", zip "DEF",
kid = RFC 7638 thumbprint; payload minified, then raw DEFLATE without zlib header) and RFC 7515
(compact serialization; Appendix A.3 for the ES256 signature as the 64 bytes r || s).

ECDSA signatures are malleable: if (r, s) is valid, so is (r, n - s) (n: the order of P-256), so the
same card would have two valid encodings. Cards are signed with the low s (s <= n/2, as Bitcoin's
BIP 62 and libsecp256k1 require) and check_signature() refuses a high s unless told otherwise, so a
card of this server has exactly one valid encoding.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import zlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from joserfc.jwk import ECKey

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_COORD = 32   # bytes in a P-256 coordinate, and in each of r and s
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551   # n (SEC 2, secp256r1)
_HALF_ORDER = P256_ORDER // 2


class CardError(ValueError):
    """The text is not a well-formed health card; the message is a sentence for a person."""


def sign(payload: dict, key: ECKey) -> str:
    """The compact JWS of a card: header {"alg":"ES256","zip":"DEF","kid":<thumbprint>}."""
    header = {"alg": "ES256", "zip": "DEF", "kid": key.thumbprint()}
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(_minified(payload)) + compressor.flush()
    signing_input = f"{_b64(_minified(header))}.{_b64(body)}".encode("ascii")
    r, s = decode_dss_signature(key.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    if s > _HALF_ORDER:             # the one canonical encoding: low s
        s = P256_ORDER - s
    return f"{signing_input.decode('ascii')}.{_b64(r.to_bytes(_COORD, 'big') + s.to_bytes(_COORD, 'big'))}"


def parse(jws: str, max_inflated: int = 1 << 20) -> tuple[dict, dict, bytes, bytes]:
    """(header, payload, signing input, signature) of a compact JWS, checked for form only: the
    signature is not verified. The payload is inflated at most to max_inflated bytes, so a
    deflate bomb costs no more memory than that."""
    parts = jws.strip().split(".")
    if len(parts) != 3 or not all(parts) or not all(_B64URL.fullmatch(p) for p in parts):
        raise CardError("The card is not a signed health card (a JWS of three base64url parts separated by dots)")
    header = _json_object(_unb64(parts[0], "header"), "header")
    if "alg" not in header:
        raise CardError("The card's header names no signature algorithm; health cards use ES256")
    if header["alg"] != "ES256":
        raise CardError(f"The card is signed with algorithm {header['alg']!r}; health cards use ES256")
    if header.get("zip") != "DEF":
        raise CardError("The card's contents are not compressed as health cards require (header zip is not DEF)")
    payload = _json_object(_inflate(_unb64(parts[1], "contents"), max_inflated), "contents")
    signature = _unb64(parts[2], "signature")
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def check_signature(signing_input: bytes, signature: bytes, jwk: dict, low_s_only: bool = True) -> bool:
    """Whether signature (r || s, 64 bytes) is a valid ES256 signature of signing_input by the
    public P-256 key jwk. Any malformed key or signature is simply not a match. low_s_only: a
    signature whose s is above n/2 (the malleated twin of a low-s one) is not a match either."""
    if len(signature) != 2 * _COORD:
        return False
    if low_s_only and int.from_bytes(signature[_COORD:], "big") > _HALF_ORDER:
        return False
    try:
        public_key = _public_key(jwk.get("x"), jwk.get("y")) if jwk.get("crv") == "P-256" else None
    except (ValueError, TypeError, binascii.Error):
        return False
    if public_key is None:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:_COORD], "big"), int.from_bytes(signature[_COORD:], "big"))
    try:
        public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@functools.lru_cache(maxsize=256)
def _public_key(x: str, y: str) -> ec.EllipticCurvePublicKey:
    """The key of a point; cached, since building it checks the point is on the curve."""
    xb, yb = _unb64(x, "key"), _unb64(y, "key")
    if len(xb) != _COORD or len(yb) != _COORD:
        raise ValueError("not a P-256 point")
    return ec.EllipticCurvePublicNumbers(int.from_bytes(xb, "big"), int.from_bytes(yb, "big"),
                                         ec.SECP256R1()).public_key()


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise CardError("The card's contents are not DEFLATE-compressed as health cards require") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise CardError(f"The card's contents are too large (over {limit} bytes once uncompressed)")
    if not inflater.eof or inflater.unused_data:
        raise CardError("The card's contents are not DEFLATE-compressed as health cards require")
    return out


def _json_object(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise CardError(f"The card's {what} are not a JSON object" if what == "contents"
                        else f"The card's {what} is not a JSON object")
    return value


def _minified(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict base64url: only the canonical spelling of some bytes is accepted, so no two texts
    decode to the same signature or contents."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        data = None
    if data is None or _b64(data) != text:
        raise CardError(f"The card's {what} is not valid base64url") from None
    return data
