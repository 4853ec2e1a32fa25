"""_summary and _elements: return part of each resource (search.html#summary, #elements).

A subsetted resource is marked with the SUBSETTED tag, as the spec asks, so
that nobody mistakes it for the whole resource (and writes it back). _elements
keeps the mandatory elements too ("Servers SHOULD always return mandatory
elements whether they are requested or not"), as _summary=text does.
"""
from __future__ import annotations

import functools

from ..definitions import load_json

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}


@functools.lru_cache(maxsize=None)
def _elements(rtype: str, which: str) -> frozenset[str]:
    """'summary' (isSummary) or 'mandatory' (min >= 1) top-level elements of a type, plus id and meta."""
    return frozenset(load_json("summary-elements.json").get(rtype, {}).get(which, ())) | {"id", "meta"}


def _keep(resource: dict, names) -> dict:
    out = {"resourceType": resource["resourceType"]}
    for key, value in resource.items():
        base = key[1:] if key.startswith("_") else key
        if base in names or any(base.startswith(n) and base[len(n):][:1].isupper() for n in names):
            out[key] = value
    return out


def _mark(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = list(meta.get("tag") or ()) + [SUBSETTED]
    resource["meta"] = meta
    return resource


def subset(resource: dict, summary: str | None, elements: tuple[str, ...] | None) -> dict:
    """The resource as _summary / _elements ask (unchanged when neither applies)."""
    if summary in (None, "false") and not elements:
        return resource
    if summary == "true":
        return _mark(_keep(resource, _elements(resource["resourceType"], "summary")))
    if summary == "text":
        return _mark(_keep(resource, _elements(resource["resourceType"], "mandatory") | {"text"}))
    if summary == "data":
        return _mark({k: v for k, v in resource.items() if k != "text"})
    return _mark(_keep(resource, set(elements or ()) | _elements(resource["resourceType"], "mandatory")))
