"""Hostile search values are data on every backend: MongoDB operators, JavaScript, catastrophic
regular expressions and $-field names are matched literally or refused, never executed."""
from __future__ import annotations

import time

import pytest

from tests.conftest import FHIR_JSON, post

HOSTILE = ['{"$ne": null}', "$where", "this.name == 'x' || true", ".*", "(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
           "$gt", "'; return true; //"]


@pytest.fixture
def stored(client):
    for family in ["Sharma", "$where", '{"$ne": null}', "(a+)+$"]:
        assert post(client, {"resourceType": "Patient", "name": [{"family": family}],
                             "identifier": [{"system": "http://s", "value": family}]}).status_code == 201
    return client


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("param", ["name", "family:exact", "identifier", "_id", "family:contains", "address"])
def test_values_match_literally(stored, param, value):
    started = time.monotonic()
    r = stored.get("/fhir/Patient", query_string={param: value})
    assert time.monotonic() - started < 5           # no catastrophic backtracking anywhere
    assert r.status_code in (200, 400), r.json      # refused, or matched literally: the spec allows either
    if r.status_code == 200:
        families = [e["resource"]["name"][0]["family"] for e in r.json.get("entry", [])]
        assert "Sharma" not in families               # never "match everything"
        if param in ("family:exact", "identifier") and value in ("$where", '{"$ne": null}', "(a+)+$"):
            assert families == [value]


@pytest.mark.parametrize("name", ["$where", "$ne", "name.$where", "name:$regex", "ix.token.code", "_id.$gt"])
def test_operator_names_are_unknown_parameters(stored, name):
    r = stored.get("/fhir/Patient", query_string={name: "x"}, headers={"Prefer": "handling=strict"})
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"


def test_field_names_starting_with_dollar_are_refused(client):
    r = client.post("/fhir/Patient", data='{"resourceType": "Patient", "$where": "1", "name": [{"$ne": null}]}',
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient").json["total"] == 0
