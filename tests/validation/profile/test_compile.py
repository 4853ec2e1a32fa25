"""A StructureDefinition is compiled once per version into a tree of element checks (compile.py)."""
from __future__ import annotations

import copy

import pytest

from fhirserver.validation.profile import check
from fhirserver.validation.profile.compile import compile_sd, compiled

from ._profile import BP, CORE, resolve, sd, synthea_bp


def test_compiled_once_per_version():
    bp = sd(BP)
    first = compiled(bp)
    assert compiled(bp) is first
    assert compiled(copy.deepcopy(bp)) is first                   # same url, version, shipped
    stored = dict(copy.deepcopy(bp), meta={"versionId": "7"})
    assert compiled(stored) is not first and compiled(stored) is compiled(dict(stored))


def test_the_tree_follows_the_element_ids():
    tree = compiled(sd(BP))
    component = tree.by_id["Observation.component"]
    assert [s.slice_name for s in component.slices] == ["systolic", "diastolic"]
    assert component.slicing == ((("pattern", "code"),), "open", False)
    systolic = component.slices[0]
    value, tcode = systolic.kids["valueQuantity"]
    assert value.id == "Observation.component:systolic.value[x]" and tcode == "Quantity"
    assert systolic.kids["valueString"][1] == "string" and "string" not in value.allowed
    assert value.kids["code"][0].fixed == "mm[Hg]"
    assert [n.id for n in tree.root.required] == ["Observation.status", "Observation.category",
                                                   "Observation.code", "Observation.subject",
                                                   "Observation.effective[x]", "Observation.component"]
    # a contentReference shares the children of the element it names
    ref = component.kids["referenceRange"][0]
    assert ref.kids is tree.by_id["Observation.referenceRange"].kids


def test_a_definition_without_snapshot_is_one_profile_finding():
    bare = {"resourceType": "StructureDefinition", "url": "https://example.org/bare", "type": "Observation"}
    with pytest.raises(ValueError):
        compile_sd(bare)
    found = check(synthea_bp(), bare, resolve=resolve, terminology=None)
    assert [(f.severity, f.rule, f.key) for f in found] == [("error", "profile", "https://example.org/bare")]


def test_core_definitions_compile():
    for name in ("Patient", "Observation", "Bundle", "Questionnaire", "Extension", "Quantity", "string"):
        assert compiled(sd(CORE + name)).root.id == name


def test_a_differential_only_profile_gets_its_snapshot_generated_once():
    mrn = "https://hospital.example/mrn"
    profile = {"resourceType": "StructureDefinition", "url": "https://example.org/diff-only", "version": "1",
               "type": "Patient", "kind": "resource", "derivation": "constraint", "baseDefinition": CORE + "Patient",
               "differential": {"element": [
                   {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1, "slicing": {
                       "discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
                   {"id": "Patient.identifier:mrn", "path": "Patient.identifier", "sliceName": "mrn", "min": 1},
                   {"id": "Patient.identifier:mrn.system", "path": "Patient.identifier.system", "min": 1,
                    "fixedUri": mrn}]}}
    pat = {"resourceType": "Patient", "identifier": [{"system": "https://other.example", "value": "1"}]}
    found = check(pat, profile, resolve=resolve, terminology=None)
    assert [(f.rule, f.key, f.path) for f in found if f.severity == "error"] == [
        ("cardinality", "Patient.identifier:mrn", "Patient.identifier")]
    assert compiled(profile) is compiled(profile, resolve)          # cached under the profile's version
    pat["identifier"].append({"system": mrn, "value": "2"})
    assert not [f for f in check(pat, profile, resolve=resolve, terminology=None) if f.severity == "error"]
