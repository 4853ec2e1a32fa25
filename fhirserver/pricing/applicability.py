"""Applicability conditions of a ChargeItemDefinition (its own `applicability` and each
propertyGroup's), evaluated with fhirpathpy (docs/prices.md, "Applicability").

A condition is a FHIRPath expression (`applicability.language` text/fhirpath, or absent) that must
evaluate to exactly `true`; `false` or empty does not apply (an absent fact, say the patient's age
when no patient is given, applies no condition). Anything else is the definition's mistake and a
400: an expression that does not parse or evaluate, an unknown %variable, a result that is not one
boolean, another language, a condition with only a description.

The expression is evaluated on the ChargeItem being priced (R4 ChargeItemDefinition.applicability:
%context is that ChargeItem), with %patient, %encounter, %service and %account bound to those
resources when known (empty otherwise), so `%patient.birthDate <= today() - 60 years` reads the
Patient given.
"""
from __future__ import annotations

import functools

from ..errors import BadRequest

LANGUAGES = ("text/fhirpath", None)
VARIABLES = ("patient", "encounter", "service", "account")
MAX_LENGTH = 2000          # characters of one expression


@functools.lru_cache(maxsize=512)
def _compiled(expression: str):
    from fhirpathpy import compile as fp_compile
    from fhirpathpy.models import models
    return fp_compile(expression, model=models["r4"])


def applies(conditions, where: str, chargeitem: dict, known: dict) -> bool:
    """Whether every condition holds for the ChargeItem and the resources known ({variable: resource})."""
    if conditions is None:
        return True
    if not isinstance(conditions, list):
        raise BadRequest(f"{where} must be a list")
    env = {"context": chargeitem, **{v: known.get(v) for v in VARIABLES}}
    return all(_holds(c, f"{where}[{k}]", chargeitem, env) for k, c in enumerate(conditions))


def _holds(condition, where: str, chargeitem: dict, env: dict) -> bool:
    if not isinstance(condition, dict):
        raise BadRequest(f"{where} must be an object")
    language, expression = condition.get("language"), condition.get("expression")
    if language not in LANGUAGES:
        raise BadRequest(f"{where}.language {str(language)[:40]!r} is not supported: Med-Port evaluates "
                         "text/fhirpath")
    if not isinstance(expression, str) or not expression.strip():
        raise BadRequest(f"{where} has no expression: a condition described only in words cannot be "
                         "evaluated")
    if len(expression) > MAX_LENGTH:
        raise BadRequest(f"{where}.expression is longer than {MAX_LENGTH} characters")
    try:
        result = _compiled(expression)(chargeitem, env)
    except Exception as e:       # fhirpathpy raises plain exceptions for syntax and evaluation errors
        raise BadRequest(f"{where}.expression {expression[:200]!r} cannot be evaluated: {str(e)[:200]}") \
            from None
    if result == []:
        return False
    if len(result) != 1 or not isinstance(result[0], bool):
        raise BadRequest(f"{where}.expression {expression[:200]!r} must give one boolean, gave "
                         f"{str(result)[:100]}")
    return result[0]
