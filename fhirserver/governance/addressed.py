"""What is addressed to an organisation: workflow records another organisation sends it (HL7 Clinical
Order Workflows; docs/orders.md, docs/messages.md). A hospital's token sees what its organisation holds
plus what patients consent to share (policy.py); addressing adds exactly the records of a piece of work
sent to it, never the rest of the patient's chart:

    Task                   owned by O or requested by O (the fulfiller and the placer)
    ServiceRequest         O is its performer, or it is the focus of a Task owned by O
    MedicationRequest      O is its intended performer, or it is the focus of a Task owned by O
    Patient                the patient of a Task owned by O that is still open (the lab must know whom
                           it tests; it stops seeing the Patient once the Task is closed); a Task O
                           holds itself addresses nothing (placement.py lets an organisation that reads
                           a patient place a Task it owns itself; it must not keep the patient visible
                           once a Consent that let it read her is revoked)
    DiagnosticReport,      based on a ServiceRequest that O holds (the result goes back to the placer)
    Observation
    MedicationDispense     dispensed on a MedicationRequest that O holds
    Binary                 O may read its securityContext (binary_context.py: the report's PDF or images
                           follow the report, a file in Task.output the Task), however O reads that
    Communication          O is a recipient or the sender, or it is part of a thread (header) O holds
    CommunicationRequest   O is a recipient, the sender or the requester

Addressing is by Organization reference (the unit the exchange's trust model knows: tokens carry an
`organization`). The nodes are unguarded (Chain/Has guarded=False): they decide visibility themselves,
from records the policy itself reads, as policy.py's consent nodes do.

Changes follow custody (admission: only the custodian changes a record), with one exception: the owner
of a Task progresses it (may_change), and doing so leaves it in the placer's custody
(keeps_custody), so the placer keeps seeing and cancelling its own order.
"""
from __future__ import annotations

from ..search import query as q
from ..search.kinds.reference_kind import RefCond
from ..search.parse import parse_search
from . import binary_context

# Task statuses in which the work is still to be done (task.html#statemachine)
OPEN_TASK = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")


def _to(key: str, org_id: str):
    return q.Match("reference", key, RefCond("Organization", org_id))


def _tasks_owned(org_id: str, open_only: bool = False):
    """Tasks owned by org_id that another party placed (a Task it holds itself addresses nothing)."""
    owned = q.And((_to("Task.owner", org_id), q.Not(_held_by(org_id, "Task"))))
    if not open_only:
        return owned
    return q.And((*owned.parts, parse_search("Task", [("status", ",".join(OPEN_TASK))]).query))


def _held_by(org_id: str, rtype: str):
    return _to(f"{rtype}._custodian", org_id)


def _task(o):
    return (_to("Task.owner", o), _to("Task.requester", o))


def _service_request(o):
    return (_to("ServiceRequest.performer", o), q.Has("Task", "Task.focus", _tasks_owned(o), guarded=False))


def _medication_request(o):
    return (_to("MedicationRequest.intended-performer", o),
            q.Has("Task", "Task.focus", _tasks_owned(o), guarded=False))


def _patient(o):
    return (q.Has("Task", "Task.patient", _tasks_owned(o, open_only=True), guarded=False),)


def _result(rtype: str):
    def nodes(o):
        return (q.Chain(f"{rtype}.based-on", "ServiceRequest", _held_by(o, "ServiceRequest"), guarded=False),)
    return nodes


def _dispense(o):
    return (q.Chain("MedicationDispense.prescription", "MedicationRequest", _held_by(o, "MedicationRequest"),
                    guarded=False),)


def _binary(o):
    return (binary_context.readable_context(),)


def _communication(o):
    header = q.Or((_held_by(o, "Communication"), _to("Communication.recipient", o)))
    return (_to("Communication.recipient", o), _to("Communication.sender", o),
            q.Chain("Communication.part-of", "Communication", header, guarded=False))


def _communication_request(o):
    return tuple(_to(f"CommunicationRequest.{code}", o) for code in ("recipient", "sender", "requester"))


ADDRESSED = {
    "Task": _task,
    "ServiceRequest": _service_request,
    "MedicationRequest": _medication_request,
    "Patient": _patient,
    "DiagnosticReport": _result("DiagnosticReport"),
    "Observation": _result("Observation"),
    "MedicationDispense": _dispense,
    "Binary": _binary,
    "Communication": _communication,
    "CommunicationRequest": _communication_request,
}


def nodes(rtype: str, organization: str) -> tuple:
    """The query nodes of rtype's records addressed to organization ('Organization/<id>')."""
    build = ADDRESSED.get(rtype)
    return build(organization.split("/", 1)[1]) if build is not None else ()


def refs(value) -> list[str]:
    """The literal references of a Reference or a list of them."""
    items = value if isinstance(value, list) else [value]
    return [i.get("reference") for i in items if isinstance(i, dict) and isinstance(i.get("reference"), str)]


def names(value, organization: str) -> bool:
    """Whether a Reference (or a list of them) names organization ('Organization/<id>')."""
    return any(r == organization or r.endswith("/" + organization) for r in refs(value))


# types an addressee changes without holding them: type -> the element naming the addressee
PROGRESSED_BY = {"Task": "owner"}


def may_change(rtype: str, stored: dict | None, new: dict | None, organization: str | None) -> bool:
    """Whether organization, not the custodian, may store `new` over `stored` (None: a delete, never):
    the owner of a Task progresses it and stays its owner (the placer reassigns a Task, not its owner)."""
    element = PROGRESSED_BY.get(rtype)
    if element is None or organization is None or stored is None or new is None:
        return False
    return names(stored.get(element), organization) and names(new.get(element), organization)


def keeps_custody(rtype: str, organization: str | None) -> bool:
    """Whether a write by `organization` leaves the record with the custodian it has (an addressee
    progressing it) instead of taking it into the writer's custody."""
    return organization is not None and rtype in PROGRESSED_BY
