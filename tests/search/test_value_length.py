"""Very long search values (search.html#errors: a server may refuse a costly search, issue
too-costly): each value is bounded while the query is parsed, so that no value reaches a store
that cannot take it. Before, a :contains value past 50,000 bytes was a LIKE pattern SQLite refuses
("LIKE or GLOB pattern too complex": a 500) and a 2 MB regular expression on MongoDB (seconds)."""
from __future__ import annotations

import sqlite3

import pytest

from fhirserver.errors import TooCostly
from fhirserver.search.limits import MAX_PARAM_CHARS, MAX_VALUE_CHARS
from fhirserver.search.parse import parse_search
from fhirserver.storage.sqlite_search import statement_errors
from tests.conftest import post

LONG = "x" * 60_000


def refused(r):
    assert r.status_code == 400, (r.status_code, r.get_data(as_text=True)[:300])
    issue = r.json["issue"][0]
    assert issue["code"] == "too-costly" and "characters" in issue["diagnostics"], issue
    return issue["diagnostics"]


@pytest.mark.parametrize("name", ["name:contains", "name", "family:exact", "identifier", "code:text",
                                  "subject:Patient.name:contains", "_has:Observation:subject:code:text", "_id"])
def test_a_very_long_value_is_refused_on_every_parameter_kind(client, name):
    rtype = "Observation" if name in ("code:text", "subject:Patient.name:contains") else "Patient"
    refused(client.get(f"/fhir/{rtype}", query_string={name: LONG}))


def test_the_same_through_post_search_and_with_commas(client):
    r = client.post("/fhir/Patient/_search", data={"name:contains": "y" * 2_000_000})
    refused(r)
    many = ",".join(["z" * 200] * 99)            # 99 values (under the value count) but 20,000 characters
    assert len(many) > MAX_PARAM_CHARS
    refused(client.get("/fhir/Patient", query_string={"name": many}))


def test_values_within_the_bounds_are_searched(client):
    family = "k" * MAX_VALUE_CHARS
    assert post(client, {"resourceType": "Patient", "name": [{"family": family}]}).status_code == 201
    r = client.get("/fhir/Patient", query_string={"family:contains": family[1:]})
    assert r.status_code == 200 and r.json["total"] == 1
    r = client.get("/fhir/Patient", query_string={"family:exact": family})
    assert r.status_code == 200 and r.json["total"] == 1
    ids = ",".join(f"id-{i:060d}" for i in range(100))      # a long list of plain values is fine
    assert client.get("/fhir/Patient", query_string={"_id": ids}).status_code == 200


def test_the_bound_is_checked_by_the_parser():
    with pytest.raises(TooCostly):
        parse_search("Patient", [("name", "a" * (MAX_VALUE_CHARS + 1))])
    parse_search("Patient", [("name", "a" * MAX_VALUE_CHARS)])


def test_sqlite_refusing_a_pattern_is_too_costly_not_a_500():
    with pytest.raises(TooCostly), statement_errors():
        raise sqlite3.OperationalError("LIKE or GLOB pattern too complex")
