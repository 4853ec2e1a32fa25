"""Shared helpers of the profile validator tests: the shipped definitions and terminology, one check."""
from __future__ import annotations

import json
from pathlib import Path

from fhirserver.conformance import definitions
from fhirserver.terminology import for_store
from fhirserver.validation.profile import check

CORE = "http://hl7.org/fhir/StructureDefinition/"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
BP = US_CORE + "us-core-blood-pressure"
DATA = Path(__file__).resolve().parents[2] / "data"


def resolve(rtype: str, canonical: str):
    return definitions(None).resolve(rtype, canonical)


def sd(canonical: str) -> dict:
    found = resolve("StructureDefinition", canonical)
    assert found is not None, canonical
    return found


def run(resource: dict, canonical: str | None = None, *, terminology=True):
    """The findings of `resource` against a profile (default: its base type's definition)."""
    profile = sd(canonical or CORE + resource["resourceType"])
    return check(resource, profile, resolve=resolve, terminology=for_store(None) if terminology else None)


def errors(findings) -> list[tuple[str, str, str]]:
    """(rule, key, path) of each error."""
    return [(f.rule, f.key, f.path) for f in findings if f.severity == "error"]


def of(findings, severity: str) -> list[tuple[str, str, str]]:
    return [(f.rule, f.key, f.path) for f in findings if f.severity == severity]


def synthea_bp() -> dict:
    """A Synthea blood-pressure Observation (tests/data/synthea-2021, Blaze's 2021 sample)."""
    bundle = json.loads((DATA / "synthea-2021" / "085e81c0-7a95-ef02-16ef-aa1b4344deed.json").read_text())
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
                and any(c.get("code") == "85354-9" for c in e["resource"]["code"]["coding"]))


def synthea_patient() -> dict:
    bundle = json.loads((DATA / "synthea-2021" / "085e81c0-7a95-ef02-16ef-aa1b4344deed.json").read_text())
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def derived(base: str, url: str, *, change: dict | None = None, add: dict | None = None) -> dict:
    """A hand-made profile: the base definition's snapshot with elements changed (id -> fields; None
    removes a field) and new elements added after a given id (id -> [elements])."""
    import copy
    out = copy.deepcopy(sd(base))
    out.update(url=url, version="1", derivation="constraint", baseDefinition=base)
    elements = []
    for e in out["snapshot"]["element"]:
        for k, v in (change or {}).get(e["id"], {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        elements.append(e)
        for new in (add or {}).get(e["id"], ()):
            elements.append(dict(new, path=new.get("path") or _path_of(new["id"])))
    out["snapshot"]["element"] = elements
    return out


def _path_of(element_id: str) -> str:
    return ".".join(part.partition(":")[0] for part in element_id.split("."))


def run_sd(resource: dict, profile: dict, *, terminology=True):
    return check(resource, profile, resolve=resolve, terminology=for_store(None) if terminology else None)
