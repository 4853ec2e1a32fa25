"""Property: MongoDB's scoped evaluation of chains and _has (mongo_query.Compiler.filter: a set confined
to given ids, or a guard holding links scoped by the query's own matches) answers exactly what the
matcher answers with the same guard evaluated whole - Not, Or, nested chains, chains whose targets are
themselves guarded by links, unguarded policy nodes, sorted paging and totals."""
from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirserver.search import query as q
from fhirserver.search.matcher import Matcher
from fhirserver.search.parse import parse_search
from fhirserver.storage import mongo_query
from tests.storage.test_search_matches_matcher import (
    CODES,
    SORTS,
    TX,
    fresh_store,
    load,
    observation_queries,
    observations,
    patient_queries,
    patients,
)

BASE = "http://fhir.test/fhir"


def _node(rtype: str, params: list) -> object:
    return parse_search(rtype, params, base=BASE).query


def _has(code: str, guarded: bool):
    return q.Has("Observation", "Observation.subject", _node("Observation", [("code", code)]), guarded=guarded)


def _chain(code: str, guarded: bool):
    """A chain to patients having an observation of code (a nested link; guarded: the patients are
    themselves judged by the Patient guard, whose links never come back through a guarded one)."""
    return q.Chain("Observation.subject", "Patient", _has(code, False), guarded=guarded)


def guards():
    """guard(rtype) functions whose nodes hand on ids: chains, _has, their negations and disjunctions."""
    code = st.sampled_from([c[1] for c in CODES])
    obs = st.one_of(
        st.tuples(code, st.booleans()).map(lambda t: _chain(*t)),
        st.tuples(code, st.booleans()).map(lambda t: q.Not(_chain(*t))),
        st.tuples(code, code).map(lambda t: q.Or((_node("Observation", [("code", t[0])]), _chain(t[1], False)))),
        st.just(q.Chain("Observation.subject", "Patient", _node("Patient", [("gender", "female")]))),
    )
    pat = st.one_of(            # unguarded: a guarded _has here would cycle with the guarded chain above
        code.map(lambda c: _has(c, False)),
        code.map(lambda c: q.Not(_has(c, False))),
        st.just(q.Or((_node("Patient", [("gender", "male")]), _has("1234", False)))),
        st.none(),
    )
    return st.tuples(obs, pat).map(lambda t: (lambda rtype: {"Observation": t[0], "Patient": t[1]}.get(rtype)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_scoped_guards_agree_with_the_whole_guard(data):
    ps = data.draw(patients(6))
    obs = data.draw(observations(12, 6))
    with tempfile.TemporaryDirectory() as d:
        store = fresh_store("mongo", d)
        matcher = Matcher(BASE)
        load(store, matcher, ps + obs)
        for _ in range(5):
            guard = data.draw(guards())
            rtype = data.draw(st.sampled_from(["Patient", "Observation"]))
            params = data.draw(patient_queries() if rtype == "Patient" else observation_queries())
            ids = data.draw(st.lists(st.sampled_from([r["id"] for r in ps + obs if r["resourceType"] == rtype]),
                                     max_size=4))
            if ids:                 # a set confined to ids: its own chains and the guard's start there
                params = params + [("_id", ",".join(ids))]
            sort = data.draw(st.sampled_from(SORTS[rtype]))
            parsed = parse_search(rtype, params + ([("_sort", sort)] if sort else []), base=BASE, terminology=TX)
            want = matcher.search(rtype, parsed.query, parsed.results.sort, guard=guard)
            page = store.search(rtype, parsed.query, sort=parsed.results.sort, limit=100, guard=guard,
                                total="accurate")
            assert [v.id for v in page.items] == want, (params, sort)
            assert page.total == len(want), (params, sort)
            paged, cursor = [], None
            while True:
                page = store.search(rtype, parsed.query, sort=parsed.results.sort, limit=2, cursor=cursor,
                                    total="none", guard=guard)
                paged += [v.id for v in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert paged == want, (params, sort)
            if want:                # a visibility check by id answers the same as the whole set
                one = want[0]
                assert [v.id for v in store.search(rtype, q.And((q.IdIn((one,)),)), limit=1, guard=guard).items] \
                    == [one]
        store.close()


def test_a_set_confined_to_ids_is_exact_past_the_linked_ids_limit(monkeypatch):
    """The query's own chains and the guard's start from the ids the set is confined to, however many
    resources match on the other side (a chain over every female patient, past MAX_LINKED, answered 400
    when the guard held links: the query was compiled unscoped)."""
    monkeypatch.setattr(mongo_query, "MAX_LINKED", 2)
    code = {"coding": [{"system": CODES[0][0], "code": CODES[0][1]}]}
    ps = [{"resourceType": "Patient", "id": f"p{i}", "gender": "female"} for i in range(4)]
    ob = [{"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": code,
           "subject": {"reference": f"Patient/p{i}"}} for i in range(4)]
    with tempfile.TemporaryDirectory() as d:
        store = fresh_store("mongo", d)
        load(store, Matcher(BASE), ps + ob)
        node = _node("Observation", [("_id", "o1"), ("subject:Patient.gender", "female")])
        for guard in (None, {"Observation": _chain(CODES[0][1], False)}.get,
                      {"Observation": q.Not(_chain(CODES[1][1], True))}.get):
            assert [v.id for v in store.search("Observation", node, limit=5, guard=guard).items] == ["o1"]
        store.close()
