"""_has and _list are known parameters (search.html#has, #list): a malformed _has or a modifier on
_list is a 400 even when unknown parameters are ignored (lenient handling), never dropped as if it
were unknown (which answered every resource of the type) nor read as a list id (_list:missing=true
looked for the List 'true')."""
from __future__ import annotations

import pytest

from tests.conftest import post


@pytest.mark.parametrize("name", ["_has", "_has:", "_has:Observation", "_has:Observation:subject",
                                  "_has:Observation:subject:"])
def test_a_malformed_has_is_refused(client, name):
    assert post(client, {"resourceType": "Patient", "name": [{"family": "Sharma"}]}).status_code == 201
    r = client.get("/fhir/Patient", query_string={name: "x"})
    assert r.status_code == 400, r.json
    assert "_has" in r.json["issue"][0]["diagnostics"]


@pytest.mark.parametrize("name", ["_list:missing", "_list:not", "_list:exact"])
def test_a_modifier_on_list_is_refused(client, name):
    r = client.get("/fhir/Patient", query_string={name: "true"})
    assert r.status_code == 400 and ":" + name.split(":")[1] in r.json["issue"][0]["diagnostics"], r.json
