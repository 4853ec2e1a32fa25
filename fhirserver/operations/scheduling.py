"""The scheduling operations (IHE ITI Scheduling; docs/scheduling.md): Appointment/$find (ITI-115),
Appointment/$hold (ITI-116), Appointment/$book (ITI-117, reschedule included),
Appointment/[id]/$cancel and Schedule/[id]/$generate-slots. The rules live in fhirserver/scheduling/;
these handlers read the checked parameters and shape the answers."""
from __future__ import annotations

import datetime

from ..errors import BadRequest
from ..scheduling import book, cancel, find, slots
from .parameters import first


def find_operation(ctx, rtype, id, params: dict) -> dict:
    return find.find(ctx, params)


def hold_operation(ctx, rtype, id, params: dict) -> dict:
    return book.bundle(ctx, book.reserve(ctx, book.booking_of(params), hold=True))


def book_operation(ctx, rtype, id, params: dict) -> dict:
    return book.bundle(ctx, book.reserve(ctx, book.booking_of(params), hold=False))


def cancel_operation(ctx, rtype, id, params: dict) -> dict:
    return cancel.cancel(ctx, id, first(params, "reason"))


def generate_slots_operation(ctx, rtype, id, params: dict) -> dict:
    minutes = first(params, "minutes")
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        raise BadRequest("minutes must be an integer") from None
    done = slots.generate(ctx, id, _day(first(params, "start"), "start"), _day(first(params, "end"), "end"),
                          minutes, str(first(params, "timezone", "UTC")))
    return {"resourceType": "Parameters", "parameter": [
        {"name": "created", "valueInteger": done["created"]}, {"name": "existing", "valueInteger": done["existing"]}]}


def _day(value, name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None
