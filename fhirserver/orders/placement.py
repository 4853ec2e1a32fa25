"""Placing a Task: what the placer may point it at (docs/orders.md, "Security").

A Task addressed to an organisation shares records with it (governance/addressed.py: the Task, its focus
request, the patient while the Task is open). So only the placer decides what a Task is about, and only
about what it may itself see:

- Task.focus is a ServiceRequest or MedicationRequest the writer holds (its custodian; the server any);
- Task.for is the focus's subject (a Task cannot borrow a request to reach another patient);
- the writer can read that patient now (through the request's own guarded transaction); when it cannot,
  the answer is the same 403 whether or not the patient exists (no existence oracle);
- Task.owner, when given, is an Organization (addressing is by organisation: tokens carry one).

These are checked whenever a Task is created and whenever its focus, for or owner changes.
"""
from __future__ import annotations

from .. import jsonio
from ..errors import Forbidden, NotFound, Unprocessable
from ..repository import GuardedTransaction
from .parties import Party, local, refs

REQUESTS = ("ServiceRequest", "MedicationRequest")
PLACED = ("focus", "for", "owner")


def changed(new: dict, old: dict | None) -> bool:
    return old is None or any(new.get(k) != old.get(k) for k in PLACED)


def check(tx, party: Party, base: str, task: dict) -> dict | None:
    """Refuse a Task placed outside the writer's reach; returns its focus request (None: no focus). The
    server's own writes (imports, authorization off) are not judged."""
    if party.server:
        return None
    raw = tx.raw if isinstance(tx, GuardedTransaction) else tx
    owner = refs(task.get("owner"))
    if owner and (local(owner[0], base) or ("",))[0] != "Organization":
        raise Unprocessable("Task.owner must be an Organization (the exchange addresses work to organisations)")
    focus = _focus(raw, party, base, task)
    if focus is None:
        if task.get("for") is not None:
            raise Unprocessable("A Task for a patient needs a focus: the ServiceRequest or MedicationRequest "
                                "it fulfils, about that patient")
        return None
    subject = local((focus.get("subject") or {}).get("reference"), base)
    patient = local((task.get("for") or {}).get("reference"), base)
    if subject is None or patient != subject:
        raise Unprocessable("Task.for must be the subject of the request in Task.focus")
    if isinstance(tx, GuardedTransaction):
        try:
            tx.read(subject[0], subject[1], "read")
        except NotFound:
            raise Forbidden("A Task may only be placed for a patient your organisation can read "
                            "(docs/orders.md, Security)") from None
    return focus


def _focus(raw, party: Party, base: str, task: dict) -> dict | None:
    given = refs(task.get("focus"))
    if not given:
        return None
    target = local(given[0], base)
    refused = Forbidden("Task.focus must be a ServiceRequest or MedicationRequest your organisation placed "
                        "(holds): a Task shares its focus with its owner (docs/orders.md, Security)")
    if target is None or target[0] not in REQUESTS:
        raise refused
    found = raw.read(*target)
    request = jsonio.loads_stored(found.body) if found is not None and not found.deleted else None
    if request is None or not party.holds(request):
        raise refused
    return request
