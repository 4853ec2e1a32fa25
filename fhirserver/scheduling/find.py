"""Appointment/$find (ITI-115): proposed Appointments, one per free Slot matching the criteria, in a
searchset Bundle; nothing is stored (docs/scheduling.md).

One indexed Slot search (status free or busy-tentative, start within [start, end), service-type,
specialty, and the Schedule's actor through a chain: schedule.actor=Practitioner/x,
schedule.actor=Location/y), sorted by start; `near` first finds the Locations within the distance
(Location?near=, at most NEAR_LOCATIONS of them) and narrows the chain to them. Held Slots whose hold
has not expired are skipped (an expired hold counts as free: state.py). One more search reads the
Schedules of the page (their actors become the participants).
"""
from __future__ import annotations

import datetime
import uuid

from .. import bounds, jsonio
from ..errors import BadRequest
from ..search.parse import parse_search
from . import state, who
from .book import reference_id

DEFAULT_DAYS = 14            # end defaults to start + this
NEAR_LOCATIONS = 100         # Locations `near` may name
MAX_PAGES = 8                # Slot pages read to fill one answer past held Slots


def find(ctx, params: dict) -> dict:
    one = {k: (v or [None])[0] for k, v in params.items()}
    start = _when(one.get("start"), "start") or state.now()
    end = _when(one.get("end"), "end") or start + datetime.timedelta(days=DEFAULT_DAYS)
    if end <= start:
        raise BadRequest("end must be after start")
    count = min(bounds.parse_int(str(one["_count"]), "_count", low=1), ctx.settings.max_count) \
        if one.get("_count") is not None else 10
    patient = reference_id(one["patient"], "Patient", "patient") if one.get("patient") is not None else None
    if patient is not None and who.patient_confined(ctx.access) and patient != ctx.access.patient:
        who.check_booker(ctx.access, patient, [])
    directory = who.directory(ctx)
    pairs = [("status", "free,busy-tentative"), ("start", f"ge{state.instant(start)}"),
             ("start", f"lt{state.instant(end)}"), ("_sort", "start")]
    for name in ("service-type", "specialty"):
        if one.get(name) is not None:
            pairs.append((name, _token(one[name], name)))
    if one.get("practitioner") is not None:
        practitioner = reference_id(one["practitioner"], "Practitioner", "practitioner")
        pairs.append(("schedule.actor", f"Practitioner/{practitioner}"))
    locations = _locations(directory, one)
    if locations is not None:
        if not locations:
            return _bundle([])
        pairs.append(("schedule.actor", ",".join(f"Location/{loc}" for loc in locations)))
    parsed = parse_search("Slot", pairs, base=ctx.base)
    now, found, cursor = state.now(), [], None
    for _ in range(MAX_PAGES):
        page = directory.search("Slot", parsed.query, sort=parsed.results.sort, limit=count - len(found) + 5,
                                cursor=cursor)
        for v in page.items:
            slot = jsonio.loads_stored(v.body)
            if state.available(slot, now) and len(found) < count:
                found.append(slot)
        cursor = page.next_cursor
        if cursor is None or len(found) >= count:
            break
    schedules = _schedules(ctx, directory, found)
    return _bundle([_proposal(slot, schedules, patient) for slot in found])


def _when(value, name: str) -> datetime.datetime | None:
    if value is None:
        return None
    text = str(value)
    parsed = state.parse(text) if "T" in text else None
    if parsed is None:
        try:
            parsed = datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time(),
                                               datetime.timezone.utc)
        except ValueError:
            raise BadRequest(f"{name} must be a FHIR date or dateTime, got {text[:40]!r}") from None
    return parsed


def _token(value, name: str) -> str:
    """A token search value from a string (system|code) or a Coding / CodeableConcept."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        coding = value if "code" in value else next(iter(value.get("coding") or ()), None)
        if isinstance(coding, dict) and coding.get("code"):
            return f"{coding['system']}|{coding['code']}" if coding.get("system") else str(coding["code"])
    raise BadRequest(f"{name} must be a token (system|code), a Coding or a CodeableConcept")


def _locations(directory, one: dict) -> list[str] | None:
    """The Location ids the answer is limited to (None: no limit)."""
    named = reference_id(one["location"], "Location", "location") if one.get("location") is not None else None
    if one.get("near") is None:
        return None if named is None else [named]
    pairs = [("near", str(one["near"]))] + ([("_id", named)] if named else [])
    parsed = parse_search("Location", pairs)
    return [v.id for v in directory.search("Location", parsed.query, limit=NEAR_LOCATIONS).items]


def _schedules(ctx, directory, slots: list[dict]) -> dict:
    ids = sorted({str((s.get("schedule") or {}).get("reference", ""))[9:] for s in slots} - {""})
    if not ids:
        return {}
    parsed = parse_search("Schedule", [("_id", ",".join(ids))], base=ctx.base)
    return {v.id: jsonio.loads_stored(v.body) for v in directory.search("Schedule", parsed.query, limit=len(ids)).items}


def _proposal(slot: dict, schedules: dict, patient: str | None) -> dict:
    participants = [{"actor": {"reference": f"Patient/{patient}"}, "status": "needs-action"}] if patient else []
    sched = schedules.get(str((slot.get("schedule") or {}).get("reference", ""))[9:]) or {}
    for actor in sched.get("actor") or ():
        if isinstance(actor, dict) and actor.get("reference"):
            participants.append({"actor": {"reference": actor["reference"]}, "status": "needs-action"})
    out = {"resourceType": "Appointment", "status": "proposed", "start": slot.get("start"), "end": slot.get("end"),
           "slot": [{"reference": f"Slot/{slot['id']}"}], "participant": participants}
    for name in ("serviceCategory", "serviceType", "specialty", "appointmentType"):
        if slot.get(name):
            out[name] = slot[name]
    return out


def _bundle(proposals: list[dict]) -> dict:
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(proposals)}
    if proposals:
        bundle["entry"] = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": p, "search": {"mode": "match"}}
                           for p in proposals]
    return bundle
