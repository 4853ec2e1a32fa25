"""A fuzzer of hostile search shapes (security issue 12; docs/search.md "Cost limits"): chains,
typed or not, through any-type references and at any depth, nested _has, _include/_revinclude
with :iterate, composites, many values and many repeats. Every request answers 200 or 400 on
both stores, never 500; every query that parses stays under the node cap. The work is bounded by
counting query nodes, not by the clock."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fhirserver.definitions import resource_types
from fhirserver.errors import FhirError
from fhirserver.search.limits import DEFAULT_LIMITS, size
from fhirserver.search.parse import parse_search
from fhirserver.search.registry import params_for
from tests.conftest import post

TYPES = ["Patient", "Observation", "Provenance", "Encounter", "ServiceRequest", "CarePlan", "AuditEvent", "Group"]
VALUES = ["x", "sharma", "1", "gt2020", "http://loinc.org|8480-6", "Patient/1", "8480-6$lt60", "lt5.4|http://u|mg",
          "http://loinc.org|8480-6$gt1", "true", "a\\,b", "", "eq2020-01-01", "12.5|42|km"]


def _refs(rtype):
    return sorted(c for c, p in params_for(rtype).items() if p.kind == "reference")


def _codes(rtype):
    return sorted(params_for(rtype))


@st.composite
def chain_name(draw, rtype, depth):
    """A parameter name of rtype: a leaf, or a chain / _has link (typed or not) and more."""
    step = draw(st.sampled_from(["leaf", "chain", "has"])) if depth < 6 else "leaf"
    if step == "leaf":
        return draw(st.sampled_from(_codes(rtype) + ["_id", "_list"]))
    if step == "chain":
        refs = _refs(rtype)
        if not refs:
            return draw(st.sampled_from(_codes(rtype)))
        code = draw(st.sampled_from(refs))
        targets = [t for t in params_for(rtype)[code].targets if t in resource_types()] or TYPES
        if draw(st.booleans()):
            target = draw(st.sampled_from(targets[:20]))
            return f"{code}:{target}." + draw(chain_name(target, depth + 1))
        target = draw(st.sampled_from(targets[:20]))      # where the rest is drawn from
        return f"{code}." + draw(chain_name(target, depth + 1))
    source = draw(st.sampled_from(TYPES))
    refs = _refs(source)
    if not refs:
        return draw(st.sampled_from(_codes(rtype)))
    return f"_has:{source}:{draw(st.sampled_from(refs))}:" + draw(chain_name(source, depth + 1))


@st.composite
def value(draw):
    n = draw(st.sampled_from([1, 2, 5, 99, 100, 101, 496, 600]))
    one = draw(st.sampled_from(VALUES))
    return ",".join([one] * n)


@st.composite
def query(draw):
    rtype = draw(st.sampled_from(TYPES))
    params = []
    for _ in range(draw(st.integers(1, 4))):
        name, val = draw(chain_name(rtype, 0)), draw(value())
        params += [(name, val)] * draw(st.sampled_from([1, 1, 2, 10, 51, 200]))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["_include", "_revinclude", "_include:iterate", "_revinclude:iterate"]))
        source = draw(st.sampled_from(TYPES))
        ref = draw(st.sampled_from(_refs(source) + ["*"]))
        params.append((kind, "*" if draw(st.booleans()) else f"{source}:{ref}"))
    if draw(st.booleans()):
        params.append(("code-value-quantity", draw(value())))
    return rtype, params


REPORTED = [
    ("Provenance", [("target.based-on.subject.name", "x")]),
    ("Provenance", [("target.based-on.subject.name", "x")] * 32),
    ("Observation", [("subject:Patient.link:Patient.link:Patient.link:Patient.name", "x")]),
    ("Patient", [("name", ",".join(["a"] * 496))]),
    ("Patient", [("name", "a")] * 1000),
]


def _example_all(fn):
    for rtype, params in REPORTED:
        fn = example((rtype, params))(fn)
    return fn


@_example_all
@given(query())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parsed_queries_stay_under_the_node_cap(case):
    rtype, params = case
    try:
        parsed = parse_search(rtype, params)
    except FhirError as e:
        assert e.status == 400, e
        return
    assert size(parsed.query) <= DEFAULT_LIMITS.max_nodes
    assert len(params) <= DEFAULT_LIMITS.max_params


@pytest.fixture
def seeded(client):
    pid = post(client, {"resourceType": "Patient", "name": [{"family": "Sharma"}]}).json["id"]
    oid = post(client, {"resourceType": "Observation", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "valueQuantity": {"value": 50, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                        "subject": {"reference": f"Patient/{pid}"}}).json["id"]
    post(client, {"resourceType": "Provenance", "target": [{"reference": f"Observation/{oid}"}],
                  "recorded": "2024-01-01T00:00:00Z", "agent": [{"who": {"reference": f"Patient/{pid}"}}]})
    return client


@_example_all
@given(query())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
def test_every_hostile_search_answers_200_or_400(seeded, case):
    rtype, params = case
    r = seeded.get(f"/fhir/{rtype}?{urlencode(params)}")
    # generated queries: each is either valid (200) or refused (400), never a 5xx; which is the point
    assert r.status_code in (200, 400), (r.status_code, r.get_data(as_text=True)[:400])
    assert r.json["resourceType"] == ("Bundle" if r.status_code == 200 else "OperationOutcome")
