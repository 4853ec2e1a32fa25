"""$translate over ConceptMaps (http://hl7.org/fhir/R4/conceptmap-operation-translate.html,
conceptmap.html): group.source/target are the code systems, element.code the source code,
element.target[] the mapped codes with their equivalence; group.unmapped says what an unmatched code
maps to (provided: itself; fixed: unmapped.code; other-map: that map). dependsOn/product are reported
as given, not evaluated."""
from __future__ import annotations

from ..errors import BadRequest, NotFound

MAX_MAPS = 200               # ConceptMaps one url-less translation looks through
_NO_MATCH = ("unmatched", "disjoint")
# read backwards, a map's equivalence turns around (concept-map-equivalence)
_REVERSED = {"wider": "narrower", "narrower": "wider", "subsumes": "specializes", "specializes": "subsumes"}


def _scope(cm: dict, which: str) -> str | None:
    return cm.get(f"{which}Uri") or cm.get(f"{which}Canonical")


def translate(tx, system: str | None, code: str, *, url: str | None = None, conceptmap: dict | None = None,
              source: str | None = None, target: str | None = None, target_system: str | None = None,
              reverse: bool = False, depth: int = 0) -> list[dict]:
    """Matches: [{equivalence, concept: Coding, source: the map's url, product?}]."""
    if conceptmap is not None:
        maps = [conceptmap]
    elif url:
        found = tx.resolve("ConceptMap", url)
        if found is None:
            raise NotFound(f"No ConceptMap {url} on this server")
        maps = [found]
    else:
        if not system and not source:
            raise BadRequest("$translate without a map url needs the code's system or a source value set")
        maps = [m for m in tx.concept_maps()
                if (not source or _scope(m, "source") == source) and (not target or _scope(m, "target") == target)]
    out: list[dict] = []
    for cm in maps:
        for group in cm.get("group") or ():
            out.extend(_reverse(cm, group, system, code, target_system) if reverse
                       else _forward(tx, cm, group, system, code, target_system, depth))
    return out


def _coding(system, version, code, display) -> dict:
    c = {"system": system} if system else {}
    if version:
        c["version"] = version
    c["code"] = code
    if display:
        c["display"] = display
    return c


def _forward(tx, cm, group, system, code, target_system, depth) -> list[dict]:
    if (system and group.get("source") and group["source"] != system) or \
            (target_system and group.get("target") != target_system):
        return []
    found = []
    for element in group.get("element") or ():
        if element.get("code") != code:
            continue
        for t in element.get("target") or ():
            match = {"equivalence": t.get("equivalence", "equivalent"), "source": cm.get("url"),
                     "concept": _coding(group.get("target"), group.get("targetVersion"), t.get("code"),
                                        t.get("display"))}
            if t.get("product") or t.get("dependsOn"):
                match["product"] = list(t.get("product") or ())
            if t.get("code") or match["equivalence"] in _NO_MATCH:
                found.append(match)
        if found:
            return found
    unmapped = group.get("unmapped") or {}
    mode = unmapped.get("mode")
    if mode == "provided":
        return [{"equivalence": "equal", "source": cm.get("url"),
                 "concept": _coding(group.get("target"), group.get("targetVersion"), code, None)}]
    if mode == "fixed" and unmapped.get("code"):
        return [{"equivalence": "equivalent", "source": cm.get("url"),
                 "concept": _coding(group.get("target"), group.get("targetVersion"), unmapped["code"],
                                    unmapped.get("display"))}]
    if mode == "other-map" and unmapped.get("url") and depth < 4:
        return translate(tx, system, code, url=unmapped["url"], target_system=target_system, depth=depth + 1)
    return []


def _reverse(cm, group, system, code, target_system) -> list[dict]:
    if (system and group.get("target") and group["target"] != system) or \
            (target_system and group.get("source") != target_system):
        return []
    return [{"equivalence": _REVERSED.get(t.get("equivalence"), t.get("equivalence", "equivalent")),
             "source": cm.get("url"),
             "concept": _coding(group.get("source"), group.get("sourceVersion"), element.get("code"),
                                element.get("display"))}
            for element in group.get("element") or () for t in element.get("target") or ()
            if t.get("code") == code and element.get("code")]


def matched(matches: list[dict]) -> bool:
    return any(m["equivalence"] not in _NO_MATCH for m in matches)
