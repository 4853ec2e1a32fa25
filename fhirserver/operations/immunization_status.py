"""Patient/[id]/$immunization-status (profiles/operations/Patient-immunization-status.json): reads
the checked parameters; the forecast and its storing live in fhirserver/immunization/."""
from __future__ import annotations

import datetime
import re

from ..errors import BadRequest
from ..immunization import status
from .parameters import first

# an R4 date to the day (datatypes.html#date); Python's fromisoformat also takes week dates (2031-W10-1)
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def immunization_status(ctx, rtype, id, params: dict) -> dict:
    as_of = _day(first(params, "date"))
    conditions = frozenset(str(c) for c in params.get("condition") or ())
    persist = first(params, "persist")
    if persist not in (None, True, False):
        # a GET must not change anything (operations.html#request): storing is asked in a POSTed body
        raise BadRequest("persist is given as a valueBoolean in a POSTed Parameters body")
    answer = status.status(ctx, id, as_of, first(params, "schedule"), conditions)
    return status.persist(ctx, id, answer) if persist else answer


def _day(value) -> datetime.date:
    if value is None:
        return datetime.datetime.now(datetime.timezone.utc).date()
    try:
        if isinstance(value, str) and _DAY.match(value):
            return datetime.date.fromisoformat(value)
    except ValueError:
        pass
    raise BadRequest(f"date must be a date (YYYY-MM-DD), got {value!r}")
