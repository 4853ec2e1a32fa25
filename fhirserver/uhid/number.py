"""UHID numbers: drawing a new one, and reading one in any form a person may type."""
from __future__ import annotations

import re
import secrets

from . import verhoeff

DIGITS = 14
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—.]")     # spaces, dashes of any kind, dots


class InvalidUhid(ValueError):
    """Text that is not a UHID; the message says why, in words a clerk understands."""


def generate() -> str:
    """A fresh UHID in canonical form: 13 random digits (no leading zero, so that spreadsheets and
    phone keypads cannot drop one) from the OS's cryptographic source, then the check digit."""
    body = str(10 ** 12 + secrets.randbelow(9 * 10 ** 12))
    return format_digits(body + verhoeff.check_digit(body))


def format_digits(digits: str) -> str:
    """14 digits -> NN-NNNN-NNNN-NNNN, the canonical (stored and printed) form."""
    return f"{digits[:2]}-{digits[2:6]}-{digits[6:10]}-{digits[10:]}"


def canonical(text: str) -> str:
    """The canonical form of a UHID typed with or without dashes or spaces; InvalidUhid if it is not one."""
    if not isinstance(text, str):
        raise InvalidUhid("A UHID is text of 14 digits")
    digits = _SEPARATORS.sub("", text)
    if not digits.isascii() or (digits and not digits.isdigit()):
        raise InvalidUhid(f"'{text}' is not a UHID: a UHID has only digits (dashes and spaces are optional)")
    if len(digits) != DIGITS:
        raise InvalidUhid(f"'{text}' is not a UHID: it has {len(digits)} digits, a UHID has {DIGITS}")
    if not verhoeff.is_valid(digits):
        raise InvalidUhid(f"'{text}' is not a valid UHID: its check digit does not match "
                          "(a digit is mistyped or two digits are swapped)")
    return format_digits(digits)
