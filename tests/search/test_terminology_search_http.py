"""Search with terminology and UCUM over HTTP, on both stores: token :in over a shipped value set
(GET and POST _search, chains, _has, conditional create, a batch's search entry), :not-in, :below /
:above over a shipped hierarchy, 400s that name the unknown value set; and quantity search in UCUM
canonical units (search.html#token, #modifiers, #quantity)."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, post

VITALS = "http://hl7.org/fhir/ValueSet/observation-vitalsignresult"
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def observation(code, patient=None, quantity=None, system=LOINC):
    out = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": system, "code": code}]}}
    if patient:
        out["subject"] = {"reference": f"Patient/{patient}"}
    if quantity:
        value, unit = quantity
        out["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return out


@pytest.fixture
def world(client):
    ids = {"p1": post(client, {"resourceType": "Patient", "name": [{"family": "Rao"}]}).get_json()["id"],
           "p2": post(client, {"resourceType": "Patient", "name": [{"family": "Iyer"}]}).get_json()["id"]}
    made = {"systolic": observation("8480-6", ids["p1"], (1500, "mg/dL")),      # a vital sign (LOINC)
            "heart": observation("8867-4", ids["p1"]),                          # a vital sign
            "glucose": observation("2339-0", ids["p2"], (0.0054, "g")),         # not a vital sign
            "local": observation("8480-6", ids["p2"], system="urn:local")}      # right code, wrong system
    for name, resource in made.items():
        r = post(client, resource)
        assert r.status_code == 201, r.get_data(as_text=True)
        ids[name] = r.get_json()["id"]
    for name, cls in (("emergency", "EMER"), ("ambulatory", "AMB"), ("virtual", "VR")):
        ids[name] = post(client, {"resourceType": "Encounter", "status": "finished",
                                  "class": {"system": ACT, "code": cls}}).get_json()["id"]
    return ids


def found(client, url, status=200) -> set[str]:
    r = client.get(url)
    assert r.status_code == status, r.get_data(as_text=True)
    return {e["resource"]["id"] for e in r.get_json().get("entry", ()) if e["search"]["mode"] == "match"}


def test_in_over_a_shipped_value_set(client, world):
    assert found(client, f"/fhir/Observation?code:in={VITALS}") == {world["systolic"], world["heart"]}
    r = client.post("/fhir/Observation/_search", data=f"code:in={VITALS}",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert {e["resource"]["id"] for e in r.get_json()["entry"]} == {world["systolic"], world["heart"]}


def test_not_in_is_every_resource_without_a_coding_in_it(client, world):
    assert found(client, f"/fhir/Observation?code:not-in={VITALS}") == {world["glucose"], world["local"]}


def test_in_inside_chains_and_has(client, world):
    assert found(client, f"/fhir/Patient?_has:Observation:subject:code:in={VITALS}") == {world["p1"]}
    assert found(client, f"/fhir/Observation?subject:Patient._has:Observation:subject:code:in={VITALS}") == {
        world["systolic"], world["heart"]}


def test_below_and_above_over_a_shipped_hierarchy(client, world):
    everything = {world["emergency"], world["ambulatory"], world["virtual"]}
    assert found(client, f"/fhir/Encounter?class:below={ACT}|_ActEncounterCode") == everything
    assert found(client, f"/fhir/Encounter?class:below={ACT}|EMER") == {world["emergency"]}
    assert found(client, f"/fhir/Encounter?class:above={ACT}|EMER") == {world["emergency"]}


@pytest.mark.parametrize("query, text", [
    ("code:in=http://example.org/ValueSet/none", "http://example.org/ValueSet/none"),
    ("code:below=8480-6", "[system]|[code]"),
    (f"code:below={ACT}|NOPE", "'NOPE' is not known"),
])
def test_bad_values_are_400_naming_them(client, world, query, text):
    r = client.get(f"/fhir/Observation?{query}")
    assert r.status_code == 400
    assert text in r.get_json()["issue"][0]["diagnostics"]


def test_conditional_create_and_batch_search_take_in(client, world):
    again = post(client, observation("9279-1"), **{"If-None-Exist": f"code:in={VITALS}"})
    assert again.status_code == 412          # two vital signs already match: the criteria are not selective
    new = post(client, {"resourceType": "Patient", "name": [{"family": "Das"}]},
               **{"If-None-Exist": f"_has:Observation:subject:code:in={VITALS}"})
    assert new.status_code == 200 and new.get_json()["id"] == world["p1"]
    batch = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"request": {"method": "GET", "url": f"Observation?code:in={VITALS}"}}]}
    r = client.post("/fhir", json=batch, headers={"Content-Type": FHIR_JSON})
    entry = r.get_json()["entry"][0]
    assert entry["response"]["status"].startswith("200")
    assert {e["resource"]["id"] for e in entry["resource"]["entry"]} == {world["systolic"], world["heart"]}


def test_quantity_in_ucum_canonical_units(client, world):
    assert found(client, f"/fhir/Observation?value-quantity=gt1|{UCUM}|g/dL") == {world["systolic"]}
    assert found(client, f"/fhir/Observation?value-quantity=lt1|{UCUM}|g/dL") == set()
    assert found(client, f"/fhir/Observation?value-quantity=5.4|{UCUM}|mg") == {world["glucose"]}
    assert found(client, "/fhir/Observation?value-quantity=5.4||mg") == set()        # no system: as written
    assert found(client, f"/fhir/Observation?code-value-quantity={LOINC}|8480-6$gt14|{UCUM}|g/L") == {
        world["systolic"]}
