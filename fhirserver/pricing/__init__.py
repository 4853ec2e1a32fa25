"""Prices of what a hospital offers (docs/prices.md): ChargeItemDefinitions linked to the
HealthcareService they price (useContext, code `venue`, valueReference), their applicability
conditions (applicability.py, FHIRPath) and the arithmetic that turns the applicable price
components into a total (formula.py). The operations on top: ChargeItemDefinition/[id]/$apply
(operations/apply_charge.py) and HealthcareService/[id]/$price (operations/price.py).

No Flask here: the operations read through the request's repository and hand the resolved
resources in (context.py)."""
from __future__ import annotations

from ..errors import BadRequest
from ..jsonio import FhirDecimal
from .applicability import applies
from .formula import Price, price


def price_of(definition: dict, chargeitem: dict, known: dict) -> Price | None:
    """The price `definition` gives the ChargeItem (known: %patient, %encounter, ... resources), or None
    when it does not apply: its own applicability fails, or no applicable group has a base price."""
    if not applies(definition.get("applicability"), "ChargeItemDefinition.applicability", chargeitem, known):
        return None
    groups = definition.get("propertyGroup") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise BadRequest("ChargeItemDefinition.propertyGroup must be a list of objects")
    chosen = [(i, g) for i, g in enumerate(groups)
              if applies(g.get("applicability"), f"propertyGroup[{i}].applicability", chargeitem, known)]
    return price(chosen)


def money(value, currency: str) -> dict:
    """A FHIR Money, its value written with the currency's decimals (1180.00, not 1180.0)."""
    return {"value": FhirDecimal(str(value)), "currency": currency}
