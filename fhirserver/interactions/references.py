"""Reference rewriting inside transactions (http://hl7.org/fhir/R4/http.html#trules,
bundle.html#references).

Every fullUrl the server assigns an identity to (urn:uuid:, relative or
absolute) is replaced wherever it appears as a reference, a uri-like value, or
an href/src in the narrative. Conditional references ('Patient?identifier=x|1')
are resolved by search: exactly one match, else the transaction fails (412).
"""
from __future__ import annotations

import re

from ..errors import BadRequest, PreconditionFailed
from .conditional import parse_criteria

_NARRATIVE_LINK = re.compile(r'((?:href|src)=")([^"]+)(")')


PLACEHOLDERS = ("urn:uuid:", "urn:oid:")


def rewrite(value, mapping: dict[str, str], left: list | None = None):
    """A copy of `value` with every mapped string (and narrative link) replaced. `left`, if given,
    receives the urn:uuid:/urn:oid: references still there afterwards, in the same pass (they name
    nothing in the bundle: unresolved_placeholders)."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if left is not None and isinstance(ref, str) and mapping.get(ref, ref).startswith(PLACEHOLDERS):
            left.append(mapping.get(ref, ref))         # in the order references() finds them
        out = {}
        for k, v in value.items():
            if isinstance(v, str):
                if k == "div":
                    out[k] = _NARRATIVE_LINK.sub(
                        lambda m: m.group(1) + mapping.get(m.group(2), m.group(2)) + m.group(3), v)
                else:
                    out[k] = mapping.get(v, v)
            elif isinstance(v, (dict, list)):
                out[k] = rewrite(v, mapping, left)
            else:
                out[k] = v
        return out
    if isinstance(value, list):
        return [rewrite(v, mapping, left) if isinstance(v, (dict, list)) else
                mapping.get(v, v) if isinstance(v, str) else v for v in value]
    if isinstance(value, str):
        return mapping.get(value, value)
    return value


def references(value, found=None) -> list[str]:
    """Every Reference.reference string in a resource."""
    found = [] if found is None else found
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            found.append(ref)
        for v in value.values():
            if isinstance(v, (dict, list)):
                references(v, found)
    elif isinstance(value, list):
        for v in value:
            references(v, found)
    return found


def is_conditional(ref: str) -> bool:
    return "?" in ref and not ref.startswith(("http://", "https://", "urn:"))


def unresolved_placeholders(resource: dict) -> list[str]:
    """urn:uuid:/urn:oid: references left after rewriting: they name nothing in this bundle."""
    return [r for r in references(resource) if r.startswith(PLACEHOLDERS)]


def resolve_conditional(ctx, reader, ref: str) -> str:
    """'Patient?identifier=s|v' -> 'Patient/<id>' among what the request may search: reader is the
    request's repository (committed data) or its guarded transaction (repository.py)."""
    rtype, _, criteria = ref.partition("?")
    try:
        query = parse_criteria(rtype, criteria, ctx.base, ctx.terminology)
    except BadRequest as e:
        raise BadRequest(f"invalid conditional reference {ref!r}: {e}") from None
    found = reader.resolve(rtype, query, 2)     # only what the request may see
    if len(found) != 1:
        raise PreconditionFailed(f"conditional reference {ref!r} matches "
                                 f"{'no' if not found else 'more than one'} {rtype}")
    return f"{rtype}/{found[0].id}"


def resolve_conditionals(ctx, resource):
    """A create or update outside a transaction: its 'Patient?identifier=s|v' references resolve by
    search over committed data as in a transaction (http.html#trules), so that a hospital can send a
    record for a patient known only by UHID; one that matches none or several is refused."""
    if not isinstance(resource, dict):
        return resource
    mapping = {ref: resolve_conditional(ctx, ctx.repo, ref)
               for ref in set(references(resource)) if is_conditional(ref)}
    return rewrite(resource, mapping) if mapping else resource
