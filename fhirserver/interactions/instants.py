"""FHIR instants as fixed-width UTC strings, comparable as text with stored lastUpdated values."""
from __future__ import annotations

import datetime
import re

from ..errors import BadRequest

_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def now_instant() -> str:
    """UTC instant with microseconds, fixed width so that strings sort as times."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(value: str, name: str) -> str:
    """'2026-01-02T03:04:05+05:30' -> '2026-01-01T21:34:05.000000Z' (datatypes.html#instant)."""
    if not _INSTANT.match(value):
        raise BadRequest(f"{name} must be a FHIR instant such as 2026-01-02T03:04:05Z, got {value!r}")
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise BadRequest(f"Invalid {name} {value!r}: {e}") from None
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
