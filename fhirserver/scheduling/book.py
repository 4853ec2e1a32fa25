"""Appointment/$hold (ITI-116) and Appointment/$book (ITI-117), reschedule included (docs/scheduling.md).

What to book is either an `appointment` (a proposed one from $find, or the pending one a $hold
answered: booking it confirms the hold) or `slot` references with a `patient` (and `basedOn` orders:
a lab test's or a vaccination's ServiceRequest; tests, vaccinations and consultations take the same
path, told apart by serviceType and basedOn). `replaces` (an Appointment) makes it a reschedule: the
old Appointment is cancelled and its Slots freed in the same transaction as the new booking, so either
both happen or neither.

Atomicity (why exactly one of N concurrent bookings of a Slot succeeds, on every store and across
processes): inside the one store transaction that writes the Appointment, each Slot is read, must be
available (state.available), and is written busy (or busy-tentative for a hold) as its next version.
The store writes a version only if the resource is still at the version before it
(storage/base.py check_expected), inside the transaction:

- SQLite: a write transaction is BEGIN IMMEDIATE, one writer at a time across every process on the
  file, so the second booking reads the Slot already busy and answers 409.
- MongoDB (replica set, sharded cluster): two transactions writing the same Slot document conflict; the
  loser is aborted and its request runs again from the start (StoreRetry, resources/retry.py), now
  reading the Slot busy: 409. The version in the replace filter catches any write that slipped past.
  A standalone mongod writes one resource per unit and refuses a booking (it writes several).

Storage claims (Transaction.claim) are not used: a claim is never released, so a claim on the Slot would
keep a cancelled Slot unbookable for good, and a claim on (Slot, version) would only repeat what the
version check already guarantees. A VersionConflict raised by the store is answered as the 409.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .. import jsonio
from ..errors import BadRequest, Conflict, VersionConflict
from ..governance import custodian
from ..interactions.common import current_or_raise, new_id, prepare, store_new_version, store_server_written
from ..search.extract import extract
from . import cancel as cancel_mod
from . import state, who

MAX_SLOTS = 20            # Slots one Appointment may take


@dataclass
class Booking:
    slots: list[str]
    patient: str | None
    based_on: list[dict] = field(default_factory=list)
    service_type: list | None = None
    appointment: dict | None = None       # the Appointment given (its id: a held one to confirm)
    replaces: str | None = None


def reference_id(value, rtype: str, name: str) -> str:
    """'Type/id' (a Reference or its text) -> id; 400 for anything else."""
    text = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(text, str) or not text.startswith(rtype + "/") or "/" in text[len(rtype) + 1:] \
            or not text[len(rtype) + 1:]:
        raise BadRequest(f"{name} must be a reference to a {rtype}, e.g. {rtype}/123")
    return text[len(rtype) + 1:]


def booking_of(params: dict) -> Booking:
    given = (params.get("appointment") or [None])[0]
    replaces = (params.get("replaces") or [None])[0]
    replaces = reference_id(replaces, "Appointment", "replaces") if replaces is not None else None
    if given is not None:
        if not isinstance(given, dict) or given.get("resourceType") != "Appointment":
            raise BadRequest("appointment must be an Appointment resource")
        if params.get("slot") or params.get("patient"):
            raise BadRequest("Give either an appointment or slot and patient, not both")
        patients = [reference_id(p["actor"], "Patient", "participant.actor") for p in given.get("participant") or ()
                    if isinstance(p, dict) and isinstance(p.get("actor"), dict)
                    and str(p["actor"].get("reference", "")).startswith("Patient/")]
        if len(set(patients)) > 1:
            raise BadRequest("An appointment is booked for one patient")
        return Booking(cancel_mod.slot_ids(given), patients[0] if patients else None,
                       [b for b in given.get("basedOn") or () if isinstance(b, dict)],
                       given.get("serviceType"), given, replaces)
    slots = []
    for value in params.get("slot") or ():
        sid = reference_id(value, "Slot", "slot")
        if sid not in slots:
            slots.append(sid)
    patient = (params.get("patient") or [None])[0]
    based_on = [{"reference": f"ServiceRequest/{reference_id(b, 'ServiceRequest', 'basedOn')}"}
                for b in params.get("basedOn") or ()]
    return Booking(slots, reference_id(patient, "Patient", "patient") if patient is not None else None,
                   based_on, None, None, replaces)


def reserve(ctx, booking: Booking, hold: bool) -> dict:
    """Hold (pending, until now + MEDPORT_APPOINTMENT_HOLD_S) or book the Slots; the stored Appointment."""
    who.check_writer(ctx.access)
    held = _held(ctx, booking) if booking.appointment and booking.appointment.get("id") and not hold else None
    if held is not None:
        booking = Booking(booking.slots or cancel_mod.slot_ids(held[1]), booking.patient or _patient_of(held[1]),
                          booking.based_on, booking.service_type, held[1], booking.replaces)
    if not booking.slots:
        raise BadRequest("Name the Slot(s) to book: slot parameters or appointment.slot")
    if len(booking.slots) > MAX_SLOTS:
        raise BadRequest(f"An appointment takes at most {MAX_SLOTS} slots")
    if booking.patient is None:
        raise BadRequest("Name the patient: the patient parameter or a participant of the appointment")
    directory = who.directory(ctx)
    slots = {sid: jsonio.loads_stored(current_or_raise(directory.read("Slot", sid), "Slot", sid).body)
             for sid in booking.slots}
    schedules = _schedules(directory, slots)
    who.check_booker(ctx.access, booking.patient, list(schedules.values()))
    now = state.now()
    expires = now + datetime.timedelta(seconds=ctx.settings.appointment_hold_s) if hold else None
    for sid, slot in slots.items():      # a first look (committed data); the unit decides
        if not (state.available(slot, now, held[0].id if held else None)
                or (booking.replaces and state.held_by(slot, booking.replaces))):
            raise Conflict(f"Slot/{sid} is no longer available")
    replaced = cancel_mod.prepared_cancel(ctx, booking.replaces, "rescheduled") if booking.replaces else None
    if replaced is not None and _patient_of(jsonio.loads_stored(replaced[0].body)) != booking.patient:
        raise BadRequest(f"Appointment/{booking.replaces} is another patient's: a reschedule keeps the patient")
    appointment = _appointment(booking, slots, schedules, "pending" if hold else "booked", expires, held)
    prepared = prepare(ctx, "Appointment", appointment)
    hospital = who.holder(list(schedules.values()))
    if hospital and ctx.access.organization is None and ctx.access.grants is not None:
        # a patient's (or proxy's) booking is held by the publishing hospital, so that hospital sees it
        # under the access rules (it holds it); the patient sees it in their compartment
        custodian.stamp(prepared.resource, hospital)
        prepared.rows = extract(prepared.resource, ctx.base)
    aid = held[0].id if held else new_id()
    try:
        with ctx.repo.transaction() as tx:
            if replaced is not None:
                cancel_mod.apply_cancel(ctx, tx, *replaced)
            current = None
            if held is not None:
                current = tx.read("Appointment", aid, "update")
                if current is None or current.version != held[0].version:
                    raise Conflict(f"Appointment/{aid} changed meanwhile: read it again")
            _take(ctx, tx, slots, aid, "busy-tentative" if hold else "busy", expires, now)
            store_new_version(tx, prepared, aid, "PUT" if current is not None else "POST", current)
    except VersionConflict:
        raise Conflict("The requested slot is no longer available (booked concurrently)") from None
    return prepared.resource


def _held(ctx, booking: Booking):
    """(version, Appointment) of the pending Appointment to confirm, as the request may update it."""
    aid = str(booking.appointment["id"])
    version = current_or_raise(ctx.repo.read("Appointment", aid, "update"), "Appointment", aid)
    stored = jsonio.loads_stored(version.body)
    if stored.get("status") != "pending":
        raise Conflict(f"Appointment/{aid} is {stored.get('status')}: only a pending (held) appointment is booked "
                       "by its id")
    return version, stored


def _patient_of(appointment: dict) -> str | None:
    for p in appointment.get("participant") or ():
        ref = str(((p or {}).get("actor") or {}).get("reference") or "")
        if ref.startswith("Patient/"):
            return ref[8:]
    return None


def _schedules(directory, slots: dict) -> dict:
    out = {}
    for sid, slot in slots.items():
        sched = reference_id(slot.get("schedule"), "Schedule", f"Slot/{sid}.schedule")
        if sched not in out:
            out[sched] = jsonio.loads_stored(current_or_raise(directory.read("Schedule", sched), "Schedule",
                                                              sched).body)
    return out


def _appointment(booking: Booking, slots: dict, schedules: dict, status: str, expires, held) -> dict:
    """The Appointment to store: the Slots' times, the patient and the Schedules' actors as participants."""
    starts = [s.get("start") for s in slots.values()]
    ends = [s.get("end") for s in slots.values()]
    first = next(iter(slots.values()))
    base = dict(held[1]) if held else {}
    if booking.appointment and not held:
        base = {k: v for k, v in booking.appointment.items() if k in KEPT}
    out = {**base, "resourceType": "Appointment", "status": status,
           "start": min(starts, key=lambda t: state.parse(t)), "end": max(ends, key=lambda t: state.parse(t)),
           "slot": [{"reference": f"Slot/{sid}"} for sid in slots]}
    out.pop("meta", None)
    for name in ("serviceType", "specialty", "appointmentType", "serviceCategory"):
        value = (booking.service_type if name == "serviceType" else None) or out.get(name) or first.get(name)
        if value:
            out[name] = value
    if booking.based_on:
        out["basedOn"] = booking.based_on
    participants = [{"actor": {"reference": f"Patient/{booking.patient}"}, "status": "accepted"}]
    seen = {f"Patient/{booking.patient}"}
    for schedule in schedules.values():
        for actor in schedule.get("actor") or ():
            ref = (actor or {}).get("reference") if isinstance(actor, dict) else None
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                participants.append({"actor": {"reference": ref}, "status": "accepted"})
    out["participant"] = participants
    others = [e for e in out.get("extension") or () if not (isinstance(e, dict) and e.get("url") == state.HOLD_EXPIRES)]
    if expires is not None:
        others.append({"url": state.HOLD_EXPIRES, "valueInstant": state.instant(expires)})
    if others:
        out["extension"] = others
    else:
        out.pop("extension", None)
    out.pop("id", None)
    return out


# what a client's proposed Appointment may carry into the booking (times, slots, status and
# participants are the server's)
KEPT = ("serviceType", "specialty", "appointmentType", "serviceCategory", "reasonCode", "description",
        "comment", "patientInstruction", "priority", "basedOn", "extension")


def _take(ctx, tx, slots: dict, aid: str, status: str, expires, now) -> None:
    """Claim each Slot inside the transaction (see the module: the version check makes it exclusive);
    a stale hold it takes over is cancelled in the same unit."""
    for sid, seen in slots.items():
        version = tx.raw.read("Slot", sid)       # directory data, read as it is inside the unit
        if version is None or version.deleted:
            raise Conflict(f"Slot/{sid} is no longer available")
        slot = jsonio.loads_stored(version.body)
        if not state.available(slot, now, aid) or any(slot.get(k) != seen.get(k) for k in ("start", "end", "schedule")):
            raise Conflict(f"Slot/{sid} is no longer available")
        stale = state.stale_holder(slot, aid)
        store_server_written(tx, ctx.base, state.marked(slot, status, aid, expires), current=version)
        if stale is not None:
            _expire(ctx, tx, stale)


def _expire(ctx, tx, aid: str) -> None:
    """Sweep: the pending Appointment whose hold expired and whose Slot was just taken is cancelled."""
    version = tx.raw.read("Appointment", aid)
    if version is None or version.deleted:
        return
    stored = jsonio.loads_stored(version.body)
    if stored.get("status") != "pending":
        return
    stored["status"] = "cancelled"
    stored["cancelationReason"] = {"text": "the hold expired and its slot was booked by someone else"}
    store_server_written(tx, ctx.base, stored, current=version)


def bundle(ctx, appointment: dict) -> dict:
    """ITI-117's answer: a Bundle holding the Appointment."""
    return {"resourceType": "Bundle", "type": "searchset", "total": 1,
            "entry": [{"fullUrl": f"{ctx.base}/Appointment/{appointment['id']}", "resource": appointment,
                       "search": {"mode": "match"}}]}
