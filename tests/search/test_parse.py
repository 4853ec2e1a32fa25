"""Query parsing: names, modifiers, chains, _has, result parameters, errors."""
from __future__ import annotations

import pytest

from fhirserver.errors import BadRequest
from fhirserver.search import query as q
from fhirserver.search.parse import UnknownParameter, parse_search


def clause(rtype, name, value):
    return parse_search(rtype, [(name, value)]).query.parts[0]


def test_or_and_escaping():
    node = clause("Patient", "identifier", r"a|b\,c,d")
    assert isinstance(node, q.Or) and len(node.parts) == 2
    assert node.parts[0].cond.system == "a" and node.parts[0].cond.code == "b,c"
    parsed = parse_search("Patient", [("name", "a"), ("name", "b")])
    assert len(parsed.query.parts) == 2


def test_modifiers():
    assert isinstance(clause("Observation", "code:not", "x"), q.Not)
    missing = clause("Patient", "name:missing", "true")
    assert isinstance(missing, q.Missing) and missing.missing
    ident = clause("Observation", "subject:identifier", "sys|1")
    assert ident.parts[0].key == "Observation.subject:identifier"
    with pytest.raises(BadRequest):
        clause("Patient", "name:nonsense", "x")
    with pytest.raises(BadRequest):
        clause("Observation", "code:in", "http://vs")
    with pytest.raises(BadRequest):
        clause("Patient", "name:missing", "maybe")


def test_chains_and_has():
    chain = clause("Observation", "subject:Patient.name", "x")
    assert isinstance(chain, q.Chain) and chain.target_type == "Patient"
    deep = clause("Observation", "subject:Patient.organization.name", "x")
    assert isinstance(deep.node, q.Chain)
    has = clause("Patient", "_has:Observation:subject:code", "1234")
    assert isinstance(has, q.Has) and has.source_type == "Observation"
    nested = clause("Patient", "_has:Observation:subject:_has:Provenance:target:agent", "Practitioner/1")
    assert isinstance(nested.node, q.Has)
    with pytest.raises(BadRequest):
        clause("Observation", "code.name", "x")            # not a reference
    with pytest.raises(BadRequest):
        clause("Patient", "_has:Observation:code:code", "x")


def test_unknown_and_lenient():
    with pytest.raises(UnknownParameter):
        parse_search("Patient", [("shoe", "9")])
    parsed = parse_search("Patient", [("shoe", "9"), ("name", "x")], lenient=True)
    assert parsed.used == [("name", "x")]
    with pytest.raises(BadRequest):
        parse_search("Patient", [("_text", "x")])          # listed as unsupported


def test_result_parameters():
    parsed = parse_search("Patient", [("_count", "5"), ("_sort", "-birthdate,name"), ("_total", "none"),
                                      ("_include", "Patient:organization"), ("_revinclude:iterate", "Observation:subject")])
    r = parsed.results
    assert r.count == 5 and r.total == "none" and [k.descending for k in r.sort] == [True, False]
    assert r.includes[0].param_key == "Patient.organization" and r.includes[1].iterate and r.includes[1].reverse
    for bad in [("_count", "x"), ("_sort", "shoe"), ("_total", "some"), ("_summary", "maybe"),
                ("_include", "Observation:subject"), ("_include", "Patient:name"), ("_elements", "a.b")]:
        with pytest.raises(BadRequest):
            parse_search("Patient", [bad])


def test_hostile_values_stay_values():
    node = clause("Patient", "name", "'; DROP TABLE resource; --")
    assert node.parts[0].cond.value.startswith("'; drop")
    with pytest.raises(BadRequest):
        clause("Patient", "name", "")
