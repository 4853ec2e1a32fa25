"""Build profiles/token-code-systems.json: the implicit code system of token parameters on elements
of type `code` (search.html#token: for a `code`, "the system is implicit", the one of its value set
binding). Per parameter key ('Patient.gender'), the one code system of the required binding's value
set, when every path of the parameter is such an element and they agree; a parameter whose values
may carry other systems (Coding, CodeableConcept, several code systems) is left out.

    python -m fhirserver.search.build_code_systems /path/to/fhir-r4   # profiles-resources.json, valuesets.json
"""
from __future__ import annotations

import json
import os
import re
import sys

from ..definitions import profile_path
from .registry import all_params

_PATH = re.compile(r"^[A-Z][A-Za-z]+(\.[a-z][A-Za-z]*)+$")


def _value_set_systems(src_dir: str) -> dict[str, str]:
    """ValueSet canonical -> its one code system (every include names it, no nested value sets)."""
    with open(os.path.join(src_dir, "valuesets.json"), encoding="utf-8") as f:
        bundle = json.load(f)
    out = {}
    for entry in bundle["entry"]:
        vs = entry["resource"]
        if vs.get("resourceType") != "ValueSet":
            continue
        includes = vs.get("compose", {}).get("include", [])
        systems = {i.get("system") for i in includes}
        if includes and len(systems) == 1 and None not in systems and not any(i.get("valueSet") for i in includes):
            out[vs["url"]] = systems.pop()
    return out


def _code_elements(src_dir: str, systems: dict[str, str]) -> dict[str, str]:
    """'Patient.gender' -> code system, for elements of the one type `code` with a required binding."""
    with open(os.path.join(src_dir, "profiles-resources.json"), encoding="utf-8") as f:
        bundle = json.load(f)
    out = {}
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
            continue
        for el in sd.get("snapshot", {}).get("element", []):
            types = [t["code"] for t in el.get("type", [])]
            binding = el.get("binding", {})
            if types == ["code"] and binding.get("strength") == "required":
                system = systems.get(binding.get("valueSet", "").split("|")[0])
                if system:
                    out[el["path"]] = system
    return out


def build(src_dir: str) -> dict[str, str]:
    elements = _code_elements(src_dir, _value_set_systems(src_dir))
    out = {}
    for param in (p for by_code in all_params().values() for p in by_code.values()):
        if param.kind != "token" or not param.expression:
            continue
        paths = [p.strip() for p in param.expression.split("|")]
        if not all(_PATH.match(p) for p in paths):
            continue
        found = {elements.get(p) for p in paths if p.split(".")[0] == param.resource_type}
        if len(found) == 1 and None not in found:
            out[param.key] = found.pop()
    return dict(sorted(out.items()))


if __name__ == "__main__":
    result = build(sys.argv[1])
    with open(profile_path("token-code-systems.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=0, sort_keys=True)
    print(f"{len(result)} parameters written")
