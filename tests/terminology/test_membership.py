"""contains / codes / descendants / ancestors: hierarchies from nested concepts and parent/child
properties, compose include/exclude, every filter operator, imported value sets, limits."""
from __future__ import annotations

import pytest

from fhirserver.errors import BadRequest, NotFound
from fhirserver.terminology import CannotExpand, TooCostly, engine, for_store
from tests.terminology._defs import example, terminology

SYS = "http://example.test/cs/body"
# nested concept[] for one branch, parent/child properties for the others
BODY = {"resourceType": "CodeSystem", "url": SYS, "status": "active", "content": "complete",
        "property": [{"code": "side", "type": "code"}],
        "concept": [
            {"code": "limb", "display": "Limb", "concept": [
                {"code": "arm", "display": "Arm", "property": [{"code": "side", "valueCode": "any"}], "concept": [
                    {"code": "hand", "display": "Hand"}]},
                {"code": "leg", "display": "Leg"}]},
            {"code": "foot", "display": "Foot", "property": [{"code": "parent", "valueCode": "leg"},
                                                             {"code": "side", "valueCode": "left"}]},
            {"code": "head", "display": "Head", "property": [{"code": "child", "valueCode": "ear"}]},
            {"code": "ear", "display": "Ear", "property": [{"code": "side", "valueCode": "right"}]}]}


def vs(url, *include, exclude=()):
    return {"resourceType": "ValueSet", "url": url, "status": "active",
            "compose": {"include": list(include), "exclude": list(exclude)}}


def test_hierarchy_from_nesting_and_properties():
    tx = terminology(BODY)
    assert tx.descendants(SYS, "limb") == {"limb", "arm", "hand", "leg", "foot"}
    assert tx.descendants(SYS, "head") == {"head", "ear"}
    assert tx.ancestors(SYS, "foot") == {"foot", "leg", "limb"}
    assert tx.ancestors(SYS, "ear") == {"ear", "head"}
    assert tx.descendants(SYS, "tail") == frozenset() and tx.descendants("http://nowhere", "x") == frozenset()


@pytest.mark.parametrize("op,value,codes", [
    ("is-a", "limb", {"limb", "arm", "hand", "leg", "foot"}),
    ("descendent-of", "limb", {"arm", "hand", "leg", "foot"}),
    ("is-not-a", "limb", {"head", "ear"}),
    ("generalizes", "hand", {"hand", "arm", "limb"}),
])
def test_hierarchy_filters(op, value, codes):
    tx = terminology(BODY, vs("http://x/vs", {"system": SYS, "filter": [{"property": "concept", "op": op,
                                                                        "value": value}]}))
    assert tx.codes("http://x/vs") == {(SYS, c) for c in codes}
    for c in ("limb", "arm", "hand", "leg", "foot", "head", "ear"):
        assert tx.contains("http://x/vs", SYS, c) is (c in codes)


@pytest.mark.parametrize("prop,op,value,codes", [
    ("side", "=", "left", {"foot"}),
    ("side", "in", "left, right", {"foot", "ear"}),
    ("side", "not-in", "left,right", {"limb", "arm", "hand", "leg", "head"}),
    ("side", "exists", "true", {"arm", "foot", "ear"}),
    ("side", "exists", "false", {"limb", "hand", "leg", "head"}),
    ("code", "regex", "[a-h].*", {"arm", "hand", "foot", "head", "ear"}),
    ("parent", "=", "leg", {"foot"}),
])
def test_property_filters(prop, op, value, codes):
    tx = terminology(BODY, vs("http://x/vs", {"system": SYS, "filter": [{"property": prop, "op": op, "value": value}]}))
    assert tx.codes("http://x/vs") == {(SYS, c) for c in codes}


def test_include_exclude_import_and_cycles():
    tx = terminology(BODY,
                     vs("http://x/limbs", {"system": SYS, "filter": [{"property": "concept", "op": "is-a",
                                                                      "value": "limb"}]},
                        exclude=[{"system": SYS, "concept": [{"code": "hand"}]}]),
                     vs("http://x/sided", {"system": SYS, "filter": [{"property": "side", "op": "exists",
                                                                      "value": "true"}]}),
                     vs("http://x/both", {"valueSet": ["http://x/limbs", "http://x/sided"]}),
                     vs("http://x/loop", {"valueSet": ["http://x/loop2"]}),
                     vs("http://x/loop2", {"valueSet": ["http://x/loop"]}))
    assert tx.contains("http://x/limbs", SYS, "hand") is False and tx.contains("http://x/limbs", SYS, "arm")
    assert tx.codes("http://x/both") == {(SYS, "arm"), (SYS, "foot")}              # intersection of imports
    assert tx.contains("http://x/both", None, "foot") is True                     # any system
    assert tx.contains("http://x/both", "http://other", "foot") is False
    with pytest.raises(BadRequest):
        tx.codes("http://x/loop")
    assert tx.contains("http://x/loop", SYS, "arm") is None                    # a broken definition: cannot tell
    with pytest.raises(BadRequest, match="cycle"):
        tx.member("http://x/loop", SYS, "arm")
    with pytest.raises(NotFound):
        tx.codes("http://x/unknown")
    assert tx.contains("http://x/unknown", SYS, "arm") is None


def test_unknown_and_fragment_systems_are_unknown_not_false():
    tx = for_store(None)
    loinc = "http://hl7.org/fhir/ValueSet/observation-codes"          # all of LOINC; only a fragment ships
    assert tx.contains(loinc, "http://loinc.org", "8867-4") is True
    assert tx.contains(loinc, "http://loinc.org", "0000-0") is None
    with pytest.raises(CannotExpand):
        tx.codes(loinc)
    snomed = "http://hl7.org/fhir/ValueSet/clinical-findings"         # SNOMED CT is-a: not held
    assert tx.contains(snomed, "http://snomed.info/sct", "404684003") is None
    assert tx.contains(snomed, "http://loinc.org", "8867-4") is False


def test_official_examples():
    cs = example("CodeSystem-example")
    tx = terminology(cs, example("ValueSet-example-extensional"), example("ValueSet-example-filter"))
    ext = "http://hl7.org/fhir/ValueSet/example-extensional"
    assert tx.codes(ext) == {("http://loinc.org", c) for c in ("14647-2", "2093-3", "35200-5", "9342-7")}
    assert tx.contains(ext, "http://loinc.org", "2093-3") is True
    assert tx.contains(ext, "http://loinc.org", "8867-4") is False
    # acme-plasma is a filter the code system declares but no concept property carries: cannot tell
    assert tx.contains("http://hl7.org/fhir/ValueSet/example-filter", cs["url"], "chol") is None
    assert tx.lookup(cs["url"], "chol-mass")["display"] == "SChol (mg/L)"


def test_shipped_core_value_sets():
    tx = for_store(None)
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert tx.codes(gender) == {("http://hl7.org/fhir/administrative-gender", c)
                                for c in ("male", "female", "other", "unknown")}
    encounter = "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"
    assert tx.contains(encounter, "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB") is True
    assert tx.contains(encounter, "http://terminology.hl7.org/CodeSystem/v3-ActCode", "_ActEncounterCode") is False  # excluded
    assert tx.contains(encounter, "http://terminology.hl7.org/CodeSystem/v3-ActCode", "CASH") is False


def test_regex_bombs_and_size_limits(monkeypatch):
    for pattern in ("(a+)+$", "(a|aa)*b", "((ab)*c)+", r"(a)\1", "(?=a)a", "a" * 300):
        tx = terminology(BODY, vs("http://x/rx", {"system": SYS, "filter": [{"property": "code", "op": "regex",
                                                                             "value": pattern}]}))
        with pytest.raises(BadRequest):
            tx.codes("http://x/rx")
    tx = terminology(BODY, vs("http://x/all", {"system": SYS}))
    assert len(tx.codes("http://x/all")) == 7
    monkeypatch.setattr(engine, "MAX_CODES", 5)
    tx = terminology(BODY, vs("http://x/all", {"system": SYS}))
    with pytest.raises(TooCostly):
        tx.codes("http://x/all")


def test_expansion_paging_filter_and_flags():
    tx = terminology({**BODY, "concept": BODY["concept"] + [
        {"code": "old", "display": "Old limb", "property": [{"code": "status", "valueCode": "retired"}]},
        {"code": "grp", "display": "Group", "property": [{"code": "notSelectable", "valueBoolean": True}]}]},
        vs("http://x/all", {"system": SYS}))
    full = tx.expand("http://x/all")["expansion"]
    assert full["total"] == 9 and full["offset"] == 0 and len(full["contains"]) == 9
    flags = {c["code"]: c for c in full["contains"]}
    assert flags["old"]["inactive"] is True and flags["grp"]["abstract"] is True and "inactive" not in flags["arm"]
    page = tx.expand("http://x/all", offset=2, count=3)["expansion"]
    assert [c["code"] for c in page["contains"]] == [c["code"] for c in full["contains"][2:5]] and page["total"] == 9
    assert [c["code"] for c in tx.expand("http://x/all", filter="LIMB")["expansion"]["contains"]] == ["limb", "old"]
    assert tx.expand("http://x/all", active_only=True)["expansion"]["total"] == 8
    assert "contains" not in tx.expand("http://x/all", offset=50)["expansion"]


def test_translate_forward_reverse_unmapped():
    cm = {"resourceType": "ConceptMap", "url": "http://x/cm", "status": "active", "group": [
        {"source": SYS, "target": "http://x/t", "element": [
            {"code": "arm", "target": [{"code": "A", "equivalence": "wider"}]},
            {"code": "leg", "target": [{"equivalence": "unmatched"}]}],
         "unmapped": {"mode": "fixed", "code": "Z", "display": "Other"}}]}
    tx = terminology(BODY, cm)
    (m,) = tx.translate(SYS, "arm", url="http://x/cm")
    assert m["equivalence"] == "wider" and m["concept"] == {"system": "http://x/t", "code": "A"}
    assert [m["equivalence"] for m in tx.translate(SYS, "leg", url="http://x/cm")] == ["unmatched"]
    assert tx.translate(SYS, "ear", url="http://x/cm")[0]["concept"]["code"] == "Z"
    (back,) = tx.translate("http://x/t", "A", url="http://x/cm", reverse=True)
    assert back["equivalence"] == "narrower" and back["concept"]["code"] == "arm"
    assert tx.translate("http://other", "arm", url="http://x/cm") == []


def test_subsumes_and_lookup():
    tx = terminology(BODY)
    assert tx.subsumes(SYS, "limb", "foot") == "subsumes" and tx.subsumes(SYS, "foot", "limb") == "subsumed-by"
    assert tx.subsumes(SYS, "arm", "arm") == "equivalent" and tx.subsumes(SYS, "arm", "ear") == "not-subsumed"
    with pytest.raises(NotFound):
        tx.subsumes(SYS, "arm", "tail")
    with pytest.raises(NotFound):
        tx.subsumes("http://nowhere", "a", "b")
    foot = tx.lookup(SYS, "foot")
    assert foot["display"] == "Foot" and foot["parents"] == ["leg"] and tx.lookup(SYS, "tail") is None


def test_a_carried_expansion_answers_when_the_compose_cannot_be_evaluated():
    """valueset-example-expansion: a LOINC filter (LOINC ships only as a fragment) and the expansion the
    author computed; the server answers from that expansion rather than refusing."""
    vs = example("ValueSet-example-expansion")
    tx = terminology(vs)
    got = tx.expand(vs["url"])["expansion"]
    listed = {c["code"] for c in got["contains"]}
    assert got["total"] == 8 == len(listed) and "14647-2" in listed
    assert tx.contains(vs["url"], "http://loinc.org", "14647-2") is True
    assert tx.contains(vs["url"], "http://loinc.org", "8867-4") is None       # not listed: still cannot tell
    partial = {**vs, "url": "http://x/partial", "expansion": {**vs["expansion"], "total": 80}}
    with pytest.raises(CannotExpand):
        terminology(partial).expand("http://x/partial")
    with pytest.raises(CannotExpand):
        terminology().expand("http://hl7.org/fhir/ValueSet/example-intensional")
