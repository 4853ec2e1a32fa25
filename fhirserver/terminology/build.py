"""Build the terminology the server ships (terminology/*.json.gz) from the official R4 definitions.

    python -m fhirserver.terminology.build /work/shared/fhir-r4 [--examples DIR] [--synthea DIR] [--out DIR]

Writes, stripped of narrative (`text`), as gzipped JSON arrays:
- hl7-r4-valuesets.json.gz      CodeSystems and ValueSets of FHIR R4 core (valuesets.json)
- hl7-r4-v3-codesystems.json.gz HL7 v3 code systems and value sets (v3-codesystems.json)
- hl7-r4-v2-tables.json.gz      HL7 v2 tables (v2-tables.json)
- hl7-r4-conceptmaps.json.gz    the R4 ConceptMaps (the examples package's Bundle-conceptmaps.json)
- loinc-fragment.json.gz        a CodeSystem fragment of the LOINC codes Med-Port's workflows use
- snomed-fragment.json.gz       a CodeSystem fragment of the SNOMED CT codes Med-Port's workflows use
All HL7 content is CC0; LOINC and SNOMED CT carry their licence notices (terminology/README.md)."""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

from ..conformance.catalogue import TERMINOLOGY_DIR

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SNOMED_NOTICE = ("This material includes SNOMED Clinical Terms(R) (SNOMED CT(R)), used by permission of the "
                 "International Health Terminology Standards Development Organisation (SNOMED International). "
                 "All rights reserved. SNOMED CT(R) was originally created by the College of American "
                 "Pathologists. Use of SNOMED CT is governed by the SNOMED CT Affiliate Licence: free in "
                 "SNOMED International member territories (India and the United States among them).")
LOINC_NOTICE = ("This material contains content from LOINC (http://loinc.org). LOINC is copyright (c) 1995-2020, "
                "Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes (LOINC) "
                "Committee and is available at no cost under the license at http://loinc.org/license. "
                "LOINC(R) is a registered United States trademark of Regenstrief Institute, Inc.")
SOURCES = (("valuesets.json", "hl7-r4-valuesets"), ("v3-codesystems.json", "hl7-r4-v3-codesystems"),
           ("v2-tables.json", "hl7-r4-v2-tables"))
# the vaccination forecast's date criteria (fhirserver/immunization/recommendation.py)
# displays no source gives (LOINC long common names)
DISPLAYS = {"85353-1": "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel"}
VITAL_SIGNS = ("http://hl7.org/fhir/ValueSet/observation-vitalsignresult",)
IMMUNIZATION_DATES = {"30981-5": "Earliest date to give", "30980-7": "Date vaccine due",
                      "59778-1": "Date when overdue for immunization", "59777-3": "Latest date to give immunization"}


def strip(resource: dict) -> dict:
    """The resource without its narrative (the only documentation the server never serves from here)."""
    out = {k: v for k, v in resource.items() if k != "text"}
    if out.get("resourceType") == "Bundle":
        raise ValueError("a Bundle inside a definitions Bundle")
    return out


def entries(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if isinstance(doc, list):
        return doc
    return [e["resource"] for e in doc.get("entry") or () if isinstance(e.get("resource"), dict)]


def write(out_dir: str, name: str, resources: list[dict]) -> str:
    path = os.path.join(out_dir, name + ".json.gz")
    data = json.dumps(resources, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    with open(path, "wb") as f:
        f.write(gzip.compress(data, 9, mtime=0))     # mtime 0: the same input builds the same bytes
    return path


def _note(found: dict, code: str, display) -> None:
    """The first display seen wins (sources are read most authoritative first)."""
    if found.get(code) is None:
        found[code] = display if isinstance(display, str) and display.strip() else None


def _codings(node, found: dict, system: str = LOINC) -> None:
    if isinstance(node, dict):
        if node.get("system") == system and isinstance(node.get("code"), str):
            _note(found, node["code"], node.get("display"))
        for v in node.values():
            _codings(v, found, system)
    elif isinstance(node, list):
        for v in node:
            _codings(v, found, system)


def _synthea(synthea_dir: str | None, found: dict, system: str) -> None:
    for folder, _dirs, names in os.walk(synthea_dir or ""):
        for n in sorted(names):
            if n.endswith(".json"):
                with open(os.path.join(folder, n), encoding="utf-8") as f:
                    _codings(json.load(f), found, system)


def loinc_codes(definitions: list[dict], fhir_dir: str, synthea_dir: str | None) -> dict[str, str | None]:
    """LOINC code -> display: the R4 vital signs value set, US Core, the immunization forecast, Synthea."""
    found: dict[str, str | None] = {}
    for vs in definitions:
        if vs.get("url") in VITAL_SIGNS:
            for inc in (vs.get("compose") or {}).get("include") or ():
                if inc.get("system") == LOINC:
                    for c in inc.get("concept") or ():
                        _note(found, c["code"], c.get("display"))
    us_core = os.path.join(fhir_dir, "uscore-v5.0.1-structuredefinitions.json")
    if os.path.exists(us_core):
        _codings(entries(us_core), found)
    for code, display in {**IMMUNIZATION_DATES, **DISPLAYS}.items():
        found[code] = display
    _synthea(synthea_dir, found, LOINC)
    return found


def snomed_codes(synthea_dir: str | None) -> dict[str, str | None]:
    """SNOMED CT code -> display: the services of Med-Port's demo city (demo_city.py) and the conditions,
    procedures, encounter types and reasons of the Synthea test data."""
    from ..demo_city import BLOOD_TEST, CONSULT
    found: dict[str, str | None] = {}
    _codings([BLOOD_TEST, CONSULT], found, SNOMED)
    _synthea(synthea_dir, found, SNOMED)
    return found


def fragment(url: str, name: str, publisher: str, notice: str, description: str,
             codes: dict[str, str | None], version: str | None = None) -> dict:
    """A CodeSystem with content "fragment": these codes and the displays their sources give."""
    return {"resourceType": "CodeSystem", "id": f"{name.lower().split('_')[0]}-medport-fragment", "url": url,
            **({"version": version} if version else {}), "name": name,
            "title": f"{name.replace('_', ' ')} (the codes Med-Port's workflows use)", "status": "active",
            "publisher": publisher, "copyright": notice, "caseSensitive": True, "content": "fragment",
            "count": len(codes), "description": description,
            "concept": [{"code": c, "display": d} if d else {"code": c} for c, d in sorted(codes.items())]}


def loinc_fragment(codes: dict[str, str | None]) -> dict:
    return fragment(LOINC, "LOINC", "Regenstrief Institute, Inc.", LOINC_NOTICE,
                    "A fragment of LOINC curated for Med-Port: vital signs (R4 observation-vitalsignresult, US Core "
                    "5.0.1), the laboratory and survey codes of the Synthea test data, and the immunization "
                    "recommendation date criteria. Not the whole of LOINC.", codes, version="2.74")


def snomed_fragment(codes: dict[str, str | None]) -> dict:
    # no version: its codes come from more than one edition (the Synthea data's US and UK codes)
    return fragment(SNOMED, "SNOMED_CT", "SNOMED International", SNOMED_NOTICE,
                    "A fragment of SNOMED CT curated for Med-Port: the services of the demo city and the conditions, "
                    "procedures, encounter types and reasons of the Synthea test data, with the displays those "
                    "sources give. No hierarchy: not the whole of SNOMED CT.", codes)


def build(fhir_dir: str, out_dir: str, examples_dir: str | None, synthea_dir: str | None) -> list[str]:
    written, everything = [], []
    for source, name in SOURCES:
        resources = [strip(r) for r in entries(os.path.join(fhir_dir, source))
                     if r.get("resourceType") in ("CodeSystem", "ValueSet")]
        everything.extend(resources)
        written.append(write(out_dir, name, resources))
    if examples_dir:
        maps = os.path.join(examples_dir, "Bundle-conceptmaps.json")
        if os.path.exists(maps):
            written.append(write(out_dir, "hl7-r4-conceptmaps",
                                 [strip(r) for r in entries(maps) if r.get("resourceType") == "ConceptMap"]))
    written.append(write(out_dir, "loinc-fragment", [loinc_fragment(loinc_codes(everything, fhir_dir, synthea_dir))]))
    written.append(write(out_dir, "snomed-fragment", [snomed_fragment(snomed_codes(synthea_dir))]))
    return written


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(prog="python -m fhirserver.terminology.build", description=__doc__.split("\n")[0])
    parser.add_argument("fhir_dir", help="the R4 definitions folder (valuesets.json, v3-codesystems.json...)")
    shared = os.path.dirname(os.path.abspath(sys.argv[1])) if len(sys.argv) > 1 else here
    parser.add_argument("--examples", default=os.path.join(shared, "testdata/hl7-examples/r4-core-examples-4.0.1"))
    parser.add_argument("--synthea", default=os.path.join(shared, "testdata/synthea"))
    parser.add_argument("--out", default=TERMINOLOGY_DIR)
    args = parser.parse_args(argv)
    for path in build(args.fhir_dir, args.out, args.examples if os.path.isdir(args.examples) else None,
                      args.synthea if os.path.isdir(args.synthea) else None):
        print(f"{path}\t{os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
