"""Property: for generated resources and queries, the SQLite store returns exactly
the matcher's result (fhirserver/search/matcher.py), in the same order."""
from __future__ import annotations

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirserver.config import Settings
from fhirserver.search.extract import extract
from fhirserver.search.matcher import Matcher
from fhirserver.search.parse import parse_search
from fhirserver.smart_auth.access import search_guard
from fhirserver.smart_auth.scopes import Grants
from fhirserver.storage import open_store, sqlite_search
from fhirserver.storage.base import Write
from fhirserver.terminology import for_store
from tests.conftest import STORES, store_url

FAMILIES = ["Sharma", "Shah", "Álvarez", "alvarez", "Li", "Lin", "O'Brien"]
SYSTEMS = ["http://a.example/id", "http://b.example/id"]
CODES = [("http://loinc.org", "8480-6"), ("http://loinc.org", "8462-4"), ("http://snomed.info/sct", "1234")]
DATES = st.builds(lambda y, m, d, p: ["%04d" % y, "%04d-%02d" % (y, m), "%04d-%02d-%02d" % (y, m, d),
                                      "%04d-%02d-%02dT10:30:00+05:30" % (y, m, d)][p],
                  st.integers(1940, 2025), st.integers(1, 12), st.integers(1, 28), st.integers(0, 3))
DECIMALS = st.sampled_from(["1", "1.5", "1.50", "10", "100", "99.5", "0.01"])
PREFIXES = st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
VITALS = "http://hl7.org/fhir/ValueSet/observation-vitalsignresult"     # 8480-6 and 8462-4, not sct 1234
TX = for_store(None)          # the shipped terminology: token :in / :not-in (search/token_sets.py)
UNITS = st.sampled_from(["mm[Hg]", "kPa", "[IU]"])     # UCUM: compared in canonical units, [IU] as written


@st.composite
def patients(draw, n):
    out = []
    for i in range(n):
        p = {"resourceType": "Patient", "id": f"p{i}"}
        if draw(st.booleans()):
            p["name"] = [{"family": draw(st.sampled_from(FAMILIES)), "given": ["A"]}]
        if draw(st.booleans()):
            p["gender"] = draw(st.sampled_from(["male", "female", "other"]))
        if draw(st.booleans()):
            p["birthDate"] = draw(DATES).split("T")[0]
        idents = draw(st.lists(st.tuples(st.sampled_from(SYSTEMS + [None]), st.sampled_from("123")), max_size=2))
        if idents:
            p["identifier"] = [{"value": v, **({"system": s} if s else {})} for s, v in idents]
        out.append(p)
    return out


@st.composite
def observations(draw, n, n_patients):
    out = []
    for i in range(n):
        system, code = draw(st.sampled_from(CODES))
        o = {"resourceType": "Observation", "id": f"o{i}", "status": "final",
             "code": {"coding": [{"system": system, "code": code}]}}
        if draw(st.booleans()):
            o["subject"] = {"reference": f"Patient/p{draw(st.integers(0, n_patients - 1))}"}
        if draw(st.booleans()):
            o["effectiveDateTime"] = draw(DATES)
        if draw(st.booleans()):
            o["valueQuantity"] = {"value": float(draw(DECIMALS)), "unit": "mmHg",
                                  "system": "http://unitsofmeasure.org", "code": draw(UNITS)}
        components = draw(st.lists(st.tuples(st.sampled_from(CODES), DECIMALS, UNITS), max_size=2))
        if components:      # composites pair a component's code with its own value (grouped rows)
            o["component"] = [{"code": {"coding": [{"system": s, "code": c}]},
                               "valueQuantity": {"value": float(v), "system": "http://unitsofmeasure.org",
                                                 "code": u}} for (s, c), v, u in components]
        out.append(o)
    return out


def patient_queries():
    family = st.sampled_from(FAMILIES).map(lambda f: f[: max(1, len(f) // 2)].upper())
    return st.one_of(
        family.map(lambda v: [("name", v)]),
        st.sampled_from(FAMILIES).map(lambda v: [("family:exact", v)]),
        st.sampled_from(["male", "female", "other"]).map(lambda v: [("gender", v)]),
        st.sampled_from(["male", "female"]).map(lambda v: [("gender:not", v)]),
        st.tuples(st.sampled_from(SYSTEMS + [""]), st.sampled_from("123")).map(
            lambda t: [("identifier", f"{t[0]}|{t[1]}")]),
        st.tuples(PREFIXES, DATES).map(lambda t: [("birthdate", t[0] + t[1].split("T")[0])]),
        st.booleans().map(lambda b: [("name:missing", str(b).lower())]),
        st.sampled_from(CODES).map(lambda c: [("_has:Observation:subject:code", f"{c[0]}|{c[1]}")]),
        st.sampled_from(["in", "not-in"]).map(lambda m: [(f"_has:Observation:subject:code:{m}", VITALS)]),
    )


def observation_queries():
    return st.one_of(
        st.sampled_from(CODES).map(lambda c: [("code", c[1])]),
        st.sampled_from(FAMILIES).map(lambda f: [("subject:Patient.name", f[:2])]),
        st.tuples(PREFIXES, DECIMALS).map(lambda t: [("value-quantity", t[0] + t[1])]),
        st.tuples(PREFIXES, DECIMALS, UNITS).map(
            lambda t: [("value-quantity", f"{t[0]}{t[1]}|http://unitsofmeasure.org|{t[2]}")]),
        st.tuples(PREFIXES, DATES).map(lambda t: [("date", t[0] + t[1])]),
        st.booleans().map(lambda b: [("subject:missing", str(b).lower())]),
        st.tuples(st.sampled_from(CODES), PREFIXES, DECIMALS).map(
            lambda t: [("code-value-quantity", f"{t[0][0]}|{t[0][1]}${t[1]}{t[2]}")]),
        st.tuples(st.sampled_from(CODES), PREFIXES, DECIMALS, UNITS).map(     # a composite in canonical units
            lambda t: [("component-code-value-quantity", f"{t[0][1]}${t[1]}{t[2]}|http://unitsofmeasure.org|{t[3]}")]),
        st.tuples(st.sampled_from(["component-code-value-quantity", "combo-code-value-quantity"]),
                  st.sampled_from(CODES), PREFIXES, DECIMALS).map(
            lambda t: [(t[0], f"{t[1][1]}${t[2]}{t[3]}")]),
        st.tuples(st.sampled_from(["component-code-value-quantity", "code-value-quantity"]), st.booleans()).map(
            lambda t: [(f"{t[0]}:missing", str(t[1]).lower())]),
        st.sampled_from(CODES).map(lambda c: [("combo-code", c[1])]),
        st.sampled_from(["code:in", "code:not-in", "component-code:in", "combo-code:not-in"]).map(
            lambda m: [(m, VITALS)]),
        st.just([("subject:Patient._has:Observation:subject:code:in", VITALS)]),
    )


SORTS = {"Patient": ["", "family", "-family", "birthdate", "-birthdate", "_id", "gender,-birthdate"],
         "Observation": ["", "date", "-date", "value-quantity", "-code"]}


def load(store, matcher, resources):
    with store.transaction() as tx:
        for r in resources:
            tx.write(Write(r["resourceType"], r["id"], 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}",
                           extract(r, "http://fhir.test/fhir")))
            matcher.put(r)


@pytest.fixture(params=[p for p in ("sqlite", "sqlite sort-index walk", "mongo") if p.split()[0] in STORES])
def plan(request, monkeypatch):
    """Every example runs on each store: SQLite as its planner chooses, SQLite with every sorted
    search walking its index, and MongoDB. Returns the backend."""
    if request.param.endswith("walk"):
        monkeypatch.setattr(sqlite_search, "WALK_MIN", 0)
    return request.param.split()[0]


def fresh_store(backend: str, folder: str):
    return open_store(Settings(store=store_url(backend, folder), sqlite_synchronous="NORMAL"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_store_agrees_with_matcher(plan, data):
    ps = data.draw(patients(8))
    obs = data.draw(observations(10, 8))
    with tempfile.TemporaryDirectory() as d:
        store = fresh_store(plan, d)
        matcher = Matcher("http://fhir.test/fhir")
        load(store, matcher, ps + obs)
        for _ in range(6):
            rtype = data.draw(st.sampled_from(["Patient", "Observation"]))
            params = data.draw(patient_queries() if rtype == "Patient" else observation_queries())
            params += data.draw(patient_queries() if rtype == "Patient" else observation_queries()) \
                if data.draw(st.booleans()) else []
            sort = data.draw(st.sampled_from(SORTS[rtype]))
            if sort:
                params.append(("_sort", sort))
            parsed = parse_search(rtype, params, base="http://fhir.test/fhir", terminology=TX)
            page = store.search(rtype, parsed.query, sort=parsed.results.sort, limit=100)
            want = matcher.search(rtype, parsed.query, parsed.results.sort)
            assert [v.id for v in page.items] == want, (params, page.items, want)
            small = store.search(rtype, parsed.query, sort=parsed.results.sort, limit=2, total="accurate")
            assert small.total == len(want), (params, small.total, want)
            # paging one by one gives the same sequence
            paged, cursor = [], None
            while True:
                page = store.search(rtype, parsed.query, sort=parsed.results.sort, limit=3, cursor=cursor,
                                    total="none")
                paged += [v.id for v in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert paged == want, (params, paged, want)
        store.close()


GRANTS = ["patient/*.rs", "patient/Observation.rs patient/Patient.r", "patient/Observation.rs?code=8480-6",
          "user/*.rs", "patient/Patient.rs"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("backend", STORES)
def test_guarded_search_agrees_with_matcher(backend, data):
    """Access control inside the query: under a patient scope, the store returns exactly what the
    matcher returns when every set of each type (chained targets and _has sources too) is restricted."""
    ps = data.draw(patients(6))
    obs = data.draw(observations(10, 6))
    with tempfile.TemporaryDirectory() as d:
        store = fresh_store(backend, d)
        matcher = Matcher("http://fhir.test/fhir")
        load(store, matcher, ps + obs)
        for _ in range(5):
            guard = search_guard(Grants.parse(data.draw(st.sampled_from(GRANTS))),
                                 data.draw(st.sampled_from(["p0", "p1", None])))
            rtype = data.draw(st.sampled_from(["Patient", "Observation"]))
            params = data.draw(patient_queries() if rtype == "Patient" else observation_queries())
            parsed = parse_search(rtype, params, base="http://fhir.test/fhir", terminology=TX)
            got = [v.id for v in store.search(rtype, parsed.query, limit=100, guard=guard).items]
            assert got == matcher.search(rtype, parsed.query, guard=guard), (params, got)
        store.close()
