"""The definitions shipped with the server, loaded once per process and never changed.

Every `*.json` and `*.json.gz` file under profiles/definitions/ (StructureDefinitions) and terminology/
(CodeSystems, ValueSets, ConceptMaps) holds one resource, a Bundle of them, or a JSON array of them.
Each folder's README.md names the source and licence of its files."""
from __future__ import annotations

import functools
import gzip
import os

from .. import jsonio
from ..definitions import PROFILES_DIR

_HERE = os.path.dirname(os.path.abspath(__file__))
# installed from a wheel: package data fhirserver/terminology_files (setup.py); a checkout: top-level terminology/
TERMINOLOGY_DIR = next((d for d in (os.path.join(os.path.dirname(_HERE), "terminology_files"),
                                    os.path.join(os.path.dirname(os.path.dirname(_HERE)), "terminology"))
                        if os.path.isdir(d)), os.path.join(os.path.dirname(os.path.dirname(_HERE)), "terminology"))
DEFINITIONS_DIR = os.path.join(PROFILES_DIR, "definitions")


def read_file(path: str) -> list[dict]:
    """The resources one definitions file holds (a resource, a Bundle, or an array)."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return list(resources_in(jsonio.loads(data)))


def resources_in(doc) -> list[dict]:
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict) and "resourceType" in r]
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return [e["resource"] for e in doc.get("entry") or () if isinstance(e.get("resource"), dict)]
    return [doc] if isinstance(doc, dict) and "resourceType" in doc else []


def _files(root: str) -> list[str]:
    out = []
    for folder, _dirs, names in os.walk(root):
        out.extend(os.path.join(folder, n) for n in names if n.endswith((".json", ".json.gz")))
    return sorted(out)


class Catalogue:
    """Shipped definitions by type and canonical URL; several versions of one URL are kept."""

    def __init__(self, roots: tuple[str, ...]):
        self._by_url: dict[tuple[str, str], list[dict]] = {}
        self._by_type: dict[str, list[dict]] = {}
        for root in roots:
            for path in _files(root):
                for r in read_file(path):
                    self.add(r)

    def add(self, resource: dict) -> None:
        rtype, url = resource["resourceType"], resource.get("url")
        self._by_type.setdefault(rtype, []).append(resource)
        if isinstance(url, str):
            self._by_url.setdefault((rtype, url), []).append(resource)

    def get(self, rtype: str, url: str, version: str | None = None) -> dict | None:
        found = self._by_url.get((rtype, url)) or ()
        if version is not None:
            return next((r for r in found if r.get("version") == version), None)
        return newest(found)

    def all_of(self, rtype: str) -> list[dict]:
        return list(self._by_type.get(rtype, ()))


def newest(candidates) -> dict | None:
    """The latest of several versions of one canonical: by version string, then date (the last wins a tie)."""
    best = None
    for r in candidates:
        if best is None or _order(r) >= _order(best):
            best = r
    return best


def _order(r: dict):
    version = str(r.get("version") or "")
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.replace("-", ".").split("."))
    return parts, str(r.get("date") or "")


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    return Catalogue((DEFINITIONS_DIR, TERMINOLOGY_DIR))


@functools.lru_cache(maxsize=1)
def code_systems() -> frozenset[str]:
    """The code systems the shipped definitions name: those shipped (whole or in part) and those the shipped
    value sets draw on (RxNorm, CVX, ICD-10, BCP-47, UCUM ... which ship only by name)."""
    found = {cs["url"] for cs in all_of("CodeSystem") if isinstance(cs.get("url"), str)}
    for vs in all_of("ValueSet"):
        compose = vs.get("compose") or {}
        for part in (compose.get("include") or []) + (compose.get("exclude") or []):
            if isinstance(part, dict) and isinstance(part.get("system"), str):
                found.add(part["system"])
    return frozenset(found)


def shipped(rtype: str, url: str, version: str | None = None) -> dict | None:
    return catalogue().get(rtype, url, version)


def all_of(rtype: str) -> list[dict]:
    return catalogue().all_of(rtype)
