"""Hypothesis fuzzer of FHIR search strings: parameter names from the real registry
(fhirserver/search/registry.py) with modifiers, chains, _has, _include/_revinclude, prefixes, commas,
escapes, unicode and huge numbers; sent as type, system, compartment and POST _search searches, and as
_history paging. Every answer: no 5xx, no hang, errors as OperationOutcome JSON."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ._budget import fuzz
from ._strategies import SEEDED_TYPES, encode, resource_type, search_params


@st.composite
def type_and_params(draw):
    rtype = draw(resource_type)
    return rtype, draw(search_params(rtype)), draw(st.booleans())


@fuzz(scale=2)
@given(type_and_params(), st.sampled_from(["", "strict", "lenient"]))
def test_type_search(server, tp, handling):
    rtype, params, raw = tp
    headers = {"Prefer": f"handling={handling}"} if handling else {}
    server.request("GET", f"/fhir/{rtype}?{encode(params, raw)}", headers=headers)


@fuzz()
@given(type_and_params())
def test_type_search_post(server, tp):
    rtype, params, raw = tp
    server.request("POST", f"/fhir/{rtype}/_search", body=encode(params, raw),
                   content_type="application/x-www-form-urlencoded")


@fuzz()
@given(st.lists(resource_type, min_size=1, max_size=3), st.data())
def test_system_search(server, types, data):
    params = data.draw(search_params(types[0], max_size=4))
    server.request("GET", f"/fhir/?{encode([('_type', ','.join(types))] + params)}")


@fuzz()
@given(st.sampled_from(["asha", "ravi", "nobody"]), st.sampled_from(SEEDED_TYPES + ["*"]), st.data())
def test_compartment_search(server, pid, rtype, data):
    params = data.draw(search_params(rtype if rtype != "*" else "Observation", max_size=4))
    server.request("GET", f"/fhir/Patient/{pid}/{rtype}?{encode(params)}")


HISTORY_PARAMS = st.lists(st.tuples(
    st.sampled_from(["_count", "_since", "_at", "_cursor", "_list", "_sort", "page", "_format"]),
    st.one_of(st.sampled_from(["0", "1", "9" * 30, "-1", "1e999", "2020-01-01", "99999999999999999999999",
                               "18446744073709551616", ""]), st.text(max_size=10), st.integers().map(str))),
    max_size=4)


@fuzz()
@given(st.sampled_from(["/fhir/_history", "/fhir/Patient/_history", "/fhir/Patient/asha/_history",
                        "/fhir/Observation/_history"]), HISTORY_PARAMS)
def test_history_paging(server, path, params):
    server.request("GET", f"{path}?{encode(params)}")


@fuzz()
@given(st.sampled_from(SEEDED_TYPES), st.sampled_from(["asha", "ravi", "org-city", "x"]),
       st.one_of(st.sampled_from(["1", "0", "-1", "9" * 30, "18446744073709551616", "1e999", "%00", "..", "1.0"]),
                 st.text(min_size=1, max_size=10)))
def test_vread_version_numbers(server, rtype, rid, vid):
    from urllib.parse import quote
    server.request("GET", f"/fhir/{rtype}/{rid}/_history/{quote(vid, safe='')}")
