"""HealthcareService/[id]/$price: what a service costs, as a breakdown apps can show
(profiles/operations/HealthcareService-price.json; docs/prices.md).

- The service and its prices are the public directory (docs/directory.md): read with the caller's
  rights when its scopes cover the directory, else with the public directory's (a patient's or a
  proxy's token, whose patient scopes have no place for it: smart_auth/public_directory.reader).
  The patient and encounter given are read with the caller's own rights.
- Its prices are the active ChargeItemDefinitions linked to it (useContext valueReference, the
  `service` search parameter), searched through that repository. Definitions outside their effectivePeriod today
  are left out; at most MAX_DEFINITIONS are read (more: 400 too-costly).
- Each definition that applies (pricing.price_of: %patient, %encounter and %service bound from the
  parameters and the service) gives one `price`: its components, base, subtotal, tax, total and
  currency. None applies: a Parameters without any `price`.
"""
from __future__ import annotations

import datetime

from .. import jsonio
from ..errors import NotFound, TooCostly
from ..pricing import context, money, price_of
from ..pricing.formula import Price
from ..search.parse import parse_search
from ..smart_auth import public_directory
from .parameters import first

MAX_DEFINITIONS = 50


def price(ctx, rtype, id, params: dict) -> dict:
    directory = public_directory.reader(ctx)
    stored = directory.read("HealthcareService", id)
    if stored is None or stored.deleted:
        raise NotFound(f"HealthcareService/{id} is not known")
    service = jsonio.loads_stored(stored.body)
    c = context.build(ctx, patient=first(params, "patient"), encounter=first(params, "encounter"), service=service)
    directory.allow("search-type", "ChargeItemDefinition")
    query = parse_search("ChargeItemDefinition", [("service", f"HealthcareService/{id}"), ("status", "active")]).query
    found = directory.search("ChargeItemDefinition", query, limit=MAX_DEFINITIONS + 1).items
    if len(found) > MAX_DEFINITIONS:
        raise TooCostly(f"HealthcareService/{id} has more than {MAX_DEFINITIONS} active ChargeItemDefinitions")
    today = datetime.date.today().isoformat()
    out = []
    for version in found:
        definition = jsonio.loads_stored(version.body)
        if not _in_effect(definition.get("effectivePeriod"), today):
            continue
        p = price_of(definition, context.for_definition(c, definition), c.known)
        if p is not None:
            out.append({"name": "price", "part": breakdown(definition, p)})
    return {"resourceType": "Parameters", "parameter": out}


def breakdown(definition: dict, p: Price) -> list[dict]:
    ref = {"reference": f"ChargeItemDefinition/{definition['id']}"}
    if definition.get("title"):
        ref["display"] = definition["title"]
    parts = [{"name": "definition", "valueReference": ref}]
    if isinstance(definition.get("code"), dict):
        parts.append({"name": "code", "valueCodeableConcept": definition["code"]})
    parts.append({"name": "currency", "valueCode": p.currency})
    for line in p.lines:
        component = [{"name": "type", "valueCode": line.type}, {"name": "group", "valueInteger": line.group}]
        if line.code is not None:
            component.append({"name": "code", "valueCodeableConcept": line.code})
        if line.factor is not None:
            component.append({"name": "factor", "valueDecimal": jsonio.FhirDecimal(str(line.factor))})
        if line.amount is not None:
            component.append({"name": "amount", "valueMoney": money(line.amount, p.currency)})
        parts.append({"name": "component", "part": component})
    for name, value in (("base", p.base), ("subtotal", p.subtotal), ("tax", p.tax), ("total", p.total)):
        parts.append({"name": name, "valueMoney": money(value, p.currency)})
    return parts


def _in_effect(period, today: str) -> bool:
    """Whether today falls in the period, compared at the precision of each end (an end of "2026" covers
    the whole year; an absent end is open)."""
    if not isinstance(period, dict):
        return True
    start, end = (v[:10] if isinstance(v, str) else None for v in (period.get("start"), period.get("end")))
    return (start is None or today[:len(start)] >= start) and (end is None or today[:len(end)] <= end)
