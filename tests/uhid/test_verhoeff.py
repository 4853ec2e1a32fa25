"""The check digit catches every single-digit error and every adjacent swap (the issue's promise)."""
from __future__ import annotations

import random

from fhirserver.uhid import number, verhoeff


def test_known_values():
    # Verhoeff's published example: 236 -> check digit 3; and the classic 12345 -> 1
    assert verhoeff.check_digit("236") == "3" and verhoeff.is_valid("2363")
    assert verhoeff.check_digit("12345") == "1" and verhoeff.is_valid("123451")
    assert not verhoeff.is_valid("2364") and not verhoeff.is_valid("7") and not verhoeff.is_valid("12a4")


def _digits(uhid: str) -> str:
    return uhid.replace("-", "")


def test_every_single_digit_error_and_adjacent_swap_is_detected():
    rng = random.Random(20261130)
    checked = 0
    for _ in range(2000):
        body = str(rng.randrange(10 ** 12, 10 ** 13))
        good = body + verhoeff.check_digit(body)
        assert verhoeff.is_valid(good)
        for i in range(14):
            for d in "0123456789":
                if d != good[i]:
                    assert not verhoeff.is_valid(good[:i] + d + good[i + 1:]), (good, i, d)
                    checked += 1
            if i < 13 and good[i] != good[i + 1]:
                swapped = good[:i] + good[i + 1] + good[i] + good[i + 2:]
                assert not verhoeff.is_valid(swapped), (good, i)
                checked += 1
    assert checked > 2000 * 14 * 9


def test_generated_numbers_are_valid_well_formed_and_distinct():
    drawn = [number.generate() for _ in range(20000)]
    assert len(set(drawn)) == len(drawn)
    for uhid in drawn[:2000]:
        assert len(uhid) == 17 and uhid[2] == uhid[7] == uhid[12] == "-"
        assert verhoeff.is_valid(_digits(uhid)) and uhid[0] != "0"
    # not sequential: the first digits of consecutive draws vary over 1-9
    assert {u[0] for u in drawn} == set("123456789")
