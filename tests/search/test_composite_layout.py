"""Composite components read their base parameter's rows (search/extract.py): the new layout must
hold exactly what the earlier one did (every component copied under `<composite>#<i>`, base rows
in group 0), for every resource of the HL7 examples and the Synthea bundles."""
from __future__ import annotations

import collections
import glob
import json
import os

import pytest

from fhirserver.search.extract import component_keys, composite_layout, extract
from fhirserver.search.registry import all_params, indexed_params
from fhirserver.storage.mongo_layout import index_doc

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
BASE = "http://fhir.test/fhir"


def _resources():
    for path in sorted(glob.glob(os.path.join(DATA, "hl7-examples", "*.json"))):
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        yield r
        for e in (r.get("entry") or []) if r.get("resourceType") == "Bundle" else []:
            if isinstance(e.get("resource"), dict):
                yield e["resource"]
    for path in sorted(glob.glob(os.path.join(DATA, "synthea*", "*.json"))):
        with open(path, encoding="utf-8") as f:
            for e in json.load(f).get("entry") or []:
                yield e["resource"]


def _by_key(rows):
    out = collections.defaultdict(set)
    for kind, kind_rows in rows.items():
        for row in kind_rows:
            out[row[0]].add((kind, row[1], tuple(row[2:])))
    return out


def _slots(index):
    """The MongoDB store's composite sub-documents, comparable."""
    return sorted(json.dumps(slot, sort_keys=True) for slot in index_doc(index).get("composite", ()))


def _check(resource):
    rtype = resource["resourceType"]
    legacy, current = extract(resource, BASE, legacy=True), extract(resource, BASE)
    assert _slots(legacy) == _slots(current), resource.get("id")      # MongoDB: the same composite documents
    old, new = _by_key(legacy), _by_key(current)
    copies = set()
    for param in indexed_params(rtype):
        if param.kind != "composite":
            continue
        for i, key in enumerate(component_keys(param.key)):
            copies.add(f"{param.key}#{i}")
            # the component as the composite sees it: the same (group, values)
            assert {(k, g, c) for k, g, c in old.get(f"{param.key}#{i}", ())} == \
                   {(k, g, c) for k, g, c in new.get(key, ())}, (resource.get("id"), param.key, i)
    for key in set(old) | set(new):
        if key in copies and key not in {k for keys in composite_layout(rtype).keys.values() for k in keys}:
            assert key not in new, key                    # a shared component has no rows of its own
            continue
        # every parameter keeps its values (only the group number may differ)
        assert {(k, c) for k, _g, c in old.get(key, ())} == {(k, c) for k, _g, c in new.get(key, ())}, \
            (resource.get("id"), key)


def test_new_layout_holds_what_the_copies_held():
    n = 0
    for resource in _resources():
        if isinstance(resource, dict) and resource.get("resourceType") in all_params():
            _check(resource)
            n += 1
    assert n > 2000


def test_observation_components_are_shared():
    layout = composite_layout("Observation")
    assert layout.keys["Observation.component-code-value-quantity"] == (
        "Observation.component-code", "Observation.component-value-quantity")
    assert layout.keys["Observation.code-value-quantity"] == ("Observation.code", "Observation.value-quantity")
    # value-string also indexes CodeableConcept.text: the composite's own component keeps its rows
    assert layout.keys["Observation.code-value-string"][1] == "Observation.code-value-string#1"


@pytest.mark.parametrize("legacy", [True, False])
def test_component_groups(legacy):
    obs = {"resourceType": "Observation", "id": "bp", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
           "component": [
               {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
               {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}
    rows = _by_key(extract(obs, BASE, legacy=legacy))
    code_key, value_key = ("Observation.component-code-value-quantity#0", "Observation.component-code-value-quantity#1") \
        if legacy else component_keys("Observation.component-code-value-quantity")
    codes = {g: c[1] for _k, g, c in rows[code_key]}
    values = {g: c[3] for _k, g, c in rows[value_key]}
    assert codes == {1: "8480-6", 2: "8462-4"}
    assert values[1] > values[2]
