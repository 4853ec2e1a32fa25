"""search/token_sets.py: token :in, :not-in, :below, :above (search.html#token, #modifiers) expanded
while parsing into one IN-set over the token index (token_kind.CodeIn): the nodes, the errors (no
terminology, unknown value set or code, too many codes), and CodeIn's SQL == match()."""
from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirserver.errors import BadRequest, NotFound, TooCostly
from fhirserver.interactions import bundle_entries as be
from fhirserver.search import query as q
from fhirserver.search import token_sets
from fhirserver.search.kinds import token_kind as T
from fhirserver.search.limits import DEFAULT_LIMITS
from fhirserver.search.parse import parse_search
from fhirserver.smart_auth.access import search_guard
from fhirserver.smart_auth.scopes import Grants
from fhirserver.terminology import for_store

LOINC, SCT = "http://loinc.org", "http://snomed.info/sct"
VITALS = "http://hl7.org/fhir/ValueSet/observation-vitalsignresult"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


class Terminology:
    """A small stand-in with the engine's interface: two value sets and one hierarchy a > b > c."""
    SETS = {"http://vs/bp": {(LOINC, "8480-6"), (LOINC, "8462-4")}, "http://vs/sct": {(SCT, "a")}}
    TREE = {"a": {"a", "b", "c"}, "b": {"b", "c"}, "c": {"c"}}
    UP = {"a": {"a"}, "b": {"a", "b"}, "c": {"a", "b", "c"}}

    def codes(self, vs):
        if vs == "http://vs/big":
            return frozenset((LOINC, str(i)) for i in range(token_sets.MAX_CODES // 2 + 1))
        if vs not in self.SETS:
            raise NotFound(f"No ValueSet {vs} on this server")
        return frozenset(self.SETS[vs])

    def descendants(self, system, code):
        return frozenset(self.TREE.get(code, ())) if system == SCT else frozenset()

    def ancestors(self, system, code):
        return frozenset(self.UP.get(code, ())) if system == SCT else frozenset()


TX = Terminology()


def node(params, rtype="Observation", tx=TX):
    (clause,) = parse_search(rtype, params, terminology=tx).query.parts
    return clause


def test_in_is_one_set_over_the_token_index():
    assert node([("code:in", "http://vs/bp")]) == q.Match("token", "Observation.code", T.CodeIn(frozenset(
        {(LOINC, "8480-6"), (LOINC, "8462-4")})))
    both = node([("code:in", "http://vs/bp,http://vs/sct")])          # commas: the union
    assert both.cond.pairs == frozenset(TX.SETS["http://vs/bp"] | TX.SETS["http://vs/sct"])


def test_not_in_is_the_complement_over_the_resource():
    assert node([("code:not-in", "http://vs/bp")]) == q.Not(node([("code:in", "http://vs/bp")]))


def test_below_and_above_follow_the_hierarchy():
    assert node([("code:below", f"{SCT}|b")]).cond.pairs == {(SCT, "b"), (SCT, "c")}
    assert node([("code:above", f"{SCT}|b")]).cond.pairs == {(SCT, "a"), (SCT, "b")}


def test_inside_chains_and_has():
    chained = node([("subject:Group._has:Observation:subject:code:in", "http://vs/sct")], "Observation")
    assert chained.node.node.cond == T.CodeIn(frozenset({(SCT, "a")}))
    has = node([("_has:Observation:subject:code:below", f"{SCT}|a")], "Patient")
    assert has.node.cond.pairs == {(SCT, "a"), (SCT, "b"), (SCT, "c")}


@pytest.mark.parametrize("modifier", ["in", "not-in", "below", "above"])
def test_without_terminology_not_available_here(modifier):
    with pytest.raises(BadRequest, match=f":{modifier} modifier .* not available here"):
        parse_search("Observation", [(f"code:{modifier}", f"{SCT}|a")])


def test_granular_scope_with_in_denies_instead_of_breaking():
    """An access guard parses its scope's query without terminology: such a scope grants nothing."""
    guard = search_guard(Grants.parse("user/Observation.rs?code:in=http://vs/bp"), None)
    assert guard("Observation") is q.DENY


@pytest.mark.parametrize("params, message", [
    ([("code:in", "http://vs/none")], "Unknown value set 'http://vs/none' in 'code:in'"),
    ([("code:not-in", "http://vs/none")], "Unknown value set 'http://vs/none'"),
    ([("code:below", "a")], r"needs \[system\]\|\[code\]"),
    ([("code:above", f"{SCT}|")], r"needs \[system\]\|\[code\]"),
    ([("code:below", f"{SCT}|zz")], "code 'zz' is not known in code system"),
    ([("code:below", f"{LOINC}|8480-6")], "not known in code system 'http://loinc.org'"),
    ([("status:below", f"{SCT}|a")], None),        # any token parameter takes them
])
def test_errors_name_what_is_wrong(params, message):
    if message is None:
        assert node(params).cond.pairs
        return
    with pytest.raises(BadRequest, match=message):
        parse_search("Observation", params, terminology=TX)


def test_bounded_by_max_codes_in_the_whole_search():
    node([("code:in", "http://vs/big")])
    with pytest.raises(TooCostly, match="more than 10000 codes"):
        parse_search("Observation", [("code:in", "http://vs/big"), ("combo-code:in", "http://vs/big")],
                     terminology=TX)


def test_shipped_value_set_through_the_real_engine():
    tx = for_store(None)
    pairs = node([("code:in", VITALS)], tx=tx).cond.pairs
    assert (LOINC, "8480-6") in pairs and (LOINC, "8867-4") in pairs and len(pairs) == 13
    assert (ACT, "EMER") in node([("class:below", f"{ACT}|_ActEncounterCode")], "Encounter", tx).cond.pairs


# ---- CodeIn: sql() == match() -------------------------------------------------------------------

CODES = st.sampled_from(["a", "b", "c", "8480-6"])
SYSTEMS = st.sampled_from(["", LOINC, SCT])


def sql_count(cond, row) -> int:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t(system TEXT, code TEXT, text TEXT)")
    con.execute("INSERT INTO t VALUES (?, ?, ?)", row)
    text, args = T.sql(cond, "x")
    assert text.count("?") == len(args)
    return con.execute(f"SELECT count(*) FROM t AS x WHERE {text}", args).fetchone()[0]


@settings(max_examples=200, deadline=None)
@given(pairs=st.frozensets(st.tuples(SYSTEMS.filter(bool), CODES), max_size=4),
       row=st.tuples(SYSTEMS, st.one_of(st.none(), CODES), st.none()))
def test_sql_agrees_with_match(pairs, row):
    cond = T.CodeIn(pairs)
    assert sql_count(cond, row) == int(T.match(cond, row)), (pairs, row)


def test_a_row_without_system_matches_by_code():
    """An element of type code (Observation.status) has its binding's system: matched by the code."""
    cond = T.CodeIn(frozenset({(LOINC, "8480-6")}))
    assert T.match(cond, ("", "8480-6", None)) and not T.match(cond, (SCT, "8480-6", None))
    assert not T.match(T.CodeIn(frozenset()), ("", "8480-6", None)) and sql_count(T.CodeIn(frozenset()), ("", "a", None)) == 0


def test_a_bundles_search_budget_counts_entries_with_token_sets():
    """interactions/bundle_entries.search_cost parses each search entry with the server's terminology,
    so an entry with :in counts against the Bundle's shared node budget like any other."""
    entries = [be.parse_entry(i, {"request": {"method": "GET", "url": f"Observation?code:in=http://vs/bp&status={s}"}})
               for i, s in enumerate(("final", "amended"))]
    small = replace(DEFAULT_LIMITS, max_bundle_nodes=5)          # each entry: And, the set, status (Or + value)
    assert set(be.search_cost(entries, small, TX)) == {1}
    assert be.search_cost(entries, small) == {}                  # unparsable here: each fails on its own
