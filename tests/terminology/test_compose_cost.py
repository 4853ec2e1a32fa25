"""What one value set a client sends ($expand/$validate-code valueSet=...) may cost: its parts
(includes, excludes, filters, imported value sets) are counted, the concepts an expansion walks
through are bounded (MAX_WORK), and the regex filters of one value set share one time budget."""
from __future__ import annotations

import time

import pytest

from fhirserver.errors import BadRequest, TooCostly
from fhirserver.terminology import filters, valueset
from tests.terminology._defs import terminology

DCM = "http://dicom.nema.org/resources/ontology/DCM"              # the largest shipped code system
GENDER = "http://hl7.org/fhir/administrative-gender"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"


def inline(*include, exclude=()) -> dict:
    return {"resourceType": "ValueSet", "status": "active",
            "compose": {"include": list(include), "exclude": list(exclude)}}


@pytest.fixture
def walks(monkeypatch) -> list:
    """The clauses whose code system an expansion walks through (the work MAX_WORK bounds: counted, not
    timed, so the bound is checked alike on a busy machine)."""
    walked = []
    real = valueset.Clause._system_members

    def counting(self, tx, budget):
        walked.append(self.cost(tx))
        return real(self, tx, budget)
    monkeypatch.setattr(valueset.Clause, "_system_members", counting)
    return walked


def test_many_clauses_over_a_large_system_are_too_costly_at_once(walks):
    many = inline(*({"system": DCM, "filter": [{"property": "concept", "op": "is-not-a", "value": f"x{i}"}]}
                    for i in range(240)))
    with pytest.raises(TooCostly):
        terminology().expand(many)
    assert 0 < len(walks) < 240 and sum(walks) <= valueset.MAX_WORK     # refused before walking past the bound
    assert terminology().expand(inline({"system": DCM}), count=1)["expansion"]["total"] > 3000


@pytest.mark.parametrize("vs", [
    inline({"system": GENDER, "valueSet": [GENDER_VS] * 20_000}),
    inline(*({"system": GENDER, "valueSet": [GENDER_VS] * 2} for _ in range(200))),
    inline({"system": DCM, "filter": [{"property": "concept", "op": "exists", "value": "true"}] * 501}),
])
def test_parts_are_counted_for_expansion_and_membership(vs, walks):
    with pytest.raises(BadRequest, match="at most"):
        terminology().expand(vs)
    assert terminology().contains(vs, GENDER, "male") is None
    assert walks == []                  # refused from its parts alone, before any code system is walked


def test_the_regex_filters_of_one_value_set_share_one_budget(monkeypatch):
    spent = []
    real = filters._regex_walk

    def slow(index, prop, rx, deadline, out):
        spent.append(deadline - time.monotonic())
        time.sleep(0.05)
        return real(index, prop, rx, deadline, out)
    monkeypatch.setattr(filters, "_regex_walk", slow)
    monkeypatch.setattr(filters, "REGEX_BUDGET", 0.2)
    rx = [{"property": "code", "op": "regex", "value": f"A{i}.*"} for i in range(8)]
    with pytest.raises(TooCostly):
        terminology().expand(inline(*({"system": DCM, "filter": [f]} for f in rx)))
    assert len(spent) < 8 and spent[-1] < spent[0]


def test_shipped_value_sets_stay_within_the_work_bound():
    assert valueset.MAX_WORK >= 20 * 6_696          # detectedissue-category, the largest shipped walk


def test_a_cached_clause_keeps_only_the_newest_compiled_code_system():
    """Code systems are recompiled when the engine's cache evicts them (more than 1,000 ship); a cached
    value set must not keep every older compiled form alive."""
    from fhirserver.conformance import catalogue
    from fhirserver.terminology.codesystem import compile_code_system
    clause = valueset.Clause.of({"system": GENDER, "filter": [{"property": "concept", "op": "is-a", "value": "male"}]})
    for _ in range(3):
        assert clause.selected(compile_code_system(catalogue.shipped("CodeSystem", GENDER))) == {"male"}
    assert len(clause._selected) == 1


def test_the_regex_budget_is_per_question_not_per_cached_value_set(monkeypatch):
    """A stored value set stays compiled across requests; its regex runs again whenever its code system
    is recompiled. The budget is one question's, so repeated questions never wear it out."""
    real = filters._regex_walk

    def slow(index, prop, rx, deadline, out):
        time.sleep(0.05)
        return real(index, prop, rx, deadline, out)
    monkeypatch.setattr(filters, "_regex_walk", slow)
    monkeypatch.setattr(filters, "REGEX_BUDGET", 0.2)
    vs = {**inline({"system": GENDER, "filter": [{"property": "code", "op": "regex", "value": "ma.*"}]}),
          "url": "http://x/stored-regex"}
    tx = terminology(vs)
    for _ in range(6):
        tx._indexes._data.clear()                 # the code system evicted and compiled anew
        assert tx.contains(vs["url"], GENDER, "male") is True
