"""One concept's details and the is-a relation between two concepts of a code system
(codesystem-operation-lookup.html, codesystem-operation-subsumes.html)."""
from __future__ import annotations

from ..errors import BadRequest, NotFound


def lookup(tx, system: str, code: str, version: str | None = None) -> dict | None:
    """The concept as a dict (code, display, definition, designation, property, abstract, inactive,
    parents, children, and the code system's name and version), or None when not found."""
    return lookup_in(tx.code_system(system, version), code)


def lookup_in(index, code: str) -> dict | None:
    """lookup() within one compiled code system (None: no such system or code)."""
    own = index.find(code) if index is not None else None
    if own is None:
        return None
    concept = index.concepts[own]
    cs = index.resource
    return {"system": index.url, "version": index.version, "name": cs.get("name") or cs.get("title") or index.url,
            "code": own, "display": concept.get("display"), "definition": concept.get("definition"),
            "designation": list(concept.get("designation") or ()),
            "property": [p for p in concept.get("property") or () if isinstance(p, dict)],
            "abstract": index.abstract(own), "inactive": index.inactive(own),
            "parents": list(index.parents.get(own, ())), "children": list(index.children.get(own, ()))}


def subsumes(tx, system: str, a: str, b: str, version: str | None = None) -> str:
    """equivalent | subsumes (a is an ancestor of b) | subsumed-by | not-subsumed."""
    index = tx.code_system(system, version)
    if index is None:
        raise NotFound(f"No CodeSystem {system} on this server")
    return subsumes_in(index, a, b)


def subsumes_in(index, a: str, b: str) -> str:
    """subsumes() within one compiled code system."""
    system = index.url
    if index.content not in ("complete", "example"):
        raise BadRequest(f"The code system {system} is held only as a {index.content}: subsumption is unknown")
    own_a, own_b = index.find(a), index.find(b)
    for given, own in ((a, own_a), (b, own_b)):
        if own is None:
            raise NotFound(f"Code {given!r} is not in {system}")
    if own_a == own_b:
        return "equivalent"
    if own_a in index.ancestors(own_b):
        return "subsumes"
    if own_b in index.ancestors(own_a):
        return "subsumed-by"
    return "not-subsumed"
