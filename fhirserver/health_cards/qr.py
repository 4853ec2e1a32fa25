"""The card as a QR code: the numeric "shc:/" text and its image.

Spec: https://spec.smarthealth.cards/#health-cards-as-qr-codes and #encoding-qrs. Each character
of the JWS becomes two digits, ord(c) - 45; the QR holds two segments, "shc:/" in byte mode and
the digits in numeric mode, at error correction L. Only single QR codes (version 22 at most, so
a JWS of at most 1195 characters) are made or read: chunking is deprecated by the spec.
"""
from __future__ import annotations

import io
import re

import qrcode
from qrcode.image.pure import PyPNGImage
from qrcode.util import MODE_8BIT_BYTE, MODE_NUMBER, QRData

from .jws import CardError

PREFIX = "shc:/"
MAX_JWS_CHARS = 1195   # the most a version-22 QR at error correction L holds
MAX_VERSION = 22       # 105 x 105 modules: readable when printed at 40 mm x 40 mm
_SMALLEST, _LARGEST = ord("-"), ord("-") + 77   # a JWS uses "-" .. "z"
_CHUNKED = re.compile(r"\d+/\d+/")


class TooLargeForQR(ValueError):
    """The card does not fit in one QR code of version 22 (offer the .smart-health-card file)."""


def to_numeric(jws: str) -> str:
    """"shc:/" followed by two digits per character of the JWS."""
    if len(jws) > MAX_JWS_CHARS:
        raise TooLargeForQR(f"The card is too large for a QR code ({len(jws)} characters; "
                            f"one QR code holds at most {MAX_JWS_CHARS})")
    if any(not _SMALLEST <= ord(c) <= _LARGEST for c in jws):
        raise ValueError("A JWS holds only base64url characters and dots")
    return PREFIX + "".join(f"{ord(c) - _SMALLEST:02d}" for c in jws)


def from_numeric(text: str) -> str:
    """The JWS of a scanned "shc:/" text (whitespace anywhere is ignored)."""
    text = "".join(text.split())
    if text[:len(PREFIX)].lower() != PREFIX:
        raise CardError('This is not a health card QR code (its text does not start with "shc:/")')
    digits = text[len(PREFIX):]
    if _CHUNKED.match(digits):
        raise CardError("This QR code is one part of a card split over several QR codes; "
                        "such split cards are not accepted here (ask for the card as a single QR code or a file)")
    if not digits:
        raise CardError('The QR code\'s text holds nothing after "shc:/"')
    if not digits.isascii() or not digits.isdigit():
        raise CardError('The QR code\'s text holds characters other than digits after "shc:/"')
    if len(digits) % 2:
        raise CardError("The QR code's text has an odd number of digits: it was cut short or misread")
    values = [int(digits[i:i + 2]) for i in range(0, len(digits), 2)]
    if any(v > _LARGEST - _SMALLEST for v in values):
        raise CardError("The QR code's text holds a digit pair above 77: it was misread or altered")
    return "".join(chr(v + _SMALLEST) for v in values)


def png(numeric: str, scale: int = 4) -> bytes:
    """A PNG of the QR code of a numeric "shc:/" text; scale is pixels per module, with the
    standard 4-module quiet zone."""
    digits = numeric[len(PREFIX):]
    if not numeric.startswith(PREFIX) or not digits.isascii() or not digits.isdigit() or len(digits) % 2:
        raise ValueError('Expected "shc:/" followed by an even number of digits')
    if len(digits) > 2 * MAX_JWS_CHARS:
        raise TooLargeForQR(f"The card is too large for a QR code ({len(digits) // 2} characters; "
                            f"one QR code holds at most {MAX_JWS_CHARS})")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, box_size=scale, border=4,
                         image_factory=PyPNGImage)
    code.add_data(QRData(PREFIX.encode("ascii"), mode=MODE_8BIT_BYTE))
    code.add_data(QRData(digits.encode("ascii"), mode=MODE_NUMBER))
    code.make(fit=True)
    if code.version > MAX_VERSION:   # cannot happen within MAX_JWS_CHARS; kept as the rule itself
        raise TooLargeForQR(f"The card needs a version-{code.version} QR code; at most {MAX_VERSION} is allowed")
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()
