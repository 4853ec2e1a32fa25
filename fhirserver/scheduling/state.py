"""A Slot's booking state (slot.html#status) and the server-owned mark saying which Appointment holds it.

- free: bookable;
- busy-tentative + mark with `expires`: held by a pending Appointment ($hold) until that instant; once
  the instant has passed the Slot counts as free again (an expired hold is swept lazily: $find shows the
  Slot, and the next $hold or $book of it takes it and cancels the stale pending Appointment in the same
  transaction);
- busy + mark without `expires`: booked by the Appointment the mark names;
- busy / busy-unavailable / entered-in-error without a mark: closed by the hospital (never bookable).

The mark is an extension on the Slot (SLOT_MARK, parts `appointment` and `expires`); $cancel frees only
Slots whose mark names the cancelled Appointment, so it never frees a Slot someone else took since.
"""
from __future__ import annotations

import copy
import datetime

SLOT_MARK = "https://medport.health/fhir/StructureDefinition/slot-booking"
HOLD_EXPIRES = "https://medport.health/fhir/StructureDefinition/hold-expires"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def instant(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str | None) -> datetime.datetime | None:
    """A FHIR instant/dateTime with a zone (as the Slots the server writes carry), else None."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.timezone.utc)


def mark(slot: dict) -> tuple[str | None, datetime.datetime | None]:
    """(the Appointment id holding the Slot, when its hold expires: None when booked), or (None, None)."""
    for ext in slot.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == SLOT_MARK:
            parts = {e.get("url"): e for e in ext.get("extension") or () if isinstance(e, dict)}
            ref = ((parts.get("appointment") or {}).get("valueReference") or {}).get("reference") or ""
            holder = ref.split("/", 1)[1] if ref.startswith("Appointment/") else None
            return holder, parse((parts.get("expires") or {}).get("valueInstant"))
    return None, None


def available(slot: dict, at: datetime.datetime, appointment: str | None = None) -> bool:
    """Whether the Slot may be taken now by `appointment` (a new one: None)."""
    status = slot.get("status")
    if status == "free":
        return True
    holder, expires = mark(slot)
    if status == "busy-tentative" and holder is not None and expires is not None:
        return holder == appointment or expires <= at
    return False


def stale_holder(slot: dict, appointment: str | None) -> str | None:
    """The pending Appointment whose expired hold `appointment` is taking over, if any."""
    holder, expires = mark(slot)
    if slot.get("status") == "busy-tentative" and holder not in (None, appointment) and expires is not None:
        return holder
    return None


def marked(slot: dict, status: str, appointment: str | None, expires: datetime.datetime | None = None) -> dict:
    """A copy of the Slot with this status and mark (appointment None: free, no mark)."""
    out = copy.deepcopy(slot)
    out["status"] = status
    others = [e for e in out.get("extension") or () if not (isinstance(e, dict) and e.get("url") == SLOT_MARK)]
    if appointment is not None:
        parts = [{"url": "appointment", "valueReference": {"reference": f"Appointment/{appointment}"}}]
        if expires is not None:
            parts.append({"url": "expires", "valueInstant": instant(expires)})
        others.append({"url": SLOT_MARK, "extension": parts})
    if others:
        out["extension"] = others
    else:
        out.pop("extension", None)
    return out


def held_by(slot: dict, appointment: str) -> bool:
    return mark(slot)[0] == appointment
