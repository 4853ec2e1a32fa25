"""Patient/$match and the registration duplicate rule find the same person however the probe is
typed, and a malformed probe is a 400, not a 500."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, post

H = {"Content-Type": FHIR_JSON}


def match(client, probe: dict, **params):
    body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": probe}] + [
        {"name": k, "valueBoolean" if isinstance(v, bool) else "valueInteger": v} for k, v in params.items()]}
    return client.post("/fhir/Patient/$match", json=body, headers=H)


@pytest.fixture
def mira(client):
    for i in range(250):     # many patients born the same day: candidates must not stop at them
        post(client, {"resourceType": "Patient", "name": [{"family": f"Other{i}", "given": ["X"]}],
                      "birthDate": "1980-05-06"})
    return post(client, {"resourceType": "Patient", "name": [{"family": "Das", "given": ["Mira"]}],
                         "birthDate": "1980-05-06", "gender": "female",
                         "telecom": [{"system": "phone", "value": "9810000000"},
                                     {"system": "email", "value": "Mira.Das@Example.in"}]}).json


def test_the_same_person_typed_another_way_is_certain(client, mira):
    probe = {"resourceType": "Patient", "name": [{"family": "das", "given": ["MIRA"]}], "birthDate": "1980-05-06",
             "telecom": [{"system": "phone", "value": "+91 98100 00000"}]}
    r = match(client, probe)
    assert r.status_code == 200, r.json
    top = r.json["entry"][0]
    assert top["resource"]["id"] == mira["id"] and top["search"]["score"] == 1.0
    assert top["search"]["extension"][0]["valueCode"] == "certain"
    by_email = {**probe, "telecom": [{"system": "email", "value": "mira.das@example.in"}]}
    assert match(client, by_email, onlyCertainMatches=True).json["entry"][0]["resource"]["id"] == mira["id"]


def test_grades_and_count(client, mira):
    partial = {"resourceType": "Patient", "name": [{"family": "Das", "given": ["Mira"]}], "birthDate": "1980-05-06"}
    r = match(client, partial)
    grades = [e["search"]["extension"][0]["valueCode"] for e in r.json["entry"]]
    assert r.json["entry"][0]["resource"]["id"] == mira["id"] and grades[0] == "probable"
    assert match(client, partial, onlyCertainMatches=True).json["total"] == 0
    assert match(client, {"resourceType": "Patient", "birthDate": "1980-05-06"}).json["total"] == 0
    assert match(client, partial, count=0).status_code == 400


def test_the_registration_duplicate_rule_sees_through_case_and_phone_forms(client, mira):
    r = client.post("/api/registrations", json={
        "given": "mira", "family": "DAS", "birthDate": "1980-05-06", "gender": "female",
        "phone": "+91 98100 00000", "username": "mira2", "password": "a long password"})
    # the answer is the same for everyone; the phone on record hears it (docs/uhid.md)
    from fhirserver import outbox
    sent = outbox.messages(client.application.config["MEDPORT"].store)
    assert r.status_code == 202 and "already exists" in sent[-1][1]["body"]


@pytest.mark.parametrize("probe", [
    {"resourceType": "Patient", "name": {"family": "Das"}},
    {"resourceType": "Patient", "name": ["Das"]},
    {"resourceType": "Patient", "name": [{"family": 5}]},
    {"resourceType": "Patient", "identifier": [{"system": 5, "value": 7}]},
    {"resourceType": "Patient", "telecom": "9810000000"},
    {"resourceType": "Observation"},
])
def test_a_malformed_probe_is_a_400(client, probe):
    r = match(client, probe)
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
