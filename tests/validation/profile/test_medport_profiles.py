"""The shipped StructureDefinitions (profiles/definitions/, profiles/definitions/README.md): R4 core, US Core
and Med-Port's own profiles, checked with the profile validator (fhirserver.validation.profile.check)."""
from __future__ import annotations

import collections
import json
import uuid

import pytest

from fhirserver.conformance import catalogue, seed
from fhirserver.validation import validate
from fhirserver.validation.profile import build_medport, check
from fhirserver.validation.profile.build_core import HEADER
from fhirserver.validation.profile.snapshot import generate

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
    # the 146 R4 resource types, Resource and DomainResource (no R4B SubscriptionStatus: build_core.py)
    assert kinds == {"resource": 148, "logical": 1, "complex-type": 43 + 393, "primitive-type": 20}
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
    assert catalogue.shipped("StructureDefinition", US_CORE + "us-core-smokingstatus") is None   # one release


MEDPORT = "https://medport.health/fhir/StructureDefinition/"
UHID = "https://medport.health/fhir/sid/uhid"


def _resolve(rtype, canonical):
    url, _, version = canonical.partition("|")
    return catalogue.shipped(rtype, url, version or None)


def _errors(resource: dict, sd: dict) -> list[tuple[str, str, str]]:
    return [(f.rule, f.key, f.path) for f in check(resource, sd, resolve=_resolve, terminology=None)
            if f.severity == "error"]


@pytest.mark.parametrize("name, rtype", [("medport-patient", "Patient"),
                                         ("medport-diagnosticreport", "DiagnosticReport")])
def test_medport_profiles_are_shipped_complete_and_rebuilt_as_committed(name, rtype):
    sd = catalogue.shipped("StructureDefinition", MEDPORT + name)
    assert (sd["type"], sd["derivation"], sd["baseDefinition"]) == (rtype, "constraint", CORE + rtype)
    assert sd["differential"]["element"][0]["id"] == rtype
    validate(sd)                                    # a well-formed R4 resource (the init step stores it)
    base = catalogue.shipped("StructureDefinition", CORE + rtype)["snapshot"]["element"]
    ids = [e["id"] for e in sd["snapshot"]["element"]]
    assert {e["id"] for e in base} <= set(ids) and {e["path"] for e in base} <= {e["path"] for e in
                                                                                 sd["snapshot"]["element"]}
    assert len(ids) == len(set(ids))
    made = {"medport-patient": build_medport.patient, "medport-diagnosticreport": build_medport.diagnostic_report}
    assert generate(made[name](), _resolve) == sd   # profiles/definitions/medport/ is what build_medport writes


def test_medport_patient_requires_one_uhid():
    sd = catalogue.shipped("StructureDefinition", MEDPORT + "medport-patient")
    by_id = {e["id"]: e for e in sd["snapshot"]["element"]}
    uhid = by_id["Patient.identifier:uhid"]
    assert (uhid["min"], uhid["max"], uhid["patternIdentifier"]) == (1, "1", {"system": UHID})
    assert by_id["Patient.identifier"]["slicing"]["discriminator"] == [{"type": "pattern", "path": "system"}]
    assert by_id["Patient.identifier"]["slicing"]["rules"] == "open"
    assert (by_id["Patient.identifier:uhid.value"]["min"], by_id["Patient.identifier:uhid.value"]["max"]) == (1, "1")
    assert "template" in sd["description"]
    other = {"system": "http://hospital.example/mrn", "value": "M1"}
    assert _errors({"resourceType": "Patient", "identifier": [other, {"system": UHID, "value": "U-1"}]}, sd) == []
    assert _errors({"resourceType": "Patient", "identifier": [other]}, sd) == [
        ("cardinality", "Patient.identifier:uhid", "Patient.identifier")]
    assert _errors({"resourceType": "Patient", "identifier": [{"system": UHID}]}, sd) == [
        ("cardinality", "Patient.identifier:uhid.value", "Patient.identifier[0].value")]
    two = {"resourceType": "Patient", "identifier": [{"system": UHID, "value": "a"}, {"system": UHID, "value": "b"}]}
    assert _errors(two, sd) == [("cardinality", "Patient.identifier:uhid", "Patient.identifier")]


def test_a_store_puts_its_own_uhid_system_in_the_template_place():
    mine = "https://hie.example/fhir/sid/uhid"
    sd = next(r for r in seed.wanted(mine) if r.get("url") == MEDPORT + "medport-patient")
    assert UHID not in json.dumps(sd)
    # as stored: with a version id (compiled forms are cached per url, version and meta.versionId)
    sd = {**sd, "meta": {"versionId": uuid.uuid4().hex}}
    assert _errors({"resourceType": "Patient", "identifier": [{"system": mine, "value": "U-1"}]}, sd) == []
    assert _errors({"resourceType": "Patient", "identifier": [{"system": UHID, "value": "U-1"}]}, sd) == [
        ("cardinality", "Patient.identifier:uhid", "Patient.identifier")]


def test_medport_diagnostic_report():
    sd = catalogue.shipped("StructureDefinition", MEDPORT + "medport-diagnosticreport")
    by_id = {e["id"]: e for e in sd["snapshot"]["element"]}
    assert by_id["DiagnosticReport.subject"]["type"] == [{"code": "Reference", "targetProfile": [MEDPORT + "medport-patient"]}]
    assert by_id["DiagnosticReport.performer"]["min"] == 1
    assert "medport-dr-1" in {c["key"] for c in by_id["DiagnosticReport"]["constraint"]}
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "Complete blood count"},
              "subject": {"reference": "Patient/p1"}, "performer": [{"reference": "Organization/lab"}],
              "presentedForm": [{"contentType": "application/pdf", "url": "Binary/b1"}]}
    assert _errors(report, sd) == []
    bare = {k: v for k, v in report.items() if k != "presentedForm"}
    assert _errors({**bare, "result": [{"reference": "Observation/o1"}]}, sd) == []
    assert _errors(bare, sd) == [("invariant", "medport-dr-1", "DiagnosticReport")]
    wrong = {**report, "subject": {"reference": "Group/g1"}, "performer": [{"reference": "Practitioner/d1"}]}
    assert sorted(_errors(wrong, sd)) == [("type", "DiagnosticReport.performer", "DiagnosticReport.performer[0]"),
                                          ("type", "DiagnosticReport.subject", "DiagnosticReport.subject")]
    missing = {k: v for k, v in report.items() if k not in ("subject", "performer")}
    assert sorted(_errors(missing, sd)) == [("cardinality", "DiagnosticReport.performer", "DiagnosticReport.performer"),
                                            ("cardinality", "DiagnosticReport.subject", "DiagnosticReport.subject")]
