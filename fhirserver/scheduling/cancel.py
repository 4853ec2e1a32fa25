"""Appointment/[id]/$cancel (docs/scheduling.md): the Appointment becomes `cancelled` and every Slot it
holds becomes `free` again, in one store transaction.

The Appointment is read and written with the request's rights (a patient cancels their own; a hospital
the Appointments it holds: only the custodian changes a record, docs/governance.md); the Slots are
freed as a server-side step of the same unit (common.store_server_written), since a patient may not write a hospital's
Slot. Only Slots whose mark names this Appointment are freed (state.py): one taken by someone else
since an expired hold stays theirs.
"""
from __future__ import annotations

from .. import jsonio
from ..errors import BadRequest, Conflict
from ..interactions.common import Prepared, current_or_raise, prepare, store_new_version, store_server_written
from ..storage.base import Version
from . import state

CANCELLABLE = ("proposed", "pending", "booked")


def slot_ids(appointment: dict) -> list[str]:
    out = []
    for ref in appointment.get("slot") or ():
        text = (ref.get("reference") if isinstance(ref, dict) else None) or ""
        if text.startswith("Slot/") and text[5:] not in out:
            out.append(text[5:])
    return out


def prepared_cancel(ctx, id: str, reason: str | None) -> tuple[Version, Prepared]:
    """The Appointment as the request may update it, and its cancelled version (validated outside the
    write lock). 404 when outside the caller's reach; 409 unless proposed, pending or booked."""
    current = current_or_raise(ctx.repo.read("Appointment", id, "update"), "Appointment", id)
    appointment = jsonio.loads_stored(current.body)
    if appointment.get("status") not in CANCELLABLE:
        raise Conflict(f"Appointment/{id} is {appointment.get('status')}: only a proposed, pending or booked "
                       "appointment is cancelled")
    appointment["status"] = "cancelled"
    others = _others(appointment)
    if others:
        appointment["extension"] = others
    else:
        appointment.pop("extension", None)
    if reason:
        if not isinstance(reason, str) or len(reason) > 1000:
            raise BadRequest("reason must be a text of at most 1000 characters")
        appointment["cancelationReason"] = {"text": reason}
    return current, prepare(ctx, "Appointment", appointment)


def _others(appointment: dict) -> list:
    return [e for e in appointment.get("extension") or ()
            if not (isinstance(e, dict) and e.get("url") == state.HOLD_EXPIRES)]


def apply_cancel(ctx, tx, current: Version, prepared: Prepared) -> Version:
    """Inside the unit: the Appointment unchanged since it was read (else 409), its Slots freed, then
    the cancelled version written with the request's rights."""
    now = tx.read("Appointment", current.id, "update")
    if now is None or now.version != current.version:
        raise Conflict(f"Appointment/{current.id} changed meanwhile: read it again")
    free_slots(ctx, tx, current.id, slot_ids(jsonio.loads_stored(current.body)))
    return store_new_version(tx, prepared, current.id, "PUT", now)


def free_slots(ctx, tx, appointment: str, ids: list[str]) -> None:
    for sid in ids:
        version = tx.raw.read("Slot", sid)
        if version is None or version.deleted:
            continue
        slot = jsonio.loads_stored(version.body)
        if state.held_by(slot, appointment):
            store_server_written(tx, ctx.base, state.marked(slot, "free", None), current=version)


def cancel(ctx, id: str, reason: str | None) -> dict:
    current, prepared = prepared_cancel(ctx, id, reason)
    with ctx.repo.transaction() as tx:
        apply_cancel(ctx, tx, current, prepared)
    return prepared.resource
