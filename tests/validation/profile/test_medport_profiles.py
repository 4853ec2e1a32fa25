"""The shipped StructureDefinitions (profiles/definitions/, profiles/definitions/README.md)."""
from __future__ import annotations

import collections

from fhirserver.conformance import catalogue
from fhirserver.validation.profile.build_core import HEADER

CORE = "http://hl7.org/fhir/StructureDefinition/"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def test_core_patient_is_shipped_with_its_snapshot():
    sd = catalogue.shipped("StructureDefinition", CORE + "Patient")
    assert sd["kind"] == "resource" and sd["type"] == "Patient" and sd["fhirVersion"] == "4.0.1"
    ids = [e["id"] for e in sd["snapshot"]["element"]]
    assert ids[0] == "Patient" and "Patient.identifier" in ids and "Patient.contact.relationship" in ids
    identifier = next(e for e in sd["snapshot"]["element"] if e["id"] == "Patient.identifier")
    assert identifier["min"] == 0 and identifier["max"] == "*" and identifier["type"] == [{"code": "Identifier"}]
    assert {c["key"] for c in identifier["constraint"]} == {"ele-1"}
    root = sd["snapshot"]["element"][0]
    assert {"dom-2", "dom-3", "dom-4", "dom-5", "dom-6"} <= {c["key"] for c in root["constraint"]}
    gender = next(e for e in sd["snapshot"]["element"] if e["id"] == "Patient.gender")
    assert gender["binding"] == {"strength": "required",
                                 "valueSet": "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"}


def test_every_core_definition_is_shipped_reduced():
    sds = [sd for sd in catalogue.all_of("StructureDefinition") if sd["url"].startswith(CORE)
           or sd["url"].startswith("http://fhir-registry.smarthealthit.org/")]       # two core extensions
    kinds = collections.Counter(sd["kind"] for sd in sds)
    assert kinds == {"resource": 149, "logical": 1, "complex-type": 43 + 393, "primitive-type": 20}
    for sd in sds:
        assert set(sd) <= set(HEADER) | {"snapshot"}, sd["url"]
        for e in sd["snapshot"]["element"]:
            assert {"id", "path", "min", "max"} <= set(e) and not {"definition", "short", "mapping"} & set(e)
    extension = catalogue.shipped("StructureDefinition", CORE + "patient-birthPlace")
    assert extension["context"] == [{"type": "element", "expression": "Patient"}]
    url = next(e for e in extension["snapshot"]["element"] if e["id"] == "Extension.url")
    assert url["fixedUri"] == CORE + "patient-birthPlace"
    best = next(c for e in catalogue.shipped("StructureDefinition", CORE + "Patient")["snapshot"]["element"]
                for c in e.get("constraint", ()) if c["key"] == "dom-6")
    assert best["severity"] == "warning" and best["extension"][0]["valueBoolean"] is True


def test_us_core_is_shipped():
    bp = catalogue.shipped("StructureDefinition", US_CORE + "us-core-blood-pressure")
    assert bp["version"] == "5.0.1" and bp["baseDefinition"] == US_CORE + "us-core-vital-signs"
    slices = {e["id"] for e in bp["snapshot"]["element"] if e.get("sliceName")}
    assert {"Observation.component:systolic", "Observation.component:diastolic"} <= slices
    smoking = catalogue.shipped("StructureDefinition", US_CORE + "us-core-smokingstatus")
    assert smoking["version"] == "7.0.0" and smoking["differential"]["element"]
