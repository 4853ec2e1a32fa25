"""Who may book (docs/scheduling.md, "Who may book"), and how the directory is read.

- A patient books for themselves: a patient's token (or their family proxy's, which acts with the
  patient's rights: governance/proxy.py) names that patient and nobody else (403 otherwise; the
  Appointment's own admission, smart_auth/admission.py, refuses another patient too).
- A hospital (a client or staff token holding an organisation) books the Slots it publishes: the Slot's
  Schedule must be held by the token's organisation (its custodian, docs/governance.md); another
  hospital's Slot is 403.
- A token of no organisation and no patient (the exchange's own tools, administrators) books what its
  scopes let it write; a regulator never writes.
- Without a token (authorization off, the CLI) the server books.

Slots, Schedules and Locations are the exchange's directory: every authenticated client may read them
(governance/policy.py DIRECTORY). patient/ scopes confine every type to the patient's compartment, where
directory types have no place, so a patient's token could not see a single free Slot; such a token reads
the directory with the public directory's rights (read and search of the directory types and nothing
else: smart_auth/public_directory.py), once it may book at all (create on Appointment).
"""
from __future__ import annotations

from ..errors import Forbidden
from ..governance import custodian
from ..smart_auth.public_directory import PUBLIC_ACCESS


def directory(ctx):
    """The repository that reads Slot, Schedule and Location for this request (see the module)."""
    access = ctx.access
    if access.grants is None:
        return ctx.repo
    decision = access.grants.decide("search-type", "Slot")
    if decision.allowed and not decision.patient_compartment:
        return ctx.repo
    ctx.repo.allow("create", "Appointment")
    return ctx.acting_as(PUBLIC_ACCESS).repo


def patient_confined(access) -> bool:
    """A patient's or a proxy's token: it acts for access.patient and holds no organisation."""
    return access.grants is not None and access.organization is None and access.patient is not None \
        and access.claims.get("role") in ("patient", "related-person")


def check_writer(access) -> None:
    """403 for a token that never books (a regulator's), before anything is read."""
    if access.grants is not None and access.regulator:
        raise Forbidden("A regulator's token reads; it does not book (docs/governance.md, Regulators)")


def check_booker(access, patient: str | None, schedules: list[dict]) -> None:
    """403 unless these rights may book (or hold, cancel, generate) Slots of these Schedules for the
    patient (None: no patient, e.g. generating Slots)."""
    if access.grants is None:
        return
    check_writer(access)
    if patient_confined(access):
        if patient is None or patient != access.patient:
            raise Forbidden("A patient's token books for that patient only (a family proxy's for the patient "
                            "it acts for)")
        return
    if access.organization is not None:
        for schedule in schedules:
            held = custodian.of(schedule)
            if held != access.organization:
                raise Forbidden(f"Schedule/{schedule.get('id')} is published by {held or 'no organisation'}: "
                                "only that hospital's staff and clients book its Slots for patients")


def holder(schedules: list[dict]) -> str | None:
    """The hospital that publishes these Schedules (custodian of the first one held), if any."""
    for schedule in schedules:
        held = custodian.of(schedule)
        if held:
            return held
    return None
