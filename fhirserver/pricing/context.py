"""What a price is computed for (docs/prices.md, "Context"): the ChargeItem the applicability
conditions see as %context, and the Patient, Encounter, HealthcareService and Account they see as
%patient, %encounter, %service and %account.

- The ChargeItem is the one given (a reference to a stored ChargeItem, or one inline, not stored), or
  one made for the occasion (status planned, the definition's code, the patient as subject, the
  encounter as context, quantity 1).
- The Patient is the `patient` parameter, else the ChargeItem's subject when it is a Patient; the
  Encounter the `encounter` parameter, else the ChargeItem's context when it is an Encounter.
- Every resource is read through the request's repository, as a read: one the caller may not read
  answers exactly like one that does not exist (404), and reading it is audited.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .. import jsonio
from ..errors import BadRequest
from ..interactions import read as read_i

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass
class PriceContext:
    chargeitem: dict
    known: dict = field(default_factory=dict)      # variable name -> resource (patient, encounter, ...)
    made: bool = False                             # the ChargeItem was made here (not given)


def read(ctx, rtype: str, id: str) -> dict:
    """The current resource, as a read answers it (404 unknown or out of reach, 410 deleted)."""
    return jsonio.loads_stored(read_i.read(ctx, rtype, id).version.body)


def local_id(ctx, value, rtype: str, where: str, strict: bool = True) -> str | None:
    """The id of a reference to a `rtype` on this server (a Reference, or its text from the query
    string). strict: anything else is a 400; otherwise None."""
    ref = value.get("reference") if isinstance(value, dict) else value
    if isinstance(ref, str):
        ref = ref.removeprefix(ctx.base.rstrip("/") + "/")
        kind, _, id = ref.partition("/")
        if kind == rtype and _ID.match(id):
            return id
    if strict:
        raise BadRequest(f"{where} must reference a {rtype} on this server ({rtype}/[id]), got {str(ref)[:80]!r}")
    return None


def build(ctx, *, chargeitem=None, patient=None, encounter=None, account=None, service: dict | None = None,
          code: dict | None = None) -> PriceContext:
    """The context from the operation's parameters (references or, for chargeItem, an inline resource)."""
    item, made = _chargeitem(ctx, chargeitem), False
    patient_id = local_id(ctx, patient, "Patient", "patient") if patient is not None else \
        local_id(ctx, (item or {}).get("subject"), "Patient", "ChargeItem.subject", strict=False)
    encounter_id = local_id(ctx, encounter, "Encounter", "encounter") if encounter is not None else \
        local_id(ctx, (item or {}).get("context"), "Encounter", "ChargeItem.context", strict=False)
    known = {}
    if patient_id is not None:
        known["patient"] = read(ctx, "Patient", patient_id)
    if encounter_id is not None:
        known["encounter"] = read(ctx, "Encounter", encounter_id)
    if account is not None:
        known["account"] = read(ctx, "Account", local_id(ctx, account, "Account", "account"))
    if service is not None:
        known["service"] = service
    if item is None:
        made = True
        item = {"resourceType": "ChargeItem", "status": "planned", "code": code or {"text": "charge"}}
        if patient_id is not None:
            item["subject"] = {"reference": f"Patient/{patient_id}"}
        if encounter_id is not None:
            item["context"] = {"reference": f"Encounter/{encounter_id}"}
        item["quantity"] = {"value": 1}
    return PriceContext(item, known, made)


def for_definition(context: PriceContext, definition: dict) -> dict:
    """The ChargeItem that prices `definition`: a made one takes the definition's code."""
    if not context.made:
        return context.chargeitem
    item = dict(context.chargeitem)
    item["code"] = definition.get("code") or {"text": definition.get("title") or "charge"}
    return item


def quantity(chargeitem: dict) -> Decimal:
    """ChargeItem.quantity.value (1 when absent): how many units the price is for."""
    value = (chargeitem.get("quantity") or {}).get("value", 1) if isinstance(chargeitem.get("quantity"), dict) \
        else 1
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        d = Decimal(getattr(value, "text", None) or str(value))
    except InvalidOperation:
        raise BadRequest(f"ChargeItem.quantity.value must be a decimal, got {str(value)[:40]!r}") from None
    if not d.is_finite() or d < 0 or d.adjusted() >= 9:
        raise BadRequest(f"ChargeItem.quantity.value must be between 0 and 10^9, got {str(value)[:40]!r}")
    return d


def _chargeitem(ctx, value) -> dict | None:
    if value is None:
        return None
    if isinstance(value, dict) and "resourceType" in value:
        if value.get("resourceType") != "ChargeItem":
            raise BadRequest(f"chargeItem must be a ChargeItem, got a {str(value['resourceType'])[:40]}")
        return copy.deepcopy(value)
    return read(ctx, "ChargeItem", local_id(ctx, value, "ChargeItem", "chargeItem"))
