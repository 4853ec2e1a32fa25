"""The UHID rules of every Patient write (REST create/update/patch, batch, transaction, load).

Lock-free half (plan, before the write lock): a supplied UHID is checked and put in canonical
form; a Patient without one gets a freshly drawn number. Under the write lock (bind): a Patient
that has a UHID keeps it (removing or changing it is a 422), and a new UHID is claimed in the
store's unique index inside the same transaction (a drawn number that is taken is drawn again;
a supplied one that is taken is a 422). Claims are never released, so a deleted patient's UHID
is never issued again.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import jsonio
from ..errors import Issue, ServiceUnavailable, Unprocessable
from . import identifier, number

CLAIM_KIND = "uhid"
MAX_DRAWS = 8       # a draw is taken with probability (issued / 9e12): eight in a row is a broken source


@dataclass
class Plan:
    system: str
    value: str          # canonical
    drawn: bool         # the body carried no UHID: the server drew this one


def plan(system: str, resource: dict) -> Plan:
    """Check and canonicalise the UHID of a Patient body (in place), or add a drawn one."""
    found = identifier.find(resource, system)
    if len(found) > 1:
        raise Unprocessable(f"A Patient has exactly one UHID ({system}); this one carries {len(found)}",
                            expression=tuple(f"Patient.identifier[{i}]" for i, _ in found))
    if not found:
        value = number.generate()
        resource["identifier"] = list(resource.get("identifier") or []) + [identifier.make(system, value)]
        return Plan(system, value, drawn=True)
    i, ident = found[0]
    try:
        value = number.canonical(ident.get("value"))
    except number.InvalidUhid as e:
        raise Unprocessable(str(e), expression=(f"Patient.identifier[{i}].value",)) from None
    resource["identifier"][i] = identifier.completed(ident, value)
    return Plan(system, value, drawn=False)


def bind(tx, plan: Plan, resource: dict, id: str, current) -> bool:
    """Apply permanence and uniqueness inside the write transaction. True when the body's UHID
    changed here (its index rows must be computed again)."""
    have = _held_uhid(tx, current, plan.system)
    if have is not None:
        if current.deleted and plan.drawn:      # a deleted patient brought back keeps their UHID
            _set(resource, plan, have)
            return True
        if plan.drawn:
            raise Unprocessable(f"The UHID {have} of Patient/{id} is permanent: a new version must keep it",
                                expression=("Patient.identifier",))
        if plan.value != have:
            raise Unprocessable(f"The UHID {have} of Patient/{id} is permanent: it cannot become {plan.value}",
                                expression=("Patient.identifier",))
        return False
    redrawn = False
    for _ in range(MAX_DRAWS):
        if tx.claim(CLAIM_KIND, plan.value, id) == id:
            return redrawn
        if not plan.drawn:
            raise Unprocessable(issues=[Issue(f"The UHID {plan.value} is already assigned to another patient",
                                              "duplicate", expression=("Patient.identifier",))])
        _set(resource, plan, number.generate())
        redrawn = True
    raise ServiceUnavailable("No unused UHID could be drawn; try again")


def _set(resource: dict, plan: Plan, value: str) -> None:
    plan.value = value
    identifier.find(resource, plan.system)[0][1]["value"] = value


def _held_uhid(tx, current, system: str) -> str | None:
    """The UHID of the current version, or of the last version before a deletion."""
    if current is None:
        return None
    if current.deleted:
        before = tx.vread(current.type, current.id, current.version - 1) if current.version > 1 else None
        return _held_uhid(tx, before, system) if before is not None else None
    return identifier.value_of(jsonio.loads(current.body), system)
