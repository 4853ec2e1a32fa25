"""`medport ig install PATH`: a package's definitions written into the store (conformance.html), as the
server, in one store transaction: all of them or none.

Every StructureDefinition, ValueSet, CodeSystem, ConceptMap, SearchParameter, NamingSystem and
ImplementationGuide at the top of the package (package.py: not its examples) is created, or updated when
the store holds the same canonical url and version (a NamingSystem, which has no url in R4: the same id).
A new one keeps the package's id when that id is free, else gets a new one. Each is validated as any
write (structural R4, and its own claimed profiles: interactions.common.prepare).

A package does not redefine what the server itself stands on (screen()):
- Med-Port's own definitions (seed.py: the Med-Port profiles, CodeSystems, SearchParameters) and the
  server's UHID NamingSystem: a package holding one of their urls (or ids, or the UHID system) is refused;
- the R4 core definitions the server ships (4.0.1, urls under http://hl7.org/fhir/: any version of them)
  and any other shipped definition in the very version shipped (US Core 5.0.1 ...) or without a version:
  kept as shipped, the package's copy is left out (counted as "kept"). Other versions of shipped guides
  install beside them."""
from __future__ import annotations

from collections import Counter

from .. import jsonio
from ..interactions.common import ID_RE, new_id, prepare, store_new_version
from ..search.parse import parse_search
from ..uhid import naming_system
from . import catalogue, seed
from .package import NotAPackage, Package

INSTALLED = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "SearchParameter", "NamingSystem",
             "ImplementationGuide")


def install(ctx, package: Package) -> Counter:
    """Write the package's definitions; how many of each type were created and updated
    ({"StructureDefinition": n, ...}, and "created"/"updated" totals)."""
    chosen, kept = screen(ctx, [r for r in package.resources if r.get("resourceType") in INSTALLED])
    prepared = [prepare(ctx, r["resourceType"], _copy(r)) for r in chosen]
    counts: Counter = Counter({"kept": kept} if kept else {})
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


CORE, R4 = "http://hl7.org/fhir/", "4.0.1"      # R4 core canonicals: fixed, every version of them is R4's


def screen(ctx, resources: list[dict]) -> tuple[list[dict], int]:
    """The package's definitions to install, and how many were left out as shipped; NotAPackage if one
    would redefine Med-Port's own (see the module's docstring)."""
    own = seed.wanted(ctx.uhid_system)
    own_urls = {(r["resourceType"], r.get("url")) for r in own}
    chosen, kept = [], 0
    for r in resources:
        rtype = r["resourceType"]
        url = r["url"] if isinstance(r.get("url"), str) else None        # any other shape: refused by prepare
        ids = r["uniqueId"] if isinstance(r.get("uniqueId"), list) else ()
        # a NamingSystem (no url in R4) is installed by id: the server's own UHID one by id or by its system
        uhid = rtype == "NamingSystem" and (r.get("id") == naming_system.ID or any(
            isinstance(u, dict) and u.get("value") == ctx.uhid_system for u in ids))
        if uhid or (rtype, url) in own_urls:
            raise NotAPackage(f"{rtype} {url or r.get('id')} is one of Med-Port's own definitions: "
                              "a package cannot redefine it")
        version = r.get("version") if isinstance(r.get("version"), str) else None
        shipped = catalogue.shipped(rtype, url) if url is not None else None
        if shipped is not None and (version is None or catalogue.shipped(rtype, url, version) is not None
                                    or catalogue.shipped(rtype, url, R4) is not None and url.startswith(CORE)):
            kept += 1
            continue
        chosen.append(r)
    return chosen, kept


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
