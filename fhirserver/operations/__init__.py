"""FHIR operations (http://hl7.org/fhir/R4/operations.html): each is data (its official
OperationDefinition under profiles/operations/) plus a handler. The definition drives parameter
checking and the CapabilityStatement; handlers receive checked parameters."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ..definitions import load_json
from ..errors import MethodNotAllowed, NotFound
from .parameters import read_parameters


@dataclass(frozen=True)
class Raw:
    """An operation answer that is not a FHIR resource (a PNG, a .smart-health-card file)."""
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Operation:
    name: str
    definition: dict
    handler: Callable            # handler(ctx, rtype, id, params: dict) -> dict (a resource)
    types: tuple[str, ...]       # resource types it is offered on ("Resource": every type)
    reads_instance: bool = True  # the instance must be visible to the caller (False: the handler decides)
    page: Callable | None = None  # page(ctx, rtype, id, params) -> Raw text/html: the answer for a browser
    per_type: tuple[tuple[str, dict], ...] = ()   # (type, definition) where one name has several ($validate-code)

    def definition_for(self, rtype: str | None) -> dict:
        return dict(self.per_type).get(rtype, self.definition)


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Operation]:
    from .access_report import access_report
    from .apply_charge import apply_charge, apply_definition
    from .break_glass import break_glass_operation
    from .consents import consents
    from .data_quality import data_quality, data_quality_page
    from .everything import everything, everything_definition
    from .expand import expand
    from .health_card import health_card
    from .immunization_status import immunization_status
    from .invite_family import invite_family
    from .lookup import lookup
    from .match import match
    from .price import price
    from .registration_code import registration_code
    from .revoke_health_cards import revoke_health_cards
    from .scheduling import book_operation, cancel_operation, find_operation, generate_slots_operation, hold_operation
    from .subscription_status import events_operation, status_operation
    from .subsumes import subsumes
    from .translate import translate
    from .validate import validate_operation
    from .validate_code import validate_code
    ops = [
        # the official transaction example posts to ValueSet/$lookup, so it is accepted there too
        Operation("lookup", load_json("operations/CodeSystem-lookup.json"), lookup, ("CodeSystem", "ValueSet")),
        Operation("validate", load_json("operations/Resource-validate.json"), validate_operation, ("Resource",)),
        # terminology (docs/terminology.md): definitions are public; instances are read through ctx.repo
        Operation("expand", load_json("operations/ValueSet-expand.json"), expand, ("ValueSet",)),
        Operation("validate-code", load_json("operations/ValueSet-validate-code.json"), validate_code,
                  ("ValueSet", "CodeSystem"),
                  per_type=(("CodeSystem", load_json("operations/CodeSystem-validate-code.json")),)),
        Operation("subsumes", load_json("operations/CodeSystem-subsumes.json"), subsumes, ("CodeSystem",)),
        Operation("translate", load_json("operations/ConceptMap-translate.json"), translate, ("ConceptMap",)),
        Operation("match", load_json("operations/Patient-match.json"), match, ("Patient",)),
        Operation("health-card", load_json("operations/Patient-health-card.json"), health_card, ("Patient",)),
        Operation("registration-code", load_json("operations/Patient-registration-code.json"), registration_code,
                  ("Patient",)),
        Operation("consents", load_json("operations/Patient-consents.json"), consents, ("Patient",)),
        Operation("invite-family", load_json("operations/Patient-invite-family.json"), invite_family, ("Patient",)),
        # the patient is outside the caller's view by design: the handler checks the privilege first
        Operation("break-glass", load_json("operations/Patient-break-glass.json"), break_glass_operation,
                  ("Patient",), reads_instance=False),
        # a regulator reads no Patient: the handler decides who may ask, the search applies the guard
        Operation("access-report", load_json("operations/Patient-access-report.json"), access_report,
                  ("Patient",), reads_instance=False),
        Operation("everything", everything_definition(), everything, ("Patient",)),
        # vaccination forecast (docs/immunization.md): as far as the caller sees; persist writes as the caller
        Operation("immunization-status", load_json("operations/Patient-immunization-status.json"),
                  immunization_status, ("Patient",)),
        Operation("revoke-health-cards", load_json("operations/Patient-revoke-health-cards.json"),
                  revoke_health_cards, ("Patient",)),
        # scheduling (docs/scheduling.md): who may book is decided by the handlers (fhirserver/scheduling/who.py)
        Operation("find", load_json("operations/Appointment-find.json"), find_operation, ("Appointment",)),
        Operation("hold", load_json("operations/Appointment-hold.json"), hold_operation, ("Appointment",)),
        Operation("book", load_json("operations/Appointment-book.json"), book_operation, ("Appointment",)),
        Operation("cancel", load_json("operations/Appointment-cancel.json"), cancel_operation, ("Appointment",)),
        Operation("generate-slots", load_json("operations/Schedule-generate-slots.json"), generate_slots_operation,
                  ("Schedule",)),
        Operation("apply", apply_definition(), apply_charge, ("ChargeItemDefinition",)),
        # the directory is public: the handler reads the service with the right repository itself
        Operation("price", load_json("operations/HealthcareService-price.json"), price, ("HealthcareService",),
                  reads_instance=False),
        # subscriptions (docs/subscriptions.md): the instance read check leaves only its owner
        Operation("status", load_json("operations/Subscription-status.json"), status_operation, ("Subscription",)),
        Operation("events", load_json("operations/Subscription-events.json"), events_operation, ("Subscription",)),
        # regulators and administrators (the handler decides); a page too (docs/data-quality.md)
        Operation("data-quality", load_json("operations/data-quality.json"), data_quality, (),
                  page=data_quality_page),
    ]
    return {op.name: op for op in ops}


def invoke(ctx, name: str, rtype: str | None, id: str | None, query: list[tuple[str, str]],
           body: dict | None, method: str = "POST", html: bool = False) -> dict | Raw:
    """html: the caller asked for a page (offers_page): the operation's page renders the answer."""
    op = registry().get(name)
    if op is None or (rtype is not None and "Resource" not in op.types and rtype not in op.types):
        raise NotFound(f"Operation ${name} is not supported" + (f" on {rtype}" if rtype else ""))
    definition = op.definition_for(rtype)
    level_ok = (definition.get("instance") if id else definition.get("type") if rtype
                else definition.get("system"))
    if not level_ok:
        raise NotFound(f"Operation ${name} is not offered at this level")
    if method != "POST" and definition.get("affectsState"):
        raise MethodNotAllowed(f"${name} changes the server's state: use POST (operations.html#request)",
                               headers={"Allow": "POST"})
    if id is not None and op.reads_instance:   # an instance operation reads the instance: same rights as a read
        ctx.repo.check(rtype, id, "read")
    handler = op.page if html and op.page is not None else op.handler
    return handler(ctx, rtype, id, read_parameters(definition, query, body))


def offers_page(name: str) -> bool:
    op = registry().get(name)
    return op is not None and op.page is not None
