"""The card's content: the minimal Bundle ("Health Cards are compact") and the claims."""
from __future__ import annotations

from fhirserver.health_cards import credential
from tests.health_cards._cards import CVX, ISSUER, UHID, immunization, patient


def test_minimal_bundle_follows_the_compactness_rules():
    bundle = credential.minimal_bundle(patient(), [immunization(1), immunization(2)])
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert [e["fullUrl"] for e in bundle["entry"]] == ["resource:0", "resource:1", "resource:2"]
    pat, imm = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    assert pat == {"resourceType": "Patient", "identifier": [{"system": UHID, "value": "1234567897"}],
                   "name": [{"family": "Rao", "given": ["Asha"]}], "birthDate": "1950-04-02"}
    assert imm["vaccineCode"] == {"coding": [{"system": CVX, "code": "207"}]}
    assert imm["patient"] == {"reference": "resource:0"}
    # the clinic is not in the card: its server id goes, its name stays
    assert imm["performer"] == [{"actor": {"display": "City Clinic"}}]
    assert "id" not in imm and imm["lotNumber"] == "LOT1"


def test_minimal_bundle_keeps_security_labels_and_leaves_inputs_alone():
    p = patient()
    p["meta"]["security"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R",
                              "display": "restricted"}]
    imm = immunization()
    imm["performer"] = [{"actor": {"reference": "Practitioner/x"}}]     # nothing left: the element goes
    imm["reasonReference"] = [{"reference": "Patient/asha/_history/3"}]
    bundle = credential.minimal_bundle(p, [imm])
    pat, out = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    assert pat["meta"] == {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                         "code": "R"}]}
    assert "performer" not in out and out["reasonReference"] == [{"reference": "resource:0"}]
    assert p["id"] == "asha" and imm["patient"]["reference"].endswith("Patient/asha")   # inputs unchanged


def test_a_concept_with_only_text_keeps_it():
    imm = immunization()
    imm["vaccineCode"] = {"text": "BCG"}
    assert credential.minimal_bundle(patient(), [imm])["entry"][1]["resource"]["vaccineCode"] == {"text": "BCG"}


def test_payload_claims():
    bundle = credential.minimal_bundle(patient(), [])
    claims = credential.payload(ISSUER + "/", bundle, 1700000000, ("https://smarthealth.cards#immunization",))
    assert claims == {"iss": ISSUER, "nbf": 1700000000, "vc": {
        "type": ["https://smarthealth.cards#health-card", "https://smarthealth.cards#immunization"],
        "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": bundle}}}
