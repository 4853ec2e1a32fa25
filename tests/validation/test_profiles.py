"""The shipped data files: HL7 R4 only, and cardinalities that match the schema."""
from __future__ import annotations

import json

import pytest

from fhirserver.validation.schema import PROFILES


@pytest.fixture(scope="module")
def definitions():
    return json.loads((PROFILES / "fhir.schema.json").read_text(encoding="utf-8"))["definitions"]


@pytest.fixture(scope="module")
def rules():
    return json.loads((PROFILES / "required-elements.json").read_text(encoding="utf-8"))


def test_schema_is_r4_only(definitions):
    resources = [r["$ref"].rsplit("/", 1)[-1] for r in definitions["ResourceList"]["oneOf"]]
    assert len(resources) == 146 and "Patient" in resources
    for medplum in ("Project", "User", "Login", "Bot", "AccessPolicy", "SubscriptionStatus"):
        assert medplum not in definitions
    assert not {"project", "author", "account", "compartment"} & set(definitions["Meta"]["properties"])
    assert "resource" not in definitions["Reference"]["properties"]


def test_rules_name_schema_elements(definitions, rules):
    for kind in ("required", "choices"):
        for owner, elements in rules[kind].items():
            for names in elements.values():
                assert all(n in definitions[owner]["properties"] for n in names), (kind, owner, names)


@pytest.mark.parametrize("owner, element", [
    ("Observation", "status"), ("Observation", "code"), ("Questionnaire_Item", "linkId"),
    ("Extension", "url"), ("Narrative", "div"), ("Bundle", "type"), ("Bundle_Request", "method"),
    ("MedicationRequest", "medication[x]"), ("EvidenceVariable", "characteristic"),
])
def test_known_required_elements(rules, owner, element):
    assert element in rules["required"][owner]


def test_patient_has_no_required_elements(rules):
    assert "Patient" not in rules["required"]
