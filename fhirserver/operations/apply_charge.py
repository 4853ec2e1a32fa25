"""ChargeItemDefinition/[id]/$apply: the price of a definition for a charge item, patient or encounter
(http://hl7.org/fhir/R4/chargeitemdefinition-operation-apply.html; profiles/operations/
ChargeItemDefinition-apply.json; docs/prices.md).

- The definition must be readable by the caller (operations.invoke checks it as a read: one outside
  the caller's reach answers 404 like an unknown id, so no price leaks).
- Parameters: the official chargeItem (a reference to a stored ChargeItem, or an inline ChargeItem in
  `resource`) and account, plus Med-Port's patient and encounter for a quote without a ChargeItem
  (chargeItem is therefore 0..1 here: one of chargeItem and patient is required).
- Answer: the ChargeItem (the given one, or one made with status planned) with priceOverride = the
  total (pricing/formula.py) x ChargeItem.quantity, and the definition in definitionCanonical (or
  definitionUri when it has no canonical url). Nothing is stored.
- No applicable price (the definition's applicability fails, or no applicable group has a base): 400
  with an OperationOutcome saying so. A malformed definition (expression, component): 400 naming it.
"""
from __future__ import annotations

import copy
import functools

from ..definitions import load_json
from ..errors import BadRequest
from ..pricing import context, money, price_of
from .parameters import first

MEDPORT_PARAMETERS = [
    {"name": "patient", "use": "in", "min": 0, "max": "1", "type": "Reference",
     "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
     "documentation": "Med-Port: the patient to price for when no chargeItem is given (%patient in the "
                      "applicability expressions); with a chargeItem, instead of its subject"},
    {"name": "encounter", "use": "in", "min": 0, "max": "1", "type": "Reference",
     "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Encounter"],
     "documentation": "Med-Port: the encounter in context (%encounter); with a chargeItem, instead of its context"},
]


@functools.lru_cache(maxsize=1)
def apply_definition() -> dict:
    """The official OperationDefinition, with chargeItem optional and Med-Port's patient and encounter."""
    d = copy.deepcopy(load_json("operations/ChargeItemDefinition-apply.json"))
    for p in d["parameter"]:
        if p["name"] == "chargeItem":
            p["min"] = 0
            p["documentation"] += " (Med-Port: or give patient; one of the two is required)"
    d["parameter"][-1:-1] = copy.deepcopy(MEDPORT_PARAMETERS)
    return d


def apply_charge(ctx, rtype, id, params: dict) -> dict:
    chargeitem, patient = first(params, "chargeItem"), first(params, "patient")
    if chargeitem is None and patient is None:
        raise BadRequest("$apply needs a chargeItem, or a patient to price for")
    definition = context.read(ctx, "ChargeItemDefinition", id)
    c = context.build(ctx, chargeitem=chargeitem, patient=patient, encounter=first(params, "encounter"),
                      account=first(params, "account"), code=definition.get("code"))
    item = context.for_definition(c, definition)
    found = price_of(definition, item, c.known)
    if found is None:
        raise BadRequest(f"ChargeItemDefinition/{id} gives no price for this charge item: its applicability "
                         "is not met, or no applicable property group has a base price (docs/prices.md)")
    out = copy.deepcopy(item)
    out["priceOverride"] = money(found.times(context.quantity(item)), found.currency)
    if definition.get("url"):
        canonical = definition["url"] + (f"|{definition['version']}" if definition.get("version") else "")
        out["definitionCanonical"] = [canonical] + [x for x in out.get("definitionCanonical") or ()
                                                    if x != canonical]
    else:
        uri = f"{ctx.base}/ChargeItemDefinition/{id}"
        out["definitionUri"] = [uri] + [x for x in out.get("definitionUri") or () if x != uri]
    return out
