"""A token on an element of type code has an implicit system, its binding's (search.html#token:
"code ... the system is implicit"): Patient?gender=http://hl7.org/fhir/administrative-gender|male
finds the male patients, whose resources name no system; another system finds none; :not the
complement. On both stores and in the matcher (the query is widened while parsed)."""
from __future__ import annotations

import pytest

from fhirserver.search.implicit_systems import implicit_system
from fhirserver.search.matcher import Matcher
from fhirserver.search.parse import parse_search
from tests.conftest import post

GENDER = "http://hl7.org/fhir/administrative-gender"
OBS_STATUS = "http://hl7.org/fhir/observation-status"


@pytest.fixture
def people(client):
    made = {}
    for name, gender in (("m", "male"), ("f", "female"), ("n", None)):
        made[name] = post(client, {"resourceType": "Patient", **({"gender": gender} if gender else {})}).json["id"]
    made["obs"] = post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"}}).json["id"]
    return made


def ids(client, query):
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.json
    return sorted(e["resource"]["id"] for e in r.json.get("entry", []) if e["search"]["mode"] == "match")


def test_system_and_code(client, people):
    assert ids(client, f"Patient?gender={GENDER}|male") == [people["m"]]
    assert ids(client, f"Patient?gender={GENDER}|male,{GENDER}|female") == sorted([people["m"], people["f"]])
    assert ids(client, "Patient?gender=male") == [people["m"]]
    assert ids(client, "Patient?gender=|male") == [people["m"]]
    assert ids(client, "Patient?gender=http://other.org/gender|male") == []
    assert ids(client, f"Observation?status={OBS_STATUS}|final") == [people["obs"]]


def test_system_only_and_not(client, people):
    assert ids(client, f"Patient?gender={GENDER}|") == sorted([people["m"], people["f"]])
    assert ids(client, f"Patient?gender:not={GENDER}|male") == sorted([people["f"], people["n"]])


def test_the_data_and_the_matcher_agree():
    assert implicit_system("Patient.gender") == GENDER
    assert implicit_system("Observation.code") is None          # a CodeableConcept names its systems
    matcher = Matcher("http://fhir.test/fhir")
    matcher.put({"resourceType": "Patient", "id": "m", "gender": "male"})
    matcher.put({"resourceType": "Patient", "id": "f", "gender": "female"})
    query = parse_search("Patient", [("gender", f"{GENDER}|male")]).query
    assert matcher.search("Patient", query) == ["m"]
