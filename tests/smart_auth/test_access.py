"""A patient/ grant confines every path of a search to that patient's compartment:
matches, chains, _has, _include and _revinclude (no leaking through the side doors)."""
from __future__ import annotations

import pytest

from fhirserver.search.extract import extract
from fhirserver.search.parse import parse_search
from fhirserver.smart_auth.access import search_guard
from fhirserver.smart_auth.scopes import Grants
from fhirserver.storage import open_store
from fhirserver.storage.base import Write

BASE = "http://fhir.test/fhir"
RESOURCES = [
    {"resourceType": "Organization", "id": "org", "name": "City Hospital"},
    {"resourceType": "Patient", "id": "asha", "name": [{"family": "Rao"}], "managingOrganization": {"reference": "Organization/org"}},
    {"resourceType": "Patient", "id": "ravi", "name": [{"family": "Rao"}]},
    {"resourceType": "Observation", "id": "o-asha", "status": "final", "code": {"text": "Hb"},
     "subject": {"reference": "Patient/asha"}},
    {"resourceType": "Observation", "id": "o-ravi", "status": "final", "code": {"text": "Hb"},
     "subject": {"reference": "Patient/ravi"}},
]


@pytest.fixture
def store(settings):          # each store in turn (the `backend` fixture, tests/conftest.py)
    s = open_store(settings)
    with s.transaction() as tx:
        for r in RESOURCES:
            tx.write(Write(r["resourceType"], r["id"], 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}", extract(r, BASE)))
    return s


def ids(store, rtype, params, guard):
    parsed = parse_search(rtype, params, base=BASE)
    page = store.search(rtype, parsed.query, limit=50, guard=guard)
    included = store.includes(page.items, parsed.results.includes, guard)
    return [v.id for v in page.items], [v.id for v in included]


def test_patient_scope_confines_every_path(store):
    asha = search_guard(Grants.parse("patient/*.rs"), "asha")
    assert ids(store, "Observation", [], asha) == (["o-asha"], [])
    assert ids(store, "Patient", [("family", "rao")], asha) == (["asha"], [])
    # chains and _has cannot reach into Ravi's records
    assert ids(store, "Observation", [("subject:Patient.name", "rao")], asha) == (["o-asha"], [])
    assert ids(store, "Patient", [("_has:Observation:subject:status", "final")], asha) == (["asha"], [])
    # includes are filtered too
    assert ids(store, "Patient", [("_revinclude", "Observation:subject")], asha) == (["asha"], ["o-asha"])
    assert ids(store, "Observation", [("_include", "Observation:subject")], asha) == (["o-asha"], ["asha"])
    # the organization is outside the compartment: not visible under a patient/ scope
    assert ids(store, "Patient", [("_include", "Patient:organization")], asha) == (["asha"], [])
    assert ids(store, "Organization", [], asha) == ([], [])


def test_no_patient_context_or_no_scope_sees_nothing(store):
    assert ids(store, "Observation", [], search_guard(Grants.parse("patient/*.rs"), None)) == ([], [])
    assert ids(store, "Observation", [], search_guard(Grants.parse("patient/Patient.rs"), "asha")) == ([], [])


def test_user_scope_and_granular_scope(store):
    everyone = search_guard(Grants.parse("user/*.rs"), None)
    assert ids(store, "Observation", [], everyone)[0] == ["o-asha", "o-ravi"]
    granular = search_guard(Grants.parse("user/Observation.rs?subject=Patient/ravi"), None)
    assert ids(store, "Observation", [], granular)[0] == ["o-ravi"]
