"""_has is a known parameter (search.html#has): a malformed _has is a 400 even when unknown
parameters are ignored (lenient handling), never dropped as if it were unknown, which answered
every resource of the type."""
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
