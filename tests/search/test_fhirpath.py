"""The fast FHIRPath subset agrees with what the search expressions mean."""
from __future__ import annotations

import json

from fhirserver.search.fhirpath import compile_expression
from fhirserver.search.registry import all_params
from tests.conftest import EXAMPLES_DIR


def load(name):
    with open(f"{EXAMPLES_DIR}/{name}") as f:
        return json.load(f)


def test_paths_casts_and_filters():
    obs = load("Observation-example.json")
    assert [v["coding"][0]["code"] for v, _t in compile_expression("Observation.code", "Observation")(obs)] == ["29463-7"]
    values = compile_expression("(Observation.value as Quantity) | (Observation.value as SampledData)", "Observation")(obs)
    assert values == [(obs["valueQuantity"], "Quantity")]
    subject = compile_expression("Observation.subject.where(resolve() is Patient)", "Observation")(obs)
    assert subject == [(obs["subject"], None)]
    assert compile_expression("Observation.subject.where(resolve() is Group)", "Observation")(obs) == []
    effective = compile_expression("Observation.effective", "Observation")(obs)
    assert effective == [(obs["effectiveDateTime"], "DateTime")]


def test_union_keeps_only_this_type():
    patient = load("Patient-example.json")
    values = compile_expression("Patient.name | Practitioner.name", "Patient")(patient)
    assert len(values) == len(patient["name"])


def test_where_system_and_fallback():
    patient = load("Patient-example.json")
    phones = compile_expression("Patient.telecom.where(system='phone')", "Patient")(patient)
    assert phones and all(v["system"] == "phone" for v, _t in phones)
    deceased = compile_expression("Patient.deceased.exists() and Patient.deceased != false", "Patient")(patient)
    assert deceased == [(False, None)]


def test_every_registered_parameter_evaluates_on_the_examples():
    import glob
    import os
    for path in glob.glob(os.path.join(EXAMPLES_DIR, "*.json"))[:200]:
        resource = json.load(open(path))
        if "resourceType" not in resource:
            continue
        for param in all_params().get(resource["resourceType"], {}).values():
            param.evaluate(resource)   # must not raise


def test_plain_paths_walk_exactly_as_the_general_interpreter():
    """The fast walker of plain element paths (fhirpath._plain_path) gives what _apply gives, for every
    search parameter of every type over the HL7 R4 examples."""
    import glob
    import json
    import os

    from fhirserver.search import fhirpath
    from fhirserver.search.registry import indexed_params
    examples = os.path.join(os.path.dirname(__file__), "..", "data", "hl7-examples", "*.json")
    checked = 0
    for path in sorted(glob.glob(examples)):
        with open(path, encoding="utf-8") as f:
            resource = json.load(f)
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        for param in indexed_params(rtype):
            expression = getattr(param, "expression", "") or ""
            for part in fhirpath.split_union(expression):
                part = part.strip()
                if not part.startswith(rtype + "."):
                    continue
                try:
                    union = fhirpath._Parser(fhirpath._tokens(part), rtype).union()
                except fhirpath.Unsupported:
                    continue
                for steps in union:
                    walk = fhirpath._plain_path(steps)
                    if walk is not None:
                        assert walk(resource) == fhirpath._apply(steps, resource), (path, part)
                        checked += 1
    assert checked > 5000
