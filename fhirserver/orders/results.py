"""Results of an order (request.html "basedOn"; diagnosticreport.html, observation.html,
medicationdispense.html; docs/orders.md "Security"): a DiagnosticReport or Observation basedOn a
ServiceRequest or MedicationRequest, a MedicationDispense whose authorizingPrescription is a
MedicationRequest, is shown to the holder of that request (governance/addressed.py). So a token may base a
result only on a request it can read now (the lab that owns the order's Task, the placer, the patient),
or anyone could slip results into another hospital's orders. Refused with 422, the same answer whether
or not the request exists. Only references added by the write are checked (the server's writes none).
"""
from __future__ import annotations

from ..errors import NotFound, Unprocessable
from ..repository import GuardedTransaction
from .parties import Party, local, refs

# result type -> (element, the request types it may name there)
BASED_ON = {
    "DiagnosticReport": ("basedOn", ("ServiceRequest", "MedicationRequest")),
    "Observation": ("basedOn", ("ServiceRequest", "MedicationRequest")),
    "MedicationDispense": ("authorizingPrescription", ("MedicationRequest",)),
}


def check(tx, raw, party: Party, base: str, rtype: str, id: str, new: dict | None, old: dict | None) -> None:
    if new is None or party.server or not isinstance(tx, GuardedTransaction):
        return
    element, requests = BASED_ON[rtype]
    before = set(refs((old or {}).get(element)))
    for reference in refs(new.get(element)):
        target = local(reference, base)
        if reference in before or target is None or target[0] not in requests:
            continue
        try:
            tx.read(target[0], target[1], "read")
        except NotFound:
            raise Unprocessable(f"{rtype}.{element} names {reference}, which is not a request you can read: a "
                                "result is based only on an order its writer can see (docs/orders.md)") from None
