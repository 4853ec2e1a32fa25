"""A regex filter comes from a ValueSet a client may send ($expand valueSet=...): its cost is bounded
whatever the pattern (valueset-filter-operator regex). Adjacent overlapping quantifiers hold no
group, so no structural rule catches them; with Python's re, `.*` twelve times before a `!` over the
v3-ActCode displays held the interpreter for minutes."""
from __future__ import annotations

import time

import pytest

from fhirserver.errors import BadRequest, TooCostly
from fhirserver.terminology import filters
from tests.terminology._defs import terminology

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def regex_vs(pattern: str, prop: str = "display") -> dict:
    return {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ACT, "filter": [{"property": prop, "op": "regex", "value": pattern}]}]}}


@pytest.mark.parametrize("pattern", [
    ".*" * 12 + "!", "[a-z ]*" * 10 + "!", "(?:.*)" * 10 + "!", r"\w*\s*" * 12 + "#", "(a|b|c|d|e).*" * 8 + "!",
])
def test_polynomial_backtracking_is_bounded(pattern):
    terminology().expand(regex_vs("^A"), count=1)       # the code system compiled before the clock starts
    start = time.monotonic()
    try:
        got = terminology().expand(regex_vs(pattern), count=5)
        assert got["expansion"]["total"] == 0
    except TooCostly:
        pass
    assert time.monotonic() - start < 3


def test_a_regex_past_the_time_budget_is_too_costly(monkeypatch):
    monkeypatch.setattr(filters, "REGEX_BUDGET", 0.0)
    with pytest.raises(TooCostly):
        terminology().expand(regex_vs("A.*"))


def test_plain_regexes_still_select():
    got = terminology().expand(regex_vs("AMB|EMER", prop="code"))["expansion"]
    assert {c["code"] for c in got["contains"]} == {"AMB", "EMER"}
    with pytest.raises(BadRequest):
        terminology().expand(regex_vs("(a+)+$"))
