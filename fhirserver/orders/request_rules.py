"""What a write may do to a request (ServiceRequest, MedicationRequest: request.html, workflow-management.html,
HL7 Clinical Order Workflows; docs/orders.md):

- only its placer changes it: for an organisation that is custody (smart_auth/access.py, admission); a
  patient (or their proxy), whose edits keep the custodian, changes or deletes only a proposal that no
  organisation holds (her own), never a hospital's order or proposal;
- a patient (or their proxy) writes only proposals (intent=proposal): a patient asks, a prescriber orders
  (request.html, "intent": proposal "suggestion made by someone/something that does not have an intention
  to ensure it occurs and without providing an authorization to act");
- an order basedOn a proposal acts on it: the proposal is completed by the server in the same
  transaction; the writer must be able to read the proposal (else 422, the same whether or not it exists);
- revoking a request (status revoked or entered-in-error, or deleting it) cancels its open Tasks in the
  same transaction; a Task whose work has started (in-progress, on-hold) cannot be cancelled outright
  (task.html#statemachine), so the revoke is refused with 409 naming it: the placer asks the performer to
  stop it first (an abort Task, or the owner fails it).
"""
from __future__ import annotations

from .. import jsonio
from ..errors import Conflict, Forbidden, NotFound, Unprocessable
from ..governance import custodian
from ..repository import GuardedTransaction
from . import follow_up, task_states
from .parties import PATIENT, Party, local, refs

WITHDRAWN = ("revoked", "entered-in-error")
ORDERS = ("order", "original-order", "reflex-order", "filler-order", "instance-order", "plan", "directive")


def check(tx, raw, party: Party, base: str, rtype: str, id: str, new: dict | None, old: dict | None) -> None:
    if old is not None and party.kind == PATIENT and (old.get("intent") != "proposal" or custodian.of(old)):
        raise Forbidden(f"A patient's token changes or deletes only her own {rtype} proposals; this one "
                        "is its placer's (docs/orders.md)")
    if new is not None and party.kind == PATIENT and new.get("intent") != "proposal":
        raise Forbidden(f"A patient's token writes a {rtype} only as a proposal (intent=proposal); a "
                        "prescriber turns it into an order (docs/orders.md)")
    if new is not None and old is None and new.get("intent") in ORDERS:
        _approve(tx, raw, party, base, rtype, new)
    withdrawn = new is None or (new.get("status") in WITHDRAWN and (old or {}).get("status") not in WITHDRAWN)
    if old is not None and withdrawn:
        _cancel_tasks(raw, base, rtype, id)


def _approve(tx, raw, party: Party, base: str, rtype: str, order: dict) -> None:
    for reference in refs(order.get("basedOn")):
        target = local(reference, base)
        if target is None or target[0] != rtype:
            continue
        if isinstance(tx, GuardedTransaction) and not party.server:
            try:
                tx.read(target[0], target[1], "read")
            except NotFound:
                raise Unprocessable(f"{rtype}.basedOn names {reference}, which is not a {rtype} your "
                                    "organisation can read") from None
        current = raw.read(*target)
        if current is None or current.deleted:
            continue
        proposal = jsonio.loads_stored(current.body)
        if proposal.get("intent") == "proposal" and proposal.get("status") in ("active", "draft", "on-hold"):
            follow_up.change(raw, base, target[0], target[1], status="completed")


def _cancel_tasks(raw, base: str, rtype: str, id: str) -> None:
    tasks = follow_up.open_tasks(raw, rtype, id)
    if len(tasks) > follow_up.MAX_TASKS:
        raise Unprocessable(f"{rtype}/{id} has more than {follow_up.MAX_TASKS} open Tasks: cancel them first")
    started = [t for t in tasks if t.get("status") in task_states.STARTED]
    if started:
        names = ", ".join(f"Task/{t['id']} ({t['status']})" for t in started)
        raise Conflict(f"{rtype}/{id} cannot be revoked while its work has started: {names}; ask the "
                       "performer to stop it (an abort Task) or wait until it is completed or failed")
    for task in tasks:
        follow_up.change(raw, base, "Task", task["id"], status="cancelled",
                         statusReason={"text": f"{rtype}/{id} was revoked by its placer"})
