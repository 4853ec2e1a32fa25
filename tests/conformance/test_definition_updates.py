"""A change to a definition reaches every profile that uses it, in the same process: compiled profiles
keep what they resolved (type and extension profiles, slice matchers) only while the definitions they
were resolved from are unchanged (validation/profile/compile.py, conformance Definitions.generation)."""
from __future__ import annotations

import copy

from fhirserver.interactions.update import update
from fhirserver.validation import write_policy
from tests.validation.profile._profile import CORE, derived
from tests.validation.profile._profile import resolve as shipped

EXT = "https://city.test/fhir/StructureDefinition/nickname"
PROFILE = "https://city.test/fhir/StructureDefinition/patient-with-nickname"


def extension(value_type: str) -> dict:
    sd = copy.deepcopy(shipped("StructureDefinition", CORE + "Extension"))
    sd.update(id="nickname", url=EXT, version="1", name="Nickname", status="active", derivation="constraint",
              baseDefinition=CORE + "Extension", context=[{"type": "element", "expression": "Patient"}])
    for e in sd["snapshot"]["element"]:
        if e["id"] == "Extension.value[x]":
            e["type"] = [{"code": value_type}]
        if e["id"] == "Extension.url":
            e["fixedUri"] = EXT
    return sd


def test_an_updated_extension_definition_reaches_the_profile_that_slices_it(ctx):
    update(ctx, "StructureDefinition", "nickname", extension("string"))
    profile = derived(CORE + "Patient", PROFILE, change={"Patient.extension": {
        "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}}}, add={
        "Patient.extension": [{"id": "Patient.extension:nickname", "path": "Patient.extension",
                               "sliceName": "nickname", "min": 0, "max": "1",
                               "type": [{"code": "Extension", "profile": [EXT]}]}]})
    update(ctx, "StructureDefinition", "patient-with-nickname", {**profile, "id": "patient-with-nickname", "name": "PatientWithNickname",
                                        "status": "active"})
    patient = {"resourceType": "Patient", "extension": [{"url": EXT, "valueString": "Ashu"}]}

    def errors():
        outcome = write_policy.evaluate(ctx, patient, [(PROFILE, True)])
        return [f.path for f in outcome.findings if f.severity == "error"]

    assert errors() == []
    update(ctx, "StructureDefinition", "nickname", {**extension("integer"), "version": "2"})
    assert errors(), "the profile still judged by the extension's old definition"
