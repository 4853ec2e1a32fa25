"""Hostile input stays bounded: deep nesting, huge arrays, values of the wrong JSON kind."""
from __future__ import annotations

import copy

from fhirserver.validation.profile import MAX_FINDINGS

from ._profile import BP, US_CORE, errors, run, synthea_bp, synthea_patient


def test_deeply_nested_extensions_stop_at_the_depth_limit():
    ext = {"url": "https://example.org/leaf", "valueString": "x"}
    for _ in range(3000):
        ext = {"url": "https://example.org/node", "extension": [ext]}
    found = run({"resourceType": "Patient", "extension": [ext]})
    assert any(f.rule == "profile" and f.severity == "error" for f in found)
    assert len(found) <= MAX_FINDINGS + 1


def test_deeply_nested_questionnaire_items():
    item = {"linkId": "leaf", "type": "display", "text": "x"}
    for i in range(400):
        item = {"linkId": str(i), "type": "group", "item": [item]}
    found = run({"resourceType": "Questionnaire", "status": "draft", "item": [item]})
    assert [f.rule for f in found if f.severity == "error"] == ["profile"]        # too deep, said once


def test_huge_arrays_cap_the_findings():
    pat = copy.deepcopy(synthea_patient())
    pat["identifier"] = [{"system": "https://example.org", "value": str(i), "use": "bogus"} for i in range(20_000)]
    found = run(pat, US_CORE + "us-core-patient")
    assert len(errors(found)) == MAX_FINDINGS and len(found) < MAX_FINDINGS + 10
    assert found[-1].severity == "information" and "stopped after 100 errors" in found[-1].message
    assert errors(found)[0] == ("binding", "http://hl7.org/fhir/ValueSet/identifier-use|4.0.1",
                                "Patient.identifier[0].use")


def test_many_warnings_do_not_hide_a_later_error():
    entries = [{"resource": {"resourceType": "Basic", "code": {"text": "x"}}} for _ in range(300)]   # dom-6 each
    entries.append({"resource": {"resourceType": "Patient", "gender": "robot"}})
    found = run({"resourceType": "Bundle", "type": "collection", "entry": entries})
    assert errors(found) == [("binding", "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1",
                              "Bundle.entry[300].resource.gender")]
    assert len(found) == MAX_FINDINGS + 2
    assert "more warnings and information findings are not listed" in found[-1].message


def test_values_of_the_wrong_json_kind_do_not_break_the_walk():
    obs = copy.deepcopy(synthea_bp())
    obs.update({"category": "vital-signs", "component": [1, None, "x", [], {}], "subject": ["Patient/1"],
                "contained": ["x", {"resourceType": "NoSuchType"}, {"resourceType": 7}],
                "": 1, "_": {}, "_status": [None], "code": {"coding": {"system": 1}}})
    found = run(obs, BP)
    assert errors(found)            # reported, not raised
    assert ("type", "Resource", "Observation.contained[1]") in errors(found)


def _with_contained(n: int, **extra) -> dict:
    return {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": f"o{i}", "name": "n"}
                                                     for i in range(n)], **extra}


def test_many_contained_resources_cost_linear_time():
    """dom-3 as fhirpathpy reads it walks the resource once per contained resource (200 took 5 s)."""
    import time

    from fhirserver.validation.profile.core_invariants import dom_3
    links = [{"reference": f"#o{i}"} for i in range(3000)]
    good = _with_contained(3000, generalPractitioner=links)
    started = time.perf_counter()
    assert dom_3(good, good) is True
    bad = _with_contained(3000, generalPractitioner=links[:-1])
    assert dom_3(bad, bad) is False
    assert time.perf_counter() - started < 3


def test_native_dom_3_equals_fhirpathpy_on_contained_edge_cases():
    from fhirserver.validation.profile.core_invariants import DOM_3_OFTYPE, dom_3
    from fhirserver.validation.profile.invariants import fhirpath_invariant
    back = {"resourceType": "Provenance", "id": "p", "target": [{"reference": "#"}], "recorded": "2020-01-01"}
    canonical = {"resourceType": "Questionnaire", "id": "q", "status": "draft", "derivedFrom": ["#"]}
    cases = [
        _with_contained(2),                                                     # none referenced
        _with_contained(2, managingOrganization={"reference": "#o0"}),           # one of two
        _with_contained(1, managingOrganization={"reference": "#o0"}),
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "name": "no id"}]},
        {"resourceType": "Patient", "contained": [back]},                        # refers to its container
        {"resourceType": "Patient", "contained": [canonical]},
        {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "#q",
         "contained": [{**canonical, "derivedFrom": ["x"]}]},                   # referred to by a canonical
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o"}],
         "extension": [{"url": "https://example.org/x", "valueUri": "#o"}]},     # by a uri
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o"}],
         "extension": [{"url": "https://example.org/x", "valueString": "#o"}]},  # a string is no reference
    ]
    for res in cases:
        assert dom_3(res, res) == fhirpath_invariant(DOM_3_OFTYPE)(res, res), res
    assert [dom_3(r, r) for r in cases] == [False, False, True, True, True, True, True, True, False]


def test_claims_and_distinct_definitions_of_one_walk_are_bounded():
    """Each claimed profile or extension url is a definition lookup (a store query): a Bundle naming
    20,000 distinct ones took seconds. Past MAX_LOOKUPS the walk says it is not complete, as an error."""
    from fhirserver.validation.profile import MAX_CLAIMS, MAX_LOOKUPS, check
    from fhirserver.validation.profile.walker import MAX_CLAIMS as WALKER_MAX

    from ._profile import CORE, resolve, sd
    asked = []

    def counting(rtype, canonical):
        asked.append(canonical)
        return resolve(rtype, canonical)
    many = [f"https://example.org/p{j}" for j in range(MAX_CLAIMS + 1)]
    one = {"resourceType": "Basic", "code": {"text": "x"}, "meta": {"profile": many}}
    found = check({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": one}]},
                  sd(CORE + "Bundle"), resolve=counting, terminology=None)
    assert ("profile", "meta.profile", "Bundle.entry[0].resource.meta.profile") in errors(found)
    assert WALKER_MAX == MAX_CLAIMS and not any(c == many[-1] for c in asked)
    asked.clear()
    entries = [{"resource": {"resourceType": "Basic", "code": {"text": "x"},
                             "meta": {"profile": [f"https://example.org/p{i}-{j}" for j in range(20)]}}}
               for i in range(200)]
    found = check({"resourceType": "Bundle", "type": "collection", "entry": entries}, sd(CORE + "Bundle"),
                  resolve=counting, terminology=None)
    assert len(set(asked)) == len(asked) <= MAX_LOOKUPS
    assert any(f.severity == "error" and f"more than {MAX_LOOKUPS} distinct definitions" in f.message
               for f in found)


def within_budget(monkeypatch, seconds: float, validate) -> tuple[float, list]:
    """(seconds taken, findings) of one validation under a time budget of `seconds`."""
    import time

    from fhirserver.validation.profile import budget
    monkeypatch.setattr(budget, "SECONDS", seconds)
    started = time.perf_counter()
    found = validate()
    return time.perf_counter() - started, found


def test_a_slow_invariant_is_stopped_by_the_time_budget(monkeypatch):
    """An administrator's constraint that fhirpathpy evaluates in cubic time (400 identifiers: 2 minutes)
    ends the validation at the budget, reported as an error (not known to conform), never as a pass."""
    from ._profile import CORE, derived, run_sd
    slow = "identifier.all(%resource.identifier.where(value = %resource.identifier.first().value).exists())"
    root = derived(CORE + "Patient", "https://example.org/slow")["snapshot"]["element"][0]
    profile = derived(CORE + "Patient", "https://example.org/slow", change={"Patient": {"constraint": [
        *root.get("constraint", ()), {"key": "slow-1", "severity": "error", "human": "slow", "expression": slow}]}})
    pat = {"resourceType": "Patient", "identifier": [{"system": "https://example.org", "value": str(i)}
                                                     for i in range(400)]}
    elapsed, found = within_budget(monkeypatch, 0.5, lambda: run_sd(pat, profile, terminology=False))
    assert elapsed < 2
    assert [(f.rule, f.path) for f in found if f.severity == "error"] == [("profile", "Patient")]
    assert "took more than 0.5 s" in found[-1].message
    # the budget ends with the validation: the next one has its own
    assert errors(run_sd({"resourceType": "Patient"}, profile, terminology=False)) == []


def test_a_huge_structure_definition_ends_at_the_budget(monkeypatch):
    """$validate is open to every caller: a StructureDefinition of many elements (each with some twenty eld-*
    invariants fhirpathpy evaluates) ends at the budget, not minutes later."""
    elements = [{"id": "Patient", "path": "Patient"}] + [{"id": f"Patient.x{i}", "path": f"Patient.x{i}"}
                                                        for i in range(6000)]
    huge = {"resourceType": "StructureDefinition", "url": "https://example.org/huge", "name": "Huge",
            "status": "draft", "kind": "resource", "abstract": False, "type": "Patient",
            "snapshot": {"element": elements}, "differential": {"element": elements}}
    elapsed, found = within_budget(monkeypatch, 1.0, lambda: run(huge))
    assert elapsed < 4
    assert any(f.severity == "error" and "took more than 1 s" in f.message for f in found)


def test_slice_matching_of_many_items_against_many_slices_stays_inside_the_budget(monkeypatch):
    from ._profile import CORE, derived, run_sd
    slices = [{"id": f"Patient.identifier:s{i}", "path": "Patient.identifier", "sliceName": f"s{i}", "min": 0,
               "max": "*", "patternIdentifier": {"system": f"https://example.org/{i}"}} for i in range(2000)]
    profile = derived(CORE + "Patient", "https://example.org/sliced", change={"Patient.identifier": {
        "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}}},
        add={"Patient.identifier": slices})
    pat = {"resourceType": "Patient", "identifier": [{"system": "https://example.org/none", "value": str(i)}
                                                     for i in range(5000)]}
    elapsed, found = within_budget(monkeypatch, 0.5, lambda: run_sd(pat, profile, terminology=False))
    assert elapsed < 2.5
    assert "took more than 0.5 s" in found[-1].message


def test_native_sdf_8_and_8a_equal_fhirpathpy_and_cost_linear_time():
    """sdf-8/sdf-8a as fhirpathpy reads them are quadratic in the elements ($validate is open to everyone)."""
    import time

    from fhirserver.conformance import catalogue
    from fhirserver.validation.profile import core_invariants as ci
    from fhirserver.validation.profile.invariants import compile_invariant, fhirpath_invariant
    assert compile_invariant("sdf-8", ci.SDF_8) is ci.sdf_8 and compile_invariant("sdf-8a", ci.SDF_8A) is ci.sdf_8a
    cases = [sd for sd in catalogue.all_of("StructureDefinition")][:300]
    p = [{"id": "Patient", "path": "Patient"}, {"id": "Patient.a", "path": "Patient.a"}]
    for kind, rtype, elements in [("resource", "Patient", p), ("resource", "Observation", p),
                                  ("logical", "x", p), ("resource", "Patient", p[:1]),
                                  ("resource", "Patient", [p[0], {"id": "Other.a", "path": "Other.a"}]),
                                  ("resource", "Patient", [{"id": "Patient.a", "path": "Patient.a"}, p[0]]),
                                  ("resource", "Patient", [p[0], {"id": "x", "path": "Patientx"}]),
                                  ("resource", "Pat", [{"id": "Patient.b", "path": "Patient.b"}, p[1]])]:
        cases.append({"resourceType": "StructureDefinition", "kind": kind, "type": rtype,
                      "snapshot": {"element": elements}, "differential": {"element": elements}})
    verdicts = set()
    for sd in cases:
        for key, part, native, expression in (("sdf-8", "snapshot", ci.sdf_8, ci.SDF_8),
                                              ("sdf-8a", "differential", ci.sdf_8a, ci.SDF_8A)):
            if part in sd:
                base = f"StructureDefinition.{part}"
                want = fhirpath_invariant(expression)(sd[part], sd, base)
                assert native(sd[part], sd, base) == want, (key, sd.get("url"), sd[part]["element"][:3])
                verdicts.add((key, want))
    assert verdicts == {("sdf-8", True), ("sdf-8", False), ("sdf-8a", True), ("sdf-8a", False)}
    elements = [{"id": "Patient", "path": "Patient"}] + [{"id": f"Patient.x{i}", "path": f"Patient.x{i}"}
                                                        for i in range(100_000)]
    huge = {"resourceType": "StructureDefinition", "kind": "resource", "type": "Patient",
            "snapshot": {"element": elements}, "differential": {"element": elements}}
    started = time.perf_counter()
    assert ci.sdf_8(huge["snapshot"], huge) is True and ci.sdf_8a(huge["differential"], huge) is True
    assert time.perf_counter() - started < 1
