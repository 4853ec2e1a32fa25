"""Build the shipped StructureDefinitions from the official R4 and US Core definitions.

    python -m fhirserver.validation.profile.build_core SRC_DIR [OUT_DIR]

SRC_DIR (../shared/fhir-r4) holds the R4 4.0.1 definitions (http://hl7.org/fhir/R4/downloads.html:
profiles-resources.json, profiles-types.json, extension-definitions.json) and US Core
(uscore-v5.0.1-structuredefinitions.json). OUT_DIR defaults to
profiles/definitions/ and receives
  * hl7-r4-core.json.gz: every resource, data type, primitive and core extension StructureDefinition;
  * us-core/us-core-5.0.1.json.gz (one release of US Core: a claim without a version is judged by it).
Each is a JSON array of StructureDefinitions reduced to what validation reads (`reduce_sd`): the header
fields and the snapshot (US Core's differential is kept when the source has one), each element stripped of
its documentation (short, definition, comment, mapping, alias ...). The content is HL7's, CC0.
"""
from __future__ import annotations

import gzip
import json
import os
import sys

from ...conformance.catalogue import DEFINITIONS_DIR, read_file
from ...definitions import FHIR_VERSION

HEADER = ("resourceType", "id", "url", "version", "name", "status", "kind", "abstract", "type",
          "baseDefinition", "derivation", "fhirVersion", "context", "contextInvariant")
_ELEMENT = ("id", "path", "sliceName", "min", "max", "base", "contentReference", "slicing", "maxLength")
_FLAGS = ("mustSupport", "isModifier")          # kept when true
_VALUE_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")
_CONSTRAINT = ("key", "severity", "expression", "human", "source")
BEST_PRACTICE = "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"

CORE_SOURCES = ("profiles-resources.json", "profiles-types.json", "extension-definitions.json")
US_CORE = {"us-core/us-core-5.0.1.json.gz": "uscore-v5.0.1-structuredefinitions.json"}


def reduce_element(element: dict) -> dict:
    out = {k: element[k] for k in _ELEMENT if k in element}
    out.update({k: True for k in _FLAGS if element.get(k) is True})
    out.update({k: v for k, v in element.items() if k.startswith(_VALUE_PREFIXES) and k[0] != "_"})
    if "type" in element:
        out["type"] = [{k: v for k, v in t.items() if k in ("code", "profile", "targetProfile", "extension")}
                       for t in element["type"]]
    binding = element.get("binding")
    if binding:
        out["binding"] = {k: binding[k] for k in ("strength", "valueSet") if k in binding}
    constraints = []
    for c in element.get("constraint") or ():
        kept = {k: c[k] for k in _CONSTRAINT if k in c}
        if any(e.get("url") == BEST_PRACTICE and e.get("valueBoolean") for e in c.get("extension") or ()):
            kept["extension"] = [{"url": BEST_PRACTICE, "valueBoolean": True}]
        constraints.append(kept)
    if constraints:
        out["constraint"] = constraints
    return out


def reduce_sd(sd: dict, parts: tuple[str, ...] = ("snapshot", "differential")) -> dict:
    """The StructureDefinition with only what validation and snapshot generation read."""
    out = {k: sd[k] for k in HEADER if k in sd}
    for part in parts:
        if sd.get(part):
            out[part] = {"element": [reduce_element(e) for e in sd[part]["element"]]}
    return out


def structure_definitions(path: str) -> list[dict]:
    """The R4 StructureDefinitions of a source file: the redistribution the sources come from adds an R4B
    one (SubscriptionStatus, fhirVersion 4.3.0), which is not R4 and is left out."""
    return [r for r in read_file(path) if r["resourceType"] == "StructureDefinition"
            and r.get("fhirVersion", FHIR_VERSION) == FHIR_VERSION]


def write(path: str, sds: list[dict]) -> int:
    """Write the array gzipped (reproducibly: no timestamp); returns the size in bytes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw = json.dumps(sds, ensure_ascii=False, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(raw)
    return os.path.getsize(path)


def build(src: str, out: str = DEFINITIONS_DIR) -> dict[str, int]:
    sizes = {}
    core = []
    for name in CORE_SOURCES:
        for sd in structure_definitions(os.path.join(src, name)):
            core.append(reduce_sd(sd, ("snapshot",)))
    sizes["hl7-r4-core.json.gz"] = write(os.path.join(out, "hl7-r4-core.json.gz"), core)
    for target, name in US_CORE.items():
        sds = [reduce_sd(sd) for sd in structure_definitions(os.path.join(src, name))]
        sizes[target] = write(os.path.join(out, target), sds)
    return sizes


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    for name, size in build(*argv).items():
        print(f"{name}: {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
