"""validate(): each invalid resource gives the expected issue code and location."""
from __future__ import annotations

import copy
import threading

import pytest

from fhirserver.errors import InvalidResource
from fhirserver.validation import MAX_ISSUES, fast, precise, schema, validate
from fhirserver.validation.walk import Walker

PATIENT = {
    "resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1974-12-25",
    "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
}
OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "Body weight"}}


def patient(**changes):
    res = copy.deepcopy(PATIENT)
    res.update(changes)
    return res


def fast_rejects(resource) -> bool:
    """What validate() asks fastjsonschema: the resource, then each nested one."""
    walker = Walker(schema.model(), 100)
    walker.resource(resource, resource["resourceType"], resource["resourceType"])
    return any(fast.first_error(rtype, res) for rtype, res, _ in
               [(resource["resourceType"], resource, ""), *walker.nested])


def issues_of(resource):
    with pytest.raises(InvalidResource) as info:
        validate(resource)
    return info.value.issues


# (resource, code, expression, words in diagnostics, a JSON-schema error?)
INVALID = {
    "unknown element": (patient(foo=1), "structure", "Patient.foo", "Unknown element 'foo'", True),
    "misspelt element": (patient(birthdate="1974-12-25"), "structure", "Patient.birthdate",
                         "did you mean 'birthDate'", True),
    "object for array": (patient(name={"family": "X"}), "structure", "Patient.name", "JSON array", True),
    "number for string": (patient(name=[{"given": ["Peter", 5]}]), "structure", "Patient.name[0].given[1]",
                          "expected a JSON string, got number 5", True),
    "string for object": (patient(meta="x"), "structure", "Patient.meta", "expected a JSON object", True),
    "month 13": (patient(birthDate="2020-13-01"), "value", "Patient.birthDate", "Invalid date '2020-13-01'", True),
    "newline after date": (patient(birthDate="2020-01-01\n"), "value", "Patient.birthDate", "Invalid date", True),
    "30 February": (patient(birthDate="2021-02-30"), "value", "Patient.birthDate", "has no day 30", False),
    "dateTime without zone": (dict(OBSERVATION, effectiveDateTime="2020-01-01T10:00:00"), "value",
                              "Observation.effectiveDateTime", "Invalid dateTime", True),
    "bad enum code": (patient(gender="m"), "value", "Patient.gender",
                      "expected one of male, female, other, unknown", True),
    "bad enum code in array": ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"},
                                "category": ["food", "pets"]}, "value", "AllergyIntolerance.category[1]",
                               "Invalid code 'pets'", True),
    "bad id": (patient(id="a b"), "value", "Patient.id", "Invalid id 'a b'", True),
    "control character": (patient(name=[{"family": "a\u0001b"}]), "value", "Patient.name[0].family",
                          "control characters", True),
    "fraction for integer": (patient(multipleBirthInteger=1.5), "value", "Patient.multipleBirthInteger",
                             "whole number", True),
    "boolean for integer": (patient(multipleBirthInteger=True), "structure", "Patient.multipleBirthInteger",
                            "whole number", True),
    "2.0 for integer": (patient(multipleBirthInteger=2.0), "value", "Patient.multipleBirthInteger",
                        "whole number without a decimal point", False),
    "zero positiveInt": ({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "x"},
                          "patient": {"reference": "Patient/p1"}, "occurrenceString": "2020",
                          "protocolApplied": [{"doseNumberPositiveInt": 0}]}, "value",
                         "Immunization.protocolApplied[0].doseNumberPositiveInt", "at least 1", True),
    "missing required": ({"resourceType": "Observation", "code": {"text": "x"}}, "required",
                         "Observation.status", "Missing required element 'status'", False),
    "missing required choice": ({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                                 "subject": {"reference": "Patient/p1"}}, "required",
                                "MedicationRequest.medication", "'medication[x]'", False),
    "missing extension url": (patient(extension=[{"valueString": "x"}]), "required", "Patient.extension[0].url",
                              "Missing required element 'url'", False),
    "two forms of a choice": (patient(deceasedBoolean=True, deceasedDateTime="2020"), "structure",
                              "Patient.deceased", "deceasedBoolean, deceasedDateTime", False),
    "null value": (patient(gender=None), "structure", "Patient.gender", "null", False),
    "null in array without _x": (patient(name=[{"given": ["a", None]}]), "structure", "Patient.name[0].given[1]",
                                 "null", False),
    "empty string": (patient(name=[{"family": ""}]), "value", "Patient.name[0].family", "Empty string", False),
    "empty array": (patient(name=[]), "structure", "Patient.name", "Empty array", False),
    "empty object": (patient(meta={}), "structure", "Patient.meta", "Empty object", False),
    "contained: bad element": (patient(contained=[dict(OBSERVATION, id="o1", foo=1)]), "structure",
                               "Patient.contained[0].foo", "Unknown element 'foo'", True),
    "contained: missing required": (patient(contained=[{"resourceType": "Observation", "id": "o1",
                                                        "code": {"text": "x"}}]),
                                    "required", "Patient.contained[0].status", "'status'", False),
    "contained: unknown type": (patient(contained=[{"resourceType": "Foo", "id": "x"}]), "invalid",
                                "Patient.contained[0].resourceType", "Unknown resource type 'Foo'", False),
    "contained: not an object": (patient(contained=["x"]), "structure", "Patient.contained[0]",
                                 "expected a JSON object", True),
    "bundle entry: bad code": ({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": patient(gender="x")}]}, "value",
                               "Bundle.entry[0].resource.gender", "Invalid code 'x'", True),
    "bundle entry: bad date": ({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"fullUrl": "urn:uuid:1", "resource": patient()},
                                          {"resource": patient(birthDate="2020-13-01")}]}, "value",
                               "Bundle.entry[1].resource.birthDate", "Invalid date", True),
    "Medplum element, not R4": (patient(meta={"project": "x"}), "structure", "Patient.meta.project",
                                "Unknown element 'project'", True),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_resource(case):
    resource, code, expression, words, schema_level = INVALID[case]
    issues = issues_of(resource)
    match = [i for i in issues if i.expression == (expression,)]
    assert match, issues
    assert match[0].code == code
    assert words in match[0].diagnostics
    assert match[0].severity == "error"
    if schema_level:  # both engines must refuse it: fast path rejects, report path explains
        rtype = resource["resourceType"]
        assert fast_rejects(resource)
        assert any(i.expression == (expression,) for i in precise.schema_issues(resource, rtype, 50))


@pytest.mark.parametrize("value, words", [
    ([], "not an array"), ("Patient", "not string"), (None, "not null"), (42, "not number"),
])
def test_not_an_object(value, words):
    (issue,) = issues_of(value)
    assert issue.code == "structure" and words in issue.diagnostics


@pytest.mark.parametrize("resource, code, words", [
    ({"id": "x"}, "required", "Missing required element 'resourceType'"),
    ({"resourceType": "Foo"}, "invalid", "Unknown resource type 'Foo'"),
    ({"resourceType": "User"}, "invalid", "Unknown resource type 'User'"),   # Medplum type, not R4
    ({"resourceType": ["Patient"]}, "invalid", "Unknown resource type"),
])
def test_resource_type(resource, code, words):
    (issue,) = issues_of(resource)
    assert issue.code == code and words in issue.diagnostics
    assert issue.expression == ("resourceType",)


@pytest.mark.parametrize("resource", [
    patient(),
    {"resourceType": "Patient"},
    # null in a repeating primitive is fine when `_given` carries that item's extension
    patient(name=[{"given": ["Bob", None], "_given": [None, {"extension": [
        {"url": "http://example.org/x", "valueString": "y"}]}]}]),
    {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"},
     "category": ["food", None], "_category": [None, {"extension": [{"url": "http://example.org/x",
                                                                     "valueString": "y"}]}]},
    # `_status` alone satisfies the required `status` (json.html#primitive)
    {"resourceType": "Observation", "code": {"text": "x"},
     "_status": {"extension": [{"url": "http://example.org/x", "valueCode": "a"}]}},
    patient(name=[{"family": "a\u00a0b \u2028 \U0001F600"}]),     # any Unicode but control characters
    patient(birthDate="2024-02-29", deceasedDateTime="2024-02-29T23:59:60+14:00"),
])
def test_valid_resource(resource):
    validate(resource)


def test_all_problems_reported_at_once():
    issues = issues_of(patient(foo=1, gender="m", birthDate="2020-13-01", name=[{"family": ""}]))
    assert {i.expression[0] for i in issues} == {
        "Patient.foo", "Patient.gender", "Patient.birthDate", "Patient.name[0].family"}


def test_issue_count_is_capped():
    issues = issues_of(patient(**{f"bad{i}": 1 for i in range(200)}))
    assert len(issues) == MAX_ISSUES
    assert issues[-1].severity == "information"
    assert "only the first" in issues[-1].diagnostics


def test_deep_nesting_is_refused_not_crashed():
    deep: dict = {"url": "http://example.org/x"}
    for _ in range(3000):
        deep = {"url": "http://example.org/x", "extension": [deep]}
    issues = issues_of(patient(extension=[deep]))
    assert issues[0].code == "structure"


def test_first_use_is_thread_safe(monkeypatch):
    monkeypatch.setattr(schema, "_model", None)
    monkeypatch.setattr(fast, "_checks", None)
    monkeypatch.setattr(precise, "_validators", {})
    errors = []

    def run():
        try:
            validate(patient())
            issues_of(patient(gender="m"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
