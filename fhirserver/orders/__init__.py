"""Orders between organisations: the rules of the HL7 Clinical Order Workflows (FHIR R4 request.html,
task.html#statemachine, workflow-management.html) that the server enforces on every write of a Task,
ServiceRequest, MedicationRequest or a result based on one: single interactions, PATCH, conditional
writes and each entry of a transaction or batch all pass through interactions/common.store_new_version
and store_delete, which call check() once, after the write is admitted and before it is stored, inside
the same store transaction.

    task_states.py    the Task state machine: legal moves and who makes them
    task_rules.py     a Task write: transition, owner/placer/patient fields, output, reason, completion
    placement.py      security: a Task points only at the placer's request and a patient it can read
    request_rules.py  a request write: patient proposals, an order approving a proposal, revoke
    results.py        a result or dispense is based only on a request its writer can read
    follow_up.py      the server's own follow-up writes (same transaction, unrestricted, custody kept)
    parties.py        who writes: the server, an organisation (placer / owner), a patient

Other types cost one dict lookup. docs/orders.md has the flows.
"""
from __future__ import annotations

from .. import jsonio
from ..repository import GuardedTransaction
from . import parties, request_rules, results, task_rules


def _task(tx, raw, party, base, rtype, id, new, old):
    task_rules.check(tx, raw, party, base, new, old)


RULES = {"Task": _task, "ServiceRequest": request_rules.check, "MedicationRequest": request_rules.check,
         **{rtype: results.check for rtype in results.BASED_ON}}


def check(tx, access, base: str, rtype: str, id: str, new: dict | None, replaced: bytes | None) -> None:
    """Refuse a write the order workflow forbids and make its follow-up writes. tx: the request's guarded
    transaction (or the raw one of server work); new: the content to store (None: a delete); replaced:
    the stored content it replaces (None: a create)."""
    rule = RULES.get(rtype)
    if rule is None:
        return
    raw = tx.raw if isinstance(tx, GuardedTransaction) else tx
    old = jsonio.loads_stored(replaced) if replaced is not None else None
    rule(tx, raw, parties.of(access), base, rtype, id, new, old)
