"""`medport ig install PATH`: a package's definitions written into the store (conformance.html), as the
server, in one store transaction: all of them or none.

Every StructureDefinition, ValueSet, CodeSystem, ConceptMap, SearchParameter, NamingSystem and
ImplementationGuide at the top of the package (package.py: not its examples) is created, or updated when
the store holds the same canonical url and version (a NamingSystem, which has no url in R4: the same id).
A new one keeps the package's id when that id is free, else gets a new one. Each is validated as any
write (structural R4, and its own claimed profiles: interactions.common.prepare)."""
from __future__ import annotations

from collections import Counter

from .. import jsonio
from ..interactions.common import ID_RE, new_id, prepare, store_new_version
from ..search.parse import parse_search
from .package import Package

INSTALLED = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "SearchParameter", "NamingSystem",
             "ImplementationGuide")


def install(ctx, package: Package) -> Counter:
    """Write the package's definitions; how many of each type were created and updated
    ({"StructureDefinition": n, ...}, and "created"/"updated" totals)."""
    chosen = [r for r in package.resources if r.get("resourceType") in INSTALLED]
    prepared = [prepare(ctx, r["resourceType"], _copy(r)) for r in chosen]
    counts: Counter = Counter()
    with ctx.store.transaction() as tx:
        for resource, p in zip(chosen, prepared, strict=True):
            current = _existing(tx, resource)
            if current is None:
                id = resource.get("id")
                if not isinstance(id, str) or not ID_RE.match(id) or tx.read(resource["resourceType"], id) is not None:
                    id = new_id()
                store_new_version(tx, p, id, "POST", None)
                counts["created"] += 1
            else:
                store_new_version(tx, p, current.id, "PUT", current)
                counts["updated"] += 1
            counts[resource["resourceType"]] += 1
    return counts


def _copy(resource: dict) -> dict:
    out = {k: v for k, v in resource.items() if k != "meta"} if "meta" in resource else dict(resource)
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


def _existing(tx, resource: dict):
    """The stored current version this definition replaces (same url and version), or None."""
    rtype = resource["resourceType"]
    if rtype == "NamingSystem" or not isinstance(resource.get("url"), str):
        id = resource.get("id")
        current = tx.read(rtype, id) if isinstance(id, str) and ID_RE.match(id) else None
        return current if current is not None and not current.deleted else None
    criteria = [("url", resource["url"])]
    if isinstance(resource.get("version"), str):
        criteria.append(("version", resource["version"]))
    found = tx.search(rtype, parse_search(rtype, criteria).query, 2)
    if not isinstance(resource.get("version"), str):
        found = [v for v in found if "version" not in jsonio.loads_stored(v.body)]
    return found[0] if found else None
