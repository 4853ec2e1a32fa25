"""`open-now` / `open-at` on Location (Med-Port's SearchParameter Location-open-now, docs/directory.md):
whether a Location's hoursOfOperation include an instant, in the Location's time zone (the core
`timezone` extension, an IANA name) or else the deployment's (MEDPORT_DIRECTORY_TIMEZONE).

Opening hours are a weekly pattern, not an indexed value, so the filter runs on the matches of a
`near` search (at most search/near.MAX_NEAR of them): it needs `near`.
"""
from __future__ import annotations

import datetime
import zoneinfo

from ..errors import BadRequest

TIMEZONE_URL = "http://hl7.org/fhir/StructureDefinition/timezone"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def when(name: str, value: str) -> datetime.datetime:
    """open-now=true -> now; open-at=<dateTime with offset> -> that instant (400 otherwise)."""
    if name == "open-now":
        if value != "true":
            raise BadRequest("open-now takes the value true")
        return datetime.datetime.now(datetime.timezone.utc)
    try:
        at = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise BadRequest("open-at needs a dateTime with a time zone offset, e.g. 2026-12-07T09:30:00+05:30, "
                         f"got {value!r}")
    return at


def is_open(location: dict, at: datetime.datetime, default_tz: str) -> bool:
    if location.get("status") == "inactive":
        return False
    local = at.astimezone(_zone(location, default_tz))
    day, time = DAYS[local.weekday()], local.time().replace(tzinfo=None)
    yesterday = DAYS[(local.weekday() - 1) % 7]
    for hours in location.get("hoursOfOperation") or ():
        days = hours.get("daysOfWeek") or ()
        if hours.get("allDay") is True:
            if day in days:
                return True
            continue
        opens, closes = _time(hours.get("openingTime")), _time(hours.get("closingTime"))
        if opens is None or closes is None:
            continue
        if opens <= closes:
            if day in days and opens <= time < closes:
                return True
        elif (day in days and time >= opens) or (yesterday in days and time < closes):   # past midnight
            return True
    return False


def _zone(location: dict, default_tz: str):
    name = next((e.get("valueCode") for e in location.get("extension") or ()
                 if isinstance(e, dict) and e.get("url") == TIMEZONE_URL), None) or default_tz
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(default_tz)


def _time(value) -> datetime.time | None:
    try:
        return datetime.time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
