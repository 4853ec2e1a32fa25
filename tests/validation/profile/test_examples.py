"""The official R4 examples against their base type's StructureDefinition, with the shipped terminology.

None of the official examples claims a profile the server ships (they claim vitalsigns, sdc-* and
cqf-questionnaire, which are not in R4's core definitions), so each is validated against the core
definition of its type: what it must satisfy whatever it claims. The examples below are wrong and
must fail with exactly these findings (checked by hand against the R4 pages):
"""
from __future__ import annotations

import json

import pytest

from ._profile import CORE, DATA, US_CORE, errors, run

KNOWN = {
    # Questionnaire.item.linkId is 1..1 (questionnaire.html); 32 display items leave it out
    "Questionnaire-qs1.json": {("cardinality", "Questionnaire.item.linkId")},
    # DeviceMetric.parent: Reference(Device) only
    "DeviceMetric-example.json": {("type", "DeviceMetric.parent")},
    # DeviceUseStatement.reasonReference: Condition | Observation | DiagnosticReport | DocumentReference | Media
    "DeviceUseStatement-example.json": {("type", "DeviceUseStatement.reasonReference")},
    # MedicationRequest.dispenseRequest.performer: Reference(Organization) only
    "MedicationRequest-medrx0301.json": {("type", "MedicationRequest.dispenseRequest.performer")},
    # Observation.performer may not be an Encounter
    "Observation-clinical-gender.json": {("type", "Observation.performer")},
    # us-core-ethnicity is a complex extension: its value[x] is 0..0, the example gives valueCodeableConcept;
    # and its context is Patient, RelatedPerson, Person, Practitioner, FamilyMemberHistory, not Observation
    "Observation-example-genetics-brcapat.json": {("cardinality", "Extension.value[x]"),
                                                  ("profile", US_CORE + "us-core-ethnicity")},
    # R4's own StructureDefinitions use three core extensions outside the contexts R4 defines for them
    # (normative-version: StructureDefinition, used on ElementDefinition; fhir-type: ElementDefinition.type.code,
    # used on ElementDefinition.type; regex: Questionnaire.item or ElementDefinition, used on its .type)
    "Bundle-types.json": {("profile", CORE + "structuredefinition-normative-version"),
                          ("profile", CORE + "structuredefinition-fhir-type"), ("profile", CORE + "regex")},
}
# ... and normative-version on six OperationDefinitions
KNOWN.update({f"OperationDefinition-{name}.json": {("profile", CORE + "structuredefinition-normative-version")}
              for name in ("CodeSystem-lookup", "CodeSystem-subsumes", "CodeSystem-validate-code",
                           "Resource-validate", "ValueSet-expand", "ValueSet-validate-code")})
# narratives with no text at all (txt-2): the invariant engine's verdict, checked by test_invariants.py too
EMPTY_NARRATIVE = ("ActivityDefinition-blood-tubes-supply.json", "ActivityDefinition-heart-valve-replacement.json",
                   "EventDefinition-example.json")


@pytest.fixture(scope="module")
def examples() -> dict[str, dict]:
    files = sorted(p for p in (DATA / "hl7-examples").glob("*.json") if p.name != "package.json")
    assert len(files) == 779
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in files}


@pytest.fixture(scope="module")
def findings(examples):
    return {name: run(res) for name, res in examples.items()}


def test_official_examples_conform_to_their_base_definitions(findings):
    """Every rule kind but invariants (whose engine test_invariants.py proves on the same examples)."""
    found = {}
    for name, fs in findings.items():
        kinds = {(rule, key) for rule, key, _path in errors(fs) if rule != "invariant"}
        if kinds:
            found[name] = kinds
    assert found == KNOWN


def test_the_known_errors_are_located(findings):
    paths = {name: sorted({p for _r, _k, p in errors(findings[name])}) for name in KNOWN}
    assert paths["DeviceMetric-example.json"] == ["DeviceMetric.parent"]
    assert paths["Observation-clinical-gender.json"] == ["Observation.performer[0]"]
    assert paths["Observation-example-genetics-brcapat.json"] == ["Observation.extension[1]",
                                                                  "Observation.extension[1].valueCodeableConcept"]
    assert paths["OperationDefinition-ValueSet-expand.json"] == ["OperationDefinition.extension[2]"]
    linkids = [p for p in paths["Questionnaire-qs1.json"]]
    assert len(linkids) == 32 and "Questionnaire.item[0].item[0].linkId" in linkids


def test_invariants_are_evaluated_on_the_examples(findings):
    for name in EMPTY_NARRATIVE:
        assert ("invariant", "txt-2", f"{name.split('-')[0]}.text.div") in errors(findings[name])
    # dom-6 (best practice: a narrative) is a warning, never an error
    warned = [n for n, fs in findings.items() if any(f.key == "dom-6" and f.severity == "warning" for f in fs)]
    assert len(warned) > 100
    assert not any(f.key == "dom-6" and f.severity == "error" for fs in findings.values() for f in fs)


def test_nested_resources_are_checked_against_their_own_type(examples):
    bundle = json.loads(json.dumps(examples["Bundle-bundle-transaction.json"]))
    patient = next(e for e in bundle["entry"] if e.get("resource", {}).get("resourceType") == "Patient")
    index = bundle["entry"].index(patient)
    patient["resource"]["gender"] = "robot"
    patient["resource"]["managingOrganization"] = {"reference": "Practitioner/1"}
    found = errors(run(bundle))
    assert ("binding", "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1",
            f"Bundle.entry[{index}].resource.gender") in found
    assert ("type", "Patient.managingOrganization", f"Bundle.entry[{index}].resource.managingOrganization") in found
