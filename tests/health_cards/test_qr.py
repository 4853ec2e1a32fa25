"""The QR form: numeric encoding both ways, and a PNG that an independent reader (zxing-cpp)
decodes back to exactly our text; a card too large for one version-22 QR code is refused."""
from __future__ import annotations

import io

import PIL.Image
import pytest
import zxingcpp

from fhirserver.health_cards import jws, qr
from fhirserver.health_cards.issuer_keys import IssuerKeys
from tests.health_cards._cards import FakeStore, issue


def scan(png: bytes):
    [result] = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(png)))
    return result


def test_numeric_encoding():
    assert qr.to_numeric("eyJ.-_z") == "shc:/56762901005077"          # ord(c) - 45, two digits each
    card = issue(IssuerKeys(FakeStore()))
    assert qr.from_numeric(qr.to_numeric(card)) == card
    assert qr.from_numeric(" SHC:/5676\n29 ") == "eyJ"               # scanners' case, pasted line breaks


def test_png_scans_back_to_the_same_text():
    card = issue(IssuerKeys(FakeStore()))
    numeric = qr.to_numeric(card)
    result = scan(qr.png(numeric))
    assert result.text == numeric and result.ec_level == "L"
    assert qr.from_numeric(result.text) == card


def test_the_largest_card_fits_version_22_and_a_larger_one_is_refused():
    largest = "eyJ" + "a" * (qr.MAX_JWS_CHARS - 3)
    numeric = qr.to_numeric(largest)
    result = scan(qr.png(numeric, scale=2))
    assert result.text == numeric and result.extra["Version"] == "22"
    with pytest.raises(qr.TooLargeForQR, match="too large for a QR code"):
        qr.to_numeric(largest + "a")
    with pytest.raises(ValueError, match="too large for a QR code"):
        qr.png(numeric + "52")


@pytest.mark.parametrize("text, message", [
    ("https://example.org/5676", 'does not start with "shc:/"'),
    ("shc:/1/2/567629", "split over several QR codes"),
    ("shc:/", "holds nothing"),
    ("shc:/5676x9", "other than digits"),
    ("shc:/56762", "odd number of digits"),
    ("shc:/567678", "digit pair above 77"),
    ("shc:/567699", "digit pair above 77"),
])
def test_bad_qr_texts_are_refused(text, message):
    with pytest.raises(jws.CardError, match=message):
        qr.from_numeric(text)
