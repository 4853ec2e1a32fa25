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
