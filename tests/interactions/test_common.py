"""Rules shared by the write interactions."""
from __future__ import annotations

import pytest

from fhirserver.errors import BadRequest
from fhirserver.interactions.common import check_id, if_match_version, now_instant
from fhirserver.interactions.instants import parse_instant


def test_if_match_forms():
    assert if_match_version('W/"3"') == 3 and if_match_version('"3"') == 3 and if_match_version(None) is None
    with pytest.raises(BadRequest):
        if_match_version('W/"three"')


def test_ids():
    check_id("a-B.9")
    for bad in ("", "a" * 65, "a_b", "a/b", "../x"):
        with pytest.raises(BadRequest):
            check_id(bad)


def test_instants_compare_as_text():
    assert parse_instant("2026-01-02T03:04:05+05:30", "_since") == "2026-01-01T21:34:05.000000Z"
    assert parse_instant("2026-01-01T00:00:00Z", "x") < now_instant()
    with pytest.raises(BadRequest):
        parse_instant("2026-01-01", "_since")
