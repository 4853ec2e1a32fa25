"""http_date writes Last-Modified exactly as email.utils.format_datetime(usegmt=True) did (issue 16
replaced strptime with slicing the fixed-width stored instant)."""
from __future__ import annotations

import datetime
import random
from email.utils import format_datetime

import pytest

from fhirserver.resources.rendering import http_date


def reference(instant: str) -> str:
    when = datetime.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return format_datetime(when, usegmt=True)


def test_same_text_as_format_datetime():
    rng = random.Random(16)
    fixed = ["2026-01-02T03:04:05.678901Z", "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z",
             "2024-02-29T12:00:00.000000Z", "0999-07-04T09:08:07.000001Z", "2026-01-02T03:04:05.5Z"]
    for instant in fixed:
        assert http_date(instant) == reference(instant)
    for _ in range(5000):
        when = datetime.datetime(1, 1, 1) + datetime.timedelta(seconds=rng.randrange(315537897599),
                                                               microseconds=rng.randrange(10 ** 6))
        instant = f"{when.year:04d}-{when:%m-%dT%H:%M:%S.%f}Z"
        assert http_date(instant) == reference(instant)


@pytest.mark.parametrize("bad", ["2026-02-30T00:00:00.000000Z", "2026-01-02T24:00:00.000000Z", "nonsense"])
def test_impossible_instants_still_raise(bad):
    with pytest.raises(ValueError):
        reference(bad)
    with pytest.raises(ValueError):
        http_date(bad)
