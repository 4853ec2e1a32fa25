"""What a write may do to a Task (FHIR R4 task.html#statemachine, workflow-management.html; HL7 Clinical
Order Workflows; docs/orders.md):

- the status follows the state machine (task_states.py): an illegal move is 400 naming it;
- the OWNER progresses the Task (received ... completed) and changes only OWNER_FIELDS; the PLACER (its
  custodian) creates, cancels, reassigns and corrects it; the server may make any legal move;
- completed needs Task.output (the DiagnosticReport, MedicationDispense ... that fulfils it), rejected
  and failed need Task.statusReason;
- a Task with no owner is patient-mediated: the patient it is for (or their proxy) chooses the
  organisation once, by setting Task.owner, and changes nothing else (nor deletes the Task);
- the placer places it only on what it may see (placement.py);
- when a fulfilment Task completes, its focus request completes in the same transaction (request.html:
  the request is completed when the activity it asks for is done).
"""
from __future__ import annotations

from .. import jsonio
from ..errors import BadRequest, Forbidden, Unprocessable
from . import follow_up, placement, task_states
from .parties import PATIENT, Party, local, refs

# task.html: the elements the performer reports on; everything else is the placer's
OWNER_FIELDS = frozenset({"status", "businessStatus", "statusReason", "output", "note", "executionPeriod",
                          "lastModified"})
SERVER_FIELDS = frozenset({"meta", "id"})     # the narrative (text) is the placer's: it is what people read
TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"
REASSIGNABLE = ("draft", "requested", "received", "accepted", "ready")


def check(tx, raw, party: Party, base: str, new: dict | None, old: dict | None) -> None:
    if new is None:
        if party.kind == PATIENT:            # for an organisation, deleting is the custodian's (admission)
            raise Forbidden("A patient's token does not delete Tasks: the placer cancels or corrects them "
                            "(docs/orders.md)")
        return
    status = new.get("status")
    if old is None:
        _create(tx, party, base, new, status)
    else:
        _update(tx, party, base, new, old, status)
    if status in task_states.NEEDS_OUTPUT and not new.get("output"):
        raise Unprocessable("A completed Task needs Task.output: a reference to what fulfilled it "
                            "(the DiagnosticReport, the MedicationDispense ...)")
    if status in task_states.NEEDS_REASON and not new.get("statusReason") and (old or {}).get("status") != status:
        raise Unprocessable(f"A {status} Task needs Task.statusReason: why it was {status}")
    if status == "completed" and (old or {}).get("status") != "completed" and fulfils(new):
        _complete_focus(raw, base, new)


def _create(tx, party: Party, base: str, new: dict, status) -> None:
    if party.kind == PATIENT:
        raise Forbidden("A patient's token does not create Tasks: the placer does; a patient chooses "
                        "the owner of a Task placed without one (docs/orders.md)")
    if not party.server and status not in task_states.INITIAL:
        raise BadRequest(f"A new Task starts as {', '.join(task_states.INITIAL)}, not {status!r} "
                         "(task.html#statemachine)")
    placement.check(tx, party, base, new)


def _update(tx, party: Party, base: str, new: dict, old: dict, status) -> None:
    before = old.get("status")
    placer, owner = party.holds(old), party.names(old.get("owner"))
    if status != before:
        who = task_states.mover(before, status)
        if who is None:
            raise BadRequest(f"Task status {before} -> {status} is not allowed; from {before} a Task may go to "
                             f"{', '.join(task_states.legal_next(before)) or 'nothing (it is final)'} "
                             "(task.html#statemachine)")
        if not party.server and not (who == task_states.OWNER and owner or who == task_states.PLACER and placer):
            raise Forbidden(f"Task status {before} -> {status} is the {who}'s move "
                            f"({'Task.owner' if who == task_states.OWNER else 'the organisation that placed it'})")
    changed = {k for k in set(new) | set(old) if new.get(k) != old.get(k)} - SERVER_FIELDS
    if party.server or placer:
        if "owner" in changed and before not in REASSIGNABLE and not party.server:
            raise Unprocessable(f"A {before} Task cannot be given to another owner: cancel it and place a new one")
        if placement.changed(new, old):
            placement.check(tx, party, base, new)
        return
    if party.kind == PATIENT:
        _patient_choice(party, base, new, old, changed)
        return
    if not owner:
        raise Forbidden("Only the Task's owner progresses it and only its placer changes it")
    if changed - OWNER_FIELDS:
        raise Forbidden(f"The owner of a Task changes only {', '.join(sorted(OWNER_FIELDS))}; "
                        f"{', '.join(sorted(changed - OWNER_FIELDS))} is the placer's")


def _patient_choice(party: Party, base: str, new: dict, old: dict, changed: set) -> None:
    """A patient-mediated Task: its patient picks the organisation, once, while the Task is open."""
    mine = local((old.get("for") or {}).get("reference"), base) == ("Patient", party.patient)
    if not mine or changed != {"owner"} or old.get("owner") or old.get("status") not in REASSIGNABLE:
        raise Forbidden("A patient chooses the owner of their own open Task placed without one, once, "
                        "and changes nothing else (docs/orders.md, patient-mediated orders)")
    owner = refs(new.get("owner"))
    if not owner or (local(owner[0], base) or ("",))[0] != "Organization":
        raise Unprocessable("Task.owner must be an Organization (the lab or pharmacy the patient chooses)")


def fulfils(task: dict) -> bool:
    """A fulfilment Task (task-code fulfill, or no other task-code): completing it completes its focus."""
    codings = (task.get("code") or {}).get("coding") or []
    return not any(c.get("system") == TASK_CODES and c.get("code") != "fulfill" for c in codings if isinstance(c, dict))


def _complete_focus(raw, base: str, task: dict) -> None:
    focus = local((refs(task.get("focus")) or [None])[0], base)
    if focus is None or focus[0] not in placement.REQUESTS:
        return
    current = raw.read(*focus)
    if current is None or current.deleted:
        return
    if jsonio.loads_stored(current.body).get("status") in ("active", "on-hold"):
        follow_up.change(raw, base, focus[0], focus[1], status="completed")
