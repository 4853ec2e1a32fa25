"""Schedule/[id]/$generate-slots and `medport slots generate` (docs/scheduling.md): free Slots of the
Schedule from the opening hours of its actors, for a range of days, each `minutes` long.

- Opening hours: Location.hoursOfOperation, HealthcareService.availableTime and
  PractitionerRole.availableTime (daysOfWeek, allDay, opening/closing or available start/end times), of
  every actor of the Schedule that has them (the union); HealthcareService/PractitionerRole.notAvailable
  periods are left out. Times of day are read in `timezone` (IANA name, default UTC): R4 has no time zone
  on these resources. Schedule.planningHorizon, when given, bounds the range.
- Idempotent: a Slot's id is derived from the Schedule, its start and its end, so running it again
  (the same days and length) creates only the Slots not there yet; a Slot the hospital deleted or
  changed stays as it is.
- The Slots are written in one unit with the caller's rights (a hospital's Slots are held by it), after
  the same check as a booking (who.check_booker: the Schedule's hospital, or the server).
"""
from __future__ import annotations

import datetime
import hashlib
import zoneinfo

from .. import jsonio
from ..errors import BadRequest, TooCostly
from ..interactions.common import current_or_raise, prepare, store_new_version
from . import state, who

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SLOTS = 20000        # Slots one call may generate
MAX_DAYS = 366


def slot_id(schedule: str, start: str, end: str) -> str:
    return "slot-" + hashlib.sha256(f"Schedule/{schedule}|{start}|{end}".encode()).hexdigest()[:40]


def generate(ctx, schedule_id: str, first: datetime.date, last: datetime.date, minutes: int,
             timezone: str = "UTC") -> dict:
    """Create the missing Slots; {'created': n, 'existing': m}."""
    if not 1 <= minutes <= 24 * 60:
        raise BadRequest("minutes must be between 1 and 1440")
    if last < first:
        raise BadRequest("end must not be before start")
    if (last - first).days >= MAX_DAYS:
        raise TooCostly(f"Generate at most {MAX_DAYS} days at once")
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"Unknown time zone {timezone[:64]!r}: use an IANA name such as Asia/Kolkata") from None
    schedule = jsonio.loads_stored(current_or_raise(ctx.repo.read("Schedule", schedule_id), "Schedule",
                                                    schedule_id).body)
    who.check_booker(ctx.access, None, [schedule])
    hours = _hours(who.directory(ctx) if ctx.access.grants is not None else ctx.repo, schedule)
    lo, hi = _horizon(schedule)
    times = []
    day = first
    while day <= last:
        for opening, closing in hours.get(DAYS[day.weekday()], ()):
            begin = datetime.datetime.combine(day, opening, zone)
            stop = datetime.datetime.combine(day, closing, zone) if closing > opening else \
                datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), zone)
            while begin + datetime.timedelta(minutes=minutes) <= stop:
                end = begin + datetime.timedelta(minutes=minutes)
                if (lo is None or begin >= lo) and (hi is None or end <= hi):
                    times.append((state.instant(begin), state.instant(end)))
                if len(times) > MAX_SLOTS:
                    raise TooCostly(f"This would generate more than {MAX_SLOTS} slots: ask for fewer days")
                begin = end
        day += datetime.timedelta(days=1)
    times = sorted(set(times))
    template = {"resourceType": "Slot", "schedule": {"reference": f"Schedule/{schedule_id}"}, "status": "free"}
    for name in ("serviceCategory", "serviceType", "specialty"):
        if schedule.get(name):
            template[name] = schedule[name]
    created = existing = 0
    with ctx.repo.transaction() as tx:
        for start, end in times:
            sid = slot_id(schedule_id, start, end)
            if tx.raw.read("Slot", sid) is not None:
                existing += 1
                continue
            prepared = prepare(ctx, "Slot", {**template, "id": sid, "start": start, "end": end})
            store_new_version(tx, prepared, sid, "POST", None)
            created += 1
    return {"created": created, "existing": existing}


def _hours(directory, schedule: dict) -> dict[str, list[tuple[datetime.time, datetime.time]]]:
    """day code -> [(opening, closing)] from the Schedule's actors."""
    out: dict[str, list] = {}
    for actor in schedule.get("actor") or ():
        ref = (actor or {}).get("reference") if isinstance(actor, dict) else None
        if not isinstance(ref, str) or ref.count("/") != 1:
            continue
        rtype, rid = ref.split("/")
        if rtype not in ("Location", "HealthcareService", "PractitionerRole"):
            continue
        found = directory.read(rtype, rid)
        if found is None or found.deleted:
            continue
        resource = jsonio.loads_stored(found.body)
        key, open_, close = ("hoursOfOperation", "openingTime", "closingTime") if rtype == "Location" else \
            ("availableTime", "availableStartTime", "availableEndTime")
        for entry in resource.get(key) or ():
            if not isinstance(entry, dict):
                continue
            if entry.get("allDay"):
                span = (datetime.time(), datetime.time())
            elif entry.get(open_) and entry.get(close):
                span = (datetime.time.fromisoformat(entry[open_]), datetime.time.fromisoformat(entry[close]))
            else:
                continue
            for code in entry.get("daysOfWeek") or ():
                if code in DAYS and span not in out.setdefault(code, []):
                    out[code].append(span)
    if not out:
        raise BadRequest("The Schedule's actors publish no opening hours (Location.hoursOfOperation, "
                         "HealthcareService.availableTime or PractitionerRole.availableTime)")
    return out


def _horizon(schedule: dict):
    period = schedule.get("planningHorizon") or {}
    return state.parse(period.get("start")), state.parse(period.get("end"))
