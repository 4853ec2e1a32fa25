"""Hand-made violations of each rule kind, caught with the right rule, key and path (profiling.html).

US Core 5.0.1 blood pressure and patient profiles where they have the rule; hand-made profiles
(_profile.derived: the core snapshot with a few elements changed) for the rest.
"""
from __future__ import annotations

import copy

from fhirserver.validation.profile import Finding

from ._profile import BP, CORE, US_CORE, derived, errors, of, run, run_sd, synthea_bp, synthea_patient

PATIENT = US_CORE + "us-core-patient"


def message(found) -> str:
    """The message of the first error."""
    return next(f.message for f in found if f.severity == "error")


def bp(**changes) -> dict:
    obs = copy.deepcopy(synthea_bp())
    obs.update(changes)
    return obs


def systolic(obs: dict) -> dict:
    return next(c for c in obs["component"] if c["code"]["coding"][0]["code"] == "8480-6")


def test_the_synthea_blood_pressure_conforms():
    found = run(synthea_bp(), BP)
    assert errors(found) == []
    assert of(found, "warning") == [("invariant", "dom-6", "Observation")]      # no narrative


def test_cardinality_too_few():
    obs = bp()
    del obs["category"]
    obs["component"] = obs["component"][:1]          # diastolic only
    assert errors(run(obs, BP)) == [
        ("cardinality", "Observation.component", "Observation.component"),
        ("cardinality", "Observation.component:systolic", "Observation.component"),
        ("cardinality", "Observation.category", "Observation.category")]


def test_cardinality_too_many():
    obs = bp()
    obs["category"] = obs["category"] * 2            # VSCat is 1..1
    assert errors(run(obs, BP)) == [("cardinality", "Observation.category:VSCat", "Observation.category")]
    one_name = derived(CORE + "Patient", "https://example.org/one-name", change={"Patient.name": {"max": "1"}})
    pat = {"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}]}
    assert errors(run_sd(pat, one_name)) == [("cardinality", "Patient.name", "Patient.name")]
    pat = {"resourceType": "Patient", "gender": "male", "name": [{"family": "A"}]}
    no_gender = derived(CORE + "Patient", "https://example.org/no-gender", change={"Patient.gender": {"max": "0"}})
    assert errors(run_sd(pat, no_gender)) == [("cardinality", "Patient.gender", "Patient.gender")]


def test_wrong_type_of_a_choice_element():
    obs = bp()
    s = systolic(obs)
    del s["valueQuantity"]
    s["valueString"] = "128 mmHg"
    index = obs["component"].index(s)
    found = run(obs, BP)
    assert errors(found) == [("type", "Observation.component:systolic.value[x]",
                              f"Observation.component[{index}].valueString")]
    assert "type string is not allowed" in message(found) and "valueString" in message(found)


def test_fixed_value_differs():
    obs = bp()
    s = systolic(obs)
    s["valueQuantity"]["code"] = "mmHg"
    index = obs["component"].index(s)
    assert errors(run(obs, BP)) == [("fixed", "Observation.component:systolic.value[x].code",
                                     f"Observation.component[{index}].valueQuantity.code")]


def test_pattern_missing():
    obs = bp()
    obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}      # heart rate
    assert ("pattern", "Observation.code", "Observation.code") in errors(run(obs, BP))


def test_pattern_arrays_match_item_by_item():
    obs = bp()
    obs["code"]["coding"].insert(0, {"system": "http://snomed.info/sct", "code": "75367002"})
    assert errors(run(obs, BP)) == []


def test_slice_missing_and_the_discriminator_by_pattern():
    obs = bp()
    obs["component"] = [c for c in obs["component"] if c is not systolic(obs)] * 2
    assert errors(run(obs, BP)) == [
        ("cardinality", "Observation.component:systolic", "Observation.component"),
        ("cardinality", "Observation.component:diastolic", "Observation.component")]


MRN = "https://hospital.example/mrn"
CLOSED = {"Patient.identifier": {"slicing": {"discriminator": [{"type": "value", "path": "system"}],
                                             "rules": "closed"}}}
MRN_SLICE = {"Patient.identifier": [
    {"id": "Patient.identifier:mrn", "sliceName": "mrn", "min": 1, "max": "1", "type": [{"code": "Identifier"}]},
    {"id": "Patient.identifier:mrn.system", "min": 1, "max": "1", "type": [{"code": "uri"}], "fixedUri": MRN},
    {"id": "Patient.identifier:mrn.value", "min": 1, "max": "1", "type": [{"code": "string"}], "maxLength": 8}]}


def test_closed_slicing_refuses_an_extra_item():
    profile = derived(CORE + "Patient", "https://example.org/mrn-only", change=CLOSED, add=MRN_SLICE)
    pat = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "123"},
                                                     {"system": "https://other.example", "value": "9"}]}
    assert errors(run_sd(pat, profile)) == [("slicing", "Patient.identifier", "Patient.identifier[1]")]
    pat["identifier"] = pat["identifier"][:1]
    assert errors(run_sd(pat, profile)) == []
    pat["identifier"] = [{"system": "https://other.example", "value": "9"}]
    assert errors(run_sd(pat, profile)) == [("cardinality", "Patient.identifier:mrn", "Patient.identifier"),
                                            ("slicing", "Patient.identifier", "Patient.identifier[0]")]


def test_open_at_end_and_ordered_slicing():
    at_end = derived(CORE + "Patient", "https://example.org/at-end", add=MRN_SLICE, change={"Patient.identifier": {
        "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "openAtEnd", "ordered": True}}})
    other = {"system": "https://other.example", "value": "9"}
    mrn = {"system": MRN, "value": "1"}
    assert errors(run_sd({"resourceType": "Patient", "identifier": [mrn, other]}, at_end)) == []
    assert errors(run_sd({"resourceType": "Patient", "identifier": [other, mrn]}, at_end)) == [
        ("slicing", "Patient.identifier", "Patient.identifier[1]")]


def test_max_length():
    profile = derived(CORE + "Patient", "https://example.org/mrn", add=MRN_SLICE, change={"Patient.identifier": {
        "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}}})
    pat = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "123456789"}]}
    found = run_sd(pat, profile)
    assert errors(found) == [("type", "Patient.identifier:mrn.value", "Patient.identifier[0].value")]
    assert "maxLength 8" in message(found)


def test_required_binding_code_not_in_value_set():
    pat = copy.deepcopy(synthea_patient())
    pat["gender"] = "robot"
    found = run(pat, PATIENT)
    assert errors(found) == [("binding", "http://hl7.org/fhir/ValueSet/administrative-gender", "Patient.gender")]
    assert "robot" in message(found) and "required" in message(found)


def test_extensible_binding_is_a_warning():
    pat = copy.deepcopy(synthea_patient())
    ss = next(i for i, ident in enumerate(pat["identifier"]) if ident.get("type", {}).get("coding", [{}])[0]
              .get("code") == "SS")
    found = run(pat, PATIENT)
    assert errors(found) == []
    assert ("binding", "http://hl7.org/fhir/ValueSet/identifier-type", f"Patient.identifier[{ss}].type") \
        in of(found, "warning")


def test_binding_that_cannot_be_checked_is_information():
    found = run(synthea_patient(), PATIENT)
    race = [f for f in found if f.key == "http://hl7.org/fhir/us/core/ValueSet/omb-race-category"]
    assert [(f.severity, f.path) for f in race] == [("information", "Patient.extension[0].extension[0].valueCoding")]
    assert not [f for f in run(synthea_patient(), PATIENT, terminology=False) if f.rule == "binding"]


def test_invariant_violated():
    obs = bp()
    for c in obs["component"]:
        del c["valueQuantity"]
    found = run(obs, BP)
    assert errors(found) == [("invariant", "vs-3", "Observation.component[0]"),
                             ("invariant", "vs-3", "Observation.component[1]")]
    assert "vs-3" in message(found) and "Observation.component[0]" in message(found)
    pat = copy.deepcopy(synthea_patient())
    pat["name"] = [{"text": "Ruben"}]
    assert errors(run(pat, PATIENT)) == [("invariant", "us-core-6", "Patient")]


def test_reference_to_the_wrong_target_type():
    obs = bp(subject={"reference": "Group/1"})
    assert errors(run(obs, BP)) == [("type", "Observation.subject", "Observation.subject")]
    for fine in ("Patient/1", "https://other.example/fhir/Patient/1/_history/2", "urn:uuid:1"):
        assert errors(run(bp(subject={"reference": fine}), BP)) == []
    contained = bp(subject={"reference": "#g"}, contained=[{"resourceType": "Group", "id": "g", "type": "person",
                                                           "actual": True}])
    assert errors(run(contained, BP)) == [("type", "Observation.subject", "Observation.subject")]


def test_profile_for_another_type():
    found = run(synthea_patient(), BP)
    assert [(f.severity, f.rule, f.key) for f in found] == [("error", "profile", BP)]


def test_extension_slices_validate_the_extension_against_its_definition():
    pat = copy.deepcopy(synthea_patient())
    race = pat["extension"][0]
    race["extension"][0] = {"url": "ombCategory", "valueString": "White"}
    pat["extension"].append(copy.deepcopy(pat["extension"][1]))         # ethnicity twice: 0..1
    found = errors(run(pat, PATIENT))
    assert ("type", "Extension.extension:ombCategory.value[x]", "Patient.extension[0].extension[0].valueString") \
        in found
    assert ("cardinality", "Patient.extension:ethnicity", "Patient.extension") in found


def test_an_extension_no_slice_claims_is_checked_against_its_own_definition():
    pat = copy.deepcopy(synthea_patient())
    pat["_birthDate"] = {"extension": [{"url": CORE + "patient-birthTime", "valueString": "noon"}]}
    found = errors(run(pat, PATIENT))
    assert found == [("type", "Extension.value[x]", "Patient.birthDate.extension[0].valueString")]


def test_content_reference_and_type_profiles():
    obs = bp()
    obs["component"][0]["referenceRange"] = [{"low": {"value": 60, "comparator": "<"}}]
    # the referenceRange of a component is Observation.referenceRange (contentReference), whose low is a
    # SimpleQuantity: no comparator (sqty-1 and its 0..0 cardinality)
    assert errors(run(obs, BP)) == [
        ("invariant", "sqty-1", "Observation.component[0].referenceRange[0].low"),
        ("cardinality", "Quantity.comparator", "Observation.component[0].referenceRange[0].low.comparator")]


def test_findings_become_operation_outcome_issues():
    f = Finding("error", "invariant", "vs-3", "Observation.component[0]", "Observation.component[0]: vs-3 failed")
    issue = f.issue().to_json()
    assert issue["expression"] == ["Observation.component[0]"] and issue["severity"] == "error"
    assert issue["details"] == {"coding": [{"system": "https://medport.health/fhir/CodeSystem/validation-rule",
                                            "code": "invariant"}], "text": "vs-3"}


UCUM = "http://unitsofmeasure.org"


def test_slicing_by_type_of_a_choice_element():
    profile = derived(CORE + "Observation", "https://example.org/typed-value", change={"Observation.value[x]": {
        "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"}}}, add={
        "Observation.value[x]": [
            {"id": "Observation.value[x]:valueQuantity", "sliceName": "valueQuantity", "min": 0, "max": "1",
             "type": [{"code": "Quantity"}]},
            {"id": "Observation.value[x]:valueQuantity.system", "min": 1, "max": "1", "type": [{"code": "uri"}],
             "fixedUri": UCUM}]})
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
           "valueQuantity": {"value": 70, "system": "https://example.org/units", "code": "kg"}}
    assert errors(run_sd(obs, profile)) == [
        ("fixed", "Observation.value[x]:valueQuantity.system", "Observation.valueQuantity.system")]
    obs["valueQuantity"]["system"] = UCUM
    assert errors(run_sd(obs, profile)) == []
    del obs["valueQuantity"]
    obs["valueString"] = "70 kg"                     # no slice, open slicing: fine
    assert errors(run_sd(obs, profile)) == []


def test_slicing_by_exists():
    profile = derived(CORE + "Patient", "https://example.org/one-timed", change={"Patient.identifier": {
        "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "open"}}}, add={
        "Patient.identifier": [
            {"id": "Patient.identifier:timed", "sliceName": "timed", "min": 0, "max": "1",
             "type": [{"code": "Identifier"}]},
            {"id": "Patient.identifier:timed.period", "min": 1, "max": "1", "type": [{"code": "Period"}]}]})
    timed = {"system": "https://example.org", "value": "1", "period": {"start": "2020"}}
    pat = {"resourceType": "Patient", "identifier": [timed, {"system": "https://example.org", "value": "2"}]}
    assert errors(run_sd(pat, profile)) == []
    pat["identifier"].append(timed)
    assert errors(run_sd(pat, profile)) == [("cardinality", "Patient.identifier:timed", "Patient.identifier")]


def test_slicing_by_profile_and_nested_resources_against_their_type_profile():
    profile = derived(CORE + "Bundle", "https://example.org/patient-bundle", change={"Bundle.entry": {
        "slicing": {"discriminator": [{"type": "profile", "path": "resource"}], "rules": "open"}}}, add={
        "Bundle.entry": [
            {"id": "Bundle.entry:patient", "sliceName": "patient", "min": 1, "max": "1",
             "type": [{"code": "BackboneElement"}]},
            {"id": "Bundle.entry:patient.resource", "min": 1, "max": "1",
             "type": [{"code": "Patient", "profile": [PATIENT]}]}]})
    good = copy.deepcopy(synthea_patient())
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": good}]}
    assert errors(run_sd(bundle, profile)) == []
    bare = {"resourceType": "Patient", "gender": "male"}                       # no identifier, no name
    bundle["entry"] = [{"resource": bare}]
    assert errors(run_sd(bundle, profile)) == [("cardinality", "Bundle.entry:patient", "Bundle.entry")]
    # the slice's type profile applies to the matched entry's resource
    good["identifier"][0]["use"] = "bogus"
    bundle["entry"] = [{"resource": good}]
    assert ("binding", "http://hl7.org/fhir/ValueSet/identifier-use|4.0.1",
            "Bundle.entry[0].resource.identifier[0].use") in errors(run_sd(bundle, profile))


def test_extension_context():
    obs = bp(extension=[{"url": US_CORE + "us-core-race", "extension": [{"url": "text", "valueString": "x"}]}])
    found = run(obs, BP)
    assert errors(found) == [("profile", US_CORE + "us-core-race", "Observation.extension[0]")]
    assert "may not be used on Observation" in message(found)
    pat = copy.deepcopy(synthea_patient())        # race on Patient; birthTime on Patient.birthDate; birthPlace
    pat["_birthDate"] = {"extension": [{"url": CORE + "patient-birthTime", "valueDateTime": "2000-01-01T10:00:00Z"}]}
    pat["name"][0]["_family"] = {"extension": [{"url": CORE + "humanname-own-prefix", "valueString": "van"}]}
    pat["address"][0]["extension"].append({"url": CORE + "geolocation", "extension": [
        {"url": "latitude", "valueDecimal": 1.5}, {"url": "longitude", "valueDecimal": 2.5}]})
    assert errors(run(pat, PATIENT)) == []
    pat["name"][0]["_given"] = [{"extension": [{"url": CORE + "patient-birthTime",
                                                "valueDateTime": "2000-01-01T10:00:00Z"}]}]
    assert errors(run(pat, PATIENT)) == [("profile", CORE + "patient-birthTime", "Patient.name[0].given[0].extension[0]")]


def test_nested_resources_are_checked_against_the_profiles_they_claim():
    pat = copy.deepcopy(synthea_patient())
    del pat["identifier"]
    unknown = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
               "meta": {"profile": ["https://example.org/not-shipped"]}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": pat}, {"resource": unknown}]}
    found = run(bundle)
    assert errors(found) == [("cardinality", "Patient.identifier", "Bundle.entry[0].resource.identifier")]
    assert ("profile", "https://example.org/not-shipped", "Bundle.entry[1].resource") in of(found, "information")
    pat["meta"]["profile"] = [BP]
    assert ("profile", BP, "Bundle.entry[0].resource") in errors(run(bundle))


def test_min_and_max_values():
    profile = derived(CORE + "Patient", "https://example.org/bounded", change={
        "Patient.multipleBirth[x]": {"type": [{"code": "integer"}], "minValueInteger": 1, "maxValueInteger": 9},
        "Patient.birthDate": {"minValueDate": "1900-01-01"}})
    pat = {"resourceType": "Patient", "multipleBirthInteger": 12, "birthDate": "1890-05-05"}
    found = run_sd(pat, profile)
    assert errors(found) == [("type", "Patient.multipleBirth[x]", "Patient.multipleBirthInteger"),
                             ("type", "Patient.birthDate", "Patient.birthDate")]
    assert "above the maxValue 9" in message(found)
    pat.update(multipleBirthInteger=2, birthDate="1990")      # another precision: not comparable, not checked
    assert errors(run_sd(pat, profile)) == []


def test_references_to_bundle_entries_by_full_url():
    obs = bp(subject={"reference": "urn:uuid:9f3c2a4e-0000-4000-8000-000000000001"})
    other = {"resourceType": "Practitioner"}             # core Observation.subject: Patient, Group, Device, Location
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:9f3c2a4e-0000-4000-8000-000000000001", "resource": other},
        {"fullUrl": "urn:uuid:9f3c2a4e-0000-4000-8000-000000000002", "resource": obs}]}
    assert errors(run(bundle)) == [("type", "Observation.subject", "Bundle.entry[1].resource.subject")]
    other["resourceType"] = "Patient"
    assert errors(run(bundle)) == []
