"""Where an extension may be used: StructureDefinition.context (extensibility.html#context, R4
defining-extensions.html#context).

Every R4 context the server ships is of type `element`; its expression names a resource type
("Patient"), an element path ("Patient.birthDate", "Questionnaire.item.item"), a data type or a data
type's element ("Address", "HumanName.family"), or "Element" / "Resource" / "DomainResource" for
anywhere / any resource. An extension is allowed where the element holding it has that path (or the
path its contentReference names), that type, or, for a data type's element, that element name under
any path. Contexts of type `fhirpath` and `extension` are accepted without a check.
"""
from __future__ import annotations

from fhirserver.definitions import resource_types

ANYWHERE = frozenset(("Element", "Base"))
ANY_RESOURCE = frozenset(("Resource", "DomainResource"))


def allowed(contexts: tuple[tuple[str, str], ...], where: tuple) -> bool:
    """Whether one of `contexts` ((type, expression) pairs) admits an extension on the element `where`:
    (element path, contentReference path or None, type code, is a resource)."""
    path, alias, tcode, is_resource = where
    for kind, expr in contexts:
        if kind != "element":
            return True
        if expr in ANYWHERE or expr == path or expr == alias or expr == tcode:
            return True
        if is_resource and expr in ANY_RESOURCE:
            return True
        head, dot, rest = expr.partition(".")
        if dot and head not in resource_types() and (path.endswith("." + rest) or path == expr):
            return True
    return False
