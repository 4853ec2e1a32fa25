"""Reading a UHID in any form a person may type, and refusing what is not one with a reason."""
from __future__ import annotations

import pytest

from fhirserver.uhid import number

GOOD = number.generate()
DIGITS = GOOD.replace("-", "")


@pytest.mark.parametrize("typed", [GOOD, DIGITS, f"{DIGITS[:2]} {DIGITS[2:6]} {DIGITS[6:10]} {DIGITS[10:]}",
                                   f" {GOOD} ", GOOD.replace("-", "–"), f"{DIGITS[:7]}-{DIGITS[7:]}",
                                   GOOD.replace("-", ".")])
def test_every_typed_form_reads_as_the_canonical_one(typed):
    assert number.canonical(typed) == GOOD


@pytest.mark.parametrize("typed, reason", [
    ("12-3456-7890", "has 10 digits"),
    (DIGITS + "0", "has 15 digits"),
    ("AB-1234-5678-9012", "only digits"),
    ("١٢-٣٤٥٦-٧٨٩٠-١٢٣٤", "only digits"),       # Arabic-Indic digits are not ASCII digits
    ("", "has 0 digits"),
])
def test_malformed_text_is_refused_with_the_reason(typed, reason):
    with pytest.raises(number.InvalidUhid, match=reason):
        number.canonical(typed)


def test_a_mistyped_digit_is_refused_as_a_check_digit_mismatch():
    wrong = DIGITS[:5] + str((int(DIGITS[5]) + 1) % 10) + DIGITS[6:]
    with pytest.raises(number.InvalidUhid, match="check digit"):
        number.canonical(wrong)
