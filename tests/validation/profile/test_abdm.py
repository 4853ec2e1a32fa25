"""Hand-made violations of the ABDM (NDHM) profiles, installed as `medport ig install` installs them
(conformance/install.py), each caught by $validate with its path and key (issue 20)."""
from __future__ import annotations

import copy
import json
import os

import pytest

from fhirserver import create_app
from fhirserver.conformance import install, package
from tests.conftest import FHIR_JSON, make_settings

ABDM = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data", "abdm", "ndhm.in-2.0.1")
SD = "https://nrces.in/ndhm/fhir/r4/StructureDefinition/"


def example(name: str) -> dict:
    with open(os.path.join(ABDM, "examples", f"{name}-example-01.json")) as f:
        return json.load(f)


@pytest.fixture
def validate(tmp_path, backend):
    app = create_app(make_settings(tmp_path, backend))
    install.install(app.config["MEDPORT"], package.read(ABDM))
    client = app.test_client()

    def run(resource: dict, severity: str = "error") -> set[tuple[str, str, str]]:
        r = client.post(f"/fhir/{resource['resourceType']}/$validate", data=json.dumps(resource),
                        headers={"Content-Type": FHIR_JSON})
        assert r.status_code == 200, r.get_data(as_text=True)
        return {(i["details"]["coding"][0]["code"], i["details"]["text"], i["expression"][0])
                for i in r.get_json()["issue"] if i["severity"] == severity}
    return run


def test_the_examples_conform(validate):
    assert validate(example("Patient")) == set()
    assert validate(example("Organization")) == set()


def _broken(name: str, change) -> dict:
    out = copy.deepcopy(example(name))
    change(out)
    return out


CASES = [
    ("Patient", lambda p: p.pop("identifier"), ("cardinality", "Patient.identifier", "Patient.identifier")),
    ("Patient", lambda p: p["identifier"][0]["type"]["coding"][0].pop("code"),
     ("cardinality", "Patient.identifier.type.coding.code", "Patient.identifier[0].type.coding[0].code")),
    ("Patient", lambda p: p["identifier"][0]["type"]["coding"][0].update(system="http://example.org/x"),
     ("fixed", "Patient.identifier.type.coding.system", "Patient.identifier[0].type.coding[0].system")),
    ("Patient", lambda p: p.update(name=[{"family": "Kumar"}]), ("cardinality", "Patient.name.text", "Patient.name[0].text")),
    ("Patient", lambda p: p.update(contact=[{"gender": "male"}]), ("invariant", "pat-1", "Patient.contact[0]")),
    ("Organization", lambda o: o.update(partOf={"reference": "Patient/1"}),
     ("type", "Organization.partOf", "Organization.partOf")),
    ("Organization", lambda o: o.pop("name"), ("cardinality", "Organization.name", "Organization.name")),
]


@pytest.mark.parametrize("name,change,expected", CASES)
def test_each_rule_kind_is_caught_with_its_path_and_key(validate, name, change, expected):
    broken = _broken(name, change)
    broken.setdefault("meta", {})["profile"] = [SD + name]
    assert expected in validate(broken)


def test_a_binding_is_judged_through_terminology(validate):
    """gender's required code binding is the structural check's enumeration; an extensible CodeableConcept
    binding outside its value set is a warning (profiling.html#binding)."""
    broken = _broken("Patient", lambda p: p.update(maritalStatus={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "ZZ"}]}))
    broken["meta"] = {"profile": [SD + "Patient"]}
    assert ("binding", "http://hl7.org/fhir/ValueSet/marital-status", "Patient.maritalStatus") \
        in validate(broken, "warning")
