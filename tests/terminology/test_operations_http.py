"""The terminology operations over HTTP with authorization on: an administrator stores official
examples, then $expand/$validate-code/$lookup/$subsumes/$translate answer from stored and shipped
definitions; hostile input is a 400 OperationOutcome."""
from __future__ import annotations

import json

import pytest

from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import auth, make_app, mint
from tests.terminology._defs import example

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
GENDER = "http://hl7.org/fhir/administrative-gender"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
EXT = "http://hl7.org/fhir/ValueSet/example-extensional"
ACME = "http://hl7.org/fhir/CodeSystem/example"


@pytest.fixture
def send(tmp_path, backend):
    app = make_app(tmp_path, backend)
    Users(app.config["MEDPORT"].store).add("root", "correct horse battery staple", "admin", None)
    tokens = {"admin": mint(app, "user/*.cruds", subject="root", role="admin"),
              "hospital": mint(app, "system/*.cruds", client_id="hosp-a", organization="Organization/hosp-a")}
    http = app.test_client()

    def send(method, url, body=None, who="hospital"):
        r = http.open(url, method=method, data=None if body is None else json.dumps(body),
                      headers=auth(tokens[who], **{"Content-Type": FHIR_JSON}))
        return r.status_code, r.get_json()
    return send


def params(**values) -> dict:
    out = []
    for name, value in values.items():
        key = ("resource" if "resourceType" in value else "valueCoding" if "code" in value
               else "valueCodeableConcept") if isinstance(value, dict) else \
            "valueBoolean" if isinstance(value, bool) else "valueInteger" if isinstance(value, int) else "valueString"
        out.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": out}


def out(body: dict) -> dict:
    return {p["name"]: p for p in body["parameter"]}


def test_expand_a_stored_official_example_by_id_and_by_url(send):
    status, stored = send("POST", "/fhir/ValueSet", example("ValueSet-example-extensional"), who="admin")
    assert status == 201
    codes = {"14647-2", "2093-3", "35200-5", "9342-7"}
    status, by_id = send("GET", f"/fhir/ValueSet/{stored['id']}/$expand")
    assert status == 200 and {c["code"] for c in by_id["expansion"]["contains"]} == codes
    assert by_id["expansion"]["total"] == 4 and by_id["expansion"]["offset"] == 0
    status, by_url = send("GET", f"/fhir/ValueSet/$expand?url={EXT}&count=2&offset=1")
    assert status == 200 and by_url["id"] == stored["id"]                 # the stored one wins over the shipped
    assert by_url["expansion"]["total"] == 4 and len(by_url["expansion"]["contains"]) == 2
    assert by_url["expansion"]["offset"] == 1
    status, filtered = send("GET", f"/fhir/ValueSet/$expand?url={EXT}&filter=percentile")
    assert [c["code"] for c in filtered["expansion"]["contains"]] == ["9342-7"]
    assert send("GET", "/fhir/ValueSet/nope/$expand")[0] == 404
    assert send("GET", "/fhir/ValueSet/$expand?url=http://nowhere.test/vs")[0] == 404


def test_expand_shipped_paging_and_inline(send):
    status, page = send("GET", "/fhir/ValueSet/$expand?url=http://terminology.hl7.org/ValueSet/v3-ActCode"
                               "&count=10&offset=20")
    assert status == 200 and page["expansion"]["total"] > 1000 and len(page["expansion"]["contains"]) == 10
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ACT, "filter": [{"property": "concept", "op": "is-a", "value": "_ActEncounterCode"}]}]}}
    status, body = send("POST", "/fhir/ValueSet/$expand", params(valueSet=inline))
    assert status == 200 and "AMB" in {c["code"] for c in body["expansion"]["contains"]}


@pytest.mark.parametrize("query,body", [
    ("url=" + GENDER_VS + "&count=100000", None),
    ("url=" + GENDER_VS + "&count=ten", None),
    ("url=" + GENDER_VS + "&offset=-1", None),
    ("url=" + GENDER_VS + "&offset=99999999999999999999", None),         # not a FHIR integer (32-bit)
    ("url=" + GENDER_VS + "&offset=2147483648&count=0", None),
    ("url=" + GENDER_VS + "&offset=" + "9" * 5000, None),
    ("url=" + GENDER_VS + "&filter=" + "x" * 500, None),
    ("url=http://hl7.org/fhir/ValueSet/observation-codes", None),          # all of LOINC: only a fragment here
    ("", params(valueSet={"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ACT, "filter": [{"property": "code", "op": "regex", "value": "(A+)+$"}]}]}})),
    ("", params(valueSet={"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ACT, "filter": [{"property": "concept", "op": "matches", "value": "x"}]}]}})),
    ("", params(valueSet={"resourceType": "ValueSet", "status": "active",
                          "compose": {"include": [{"system": ACT}] * 600}})),
    ("", params(valueSet={"resourceType": "Patient"})),
])
def test_hostile_expansions_are_400(send, query, body):
    status, outcome = send("POST" if body else "GET", "/fhir/ValueSet/$expand" + (f"?{query}" if query else ""), body)
    assert status == 400 and outcome["resourceType"] == "OperationOutcome"


def test_validate_code_on_value_sets(send):
    base = f"/fhir/ValueSet/$validate-code?url={GENDER_VS}&system={GENDER}"
    status, ok = send("GET", base + "&code=male")
    assert status == 200 and out(ok)["result"]["valueBoolean"] is True and out(ok)["display"]["valueString"] == "Male"
    no = out(send("GET", base + "&code=boy")[1])
    assert no["result"]["valueBoolean"] is False and "boy" in no["message"]["valueString"]
    wrong = out(send("GET", base + "&code=male&display=Man")[1])
    assert wrong["result"]["valueBoolean"] is False and "Man" in wrong["message"]["valueString"]
    cc = {"coding": [{"system": "http://other.test", "code": "x"}, {"system": GENDER, "code": "female"}]}
    assert out(send("POST", "/fhir/ValueSet/$validate-code", params(url=GENDER_VS, codeableConcept=cc))[1])[
        "result"]["valueBoolean"] is True
    unknown = out(send("GET", "/fhir/ValueSet/$validate-code?url=http://hl7.org/fhir/ValueSet/observation-codes"
                              "&system=http://loinc.org&code=0000-0")[1])
    assert unknown["result"]["valueBoolean"] is False and "Cannot tell" in unknown["message"]["valueString"]
    assert send("GET", "/fhir/ValueSet/$validate-code?url=http://nowhere.test/vs&code=a&system=b")[0] == 404
    assert send("GET", f"/fhir/ValueSet/$validate-code?url={GENDER_VS}")[0] == 400


def test_code_system_validate_code_and_lookup_on_a_stored_example(send):
    status, stored = send("POST", "/fhir/CodeSystem", example("CodeSystem-example"), who="admin")
    assert status == 201
    status, body = send("GET", f"/fhir/CodeSystem/{stored['id']}/$validate-code?code=chol-mass")
    assert status == 200 and out(body)["result"]["valueBoolean"] is True
    assert out(body)["display"]["valueString"] == "SChol (mg/L)"
    assert out(send("GET", f"/fhir/CodeSystem/$validate-code?url={ACME}&code=chol-x")[1])[
        "result"]["valueBoolean"] is False
    coding = {"system": ACME, "code": "chol", "display": "SChol"}
    assert out(send("POST", "/fhir/CodeSystem/$validate-code", params(url=ACME, coding=coding))[1])[
        "result"]["valueBoolean"] is True
    status, found = send("GET", f"/fhir/CodeSystem/$lookup?system={ACME}&code=chol")
    assert status == 200 and out(found)["definition"]["valueString"] == "Serum Cholesterol"
    assert send("GET", "/fhir/CodeSystem/$validate-code?url=http://nowhere.test/cs&code=a")[0] == 404


def test_lookup_and_subsumes_on_shipped_hierarchies(send):
    status, body = send("GET", f"/fhir/CodeSystem/$lookup?system={ACT}&code=AMB")
    assert status == 200 and out(body)["display"]["valueString"] == "ambulatory"
    parents = {p["part"][1]["valueCode"] for p in body["parameter"]
               if p["name"] == "property" and p["part"][0]["valueCode"] == "parent"}
    assert "_ActEncounterCode" in parents
    loinc = out(send("GET", "/fhir/CodeSystem/$lookup?system=http://loinc.org&code=8867-4")[1])
    assert loinc["display"]["valueString"] == "Heart rate"
    assert send("GET", "/fhir/CodeSystem/$lookup?system=http://loinc.org&code=8867-4&version=1.0")[0] == 404
    for a, b, outcome in (("_ActEncounterCode", "AMB", "subsumes"), ("AMB", "_ActEncounterCode", "subsumed-by"),
                          ("AMB", "AMB", "equivalent"), ("AMB", "EMER", "not-subsumed")):
        status, body = send("GET", f"/fhir/CodeSystem/$subsumes?system={ACT}&codeA={a}&codeB={b}")
        assert status == 200 and out(body)["outcome"]["valueCode"] == outcome
    body = params(codingA={"system": ACT, "code": "_ActEncounterCode"}, codingB={"system": ACT, "code": "EMER"})
    assert out(send("POST", "/fhir/CodeSystem/$subsumes", body)[1])["outcome"]["valueCode"] == "subsumes"
    assert send("GET", "/fhir/CodeSystem/$subsumes?system=http://nowhere.test&codeA=a&codeB=b")[0] == 404
    assert send("GET", f"/fhir/CodeSystem/$subsumes?system={ACT}&codeA=AMB&codeB=NOPE")[0] == 404
    assert send("GET", "/fhir/CodeSystem/$subsumes?codeA=a&codeB=b")[0] == 400


def test_a_code_system_version_not_held_is_404_for_every_operation(send):
    """$lookup, $validate-code and $subsumes name a code system version; one this server does not hold
    is not silently replaced by the version it holds."""
    for url in (f"/fhir/CodeSystem/$lookup?system={GENDER}&code=male&version=9.9",
                f"/fhir/CodeSystem/$validate-code?url={GENDER}&version=9.9&code=male",
                f"/fhir/CodeSystem/$subsumes?system={GENDER}&version=9.9&codeA=male&codeB=male"):
        status, outcome = send("GET", url)
        assert status == 404 and "9.9" in outcome["issue"][0]["diagnostics"], url
    assert out(send("GET", f"/fhir/CodeSystem/$validate-code?url={GENDER}&version=4.0.1&code=male")[1])[
        "result"]["valueBoolean"] is True


def test_translate_with_shipped_maps(send):
    v3 = "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"
    status, body = send("GET", f"/fhir/ConceptMap/$translate?system={GENDER}&code=male&targetsystem={v3}")
    assert status == 200 and out(body)["result"]["valueBoolean"] is True
    match = out(body)["match"]["part"]
    assert {"name": "concept", "valueCoding": {"system": v3, "code": "M"}} in match
    back = out(send("GET", f"/fhir/ConceptMap/$translate?system={v3}&code=F&reverse=true")[1])
    assert {"name": "concept", "valueCoding": {"system": GENDER, "code": "female"}} in back["match"]["part"]
    url = "http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v2"
    status, body = send("GET", f"/fhir/ConceptMap/$translate?url={url}&system={GENDER}&code=other")
    assert status == 200 and out(body)["result"]["valueBoolean"] is True
    none = out(send("GET", f"/fhir/ConceptMap/$translate?system={GENDER}&code=nonsense")[1])
    assert none["result"]["valueBoolean"] is False and "match" not in none
    assert send("GET", f"/fhir/ConceptMap/$translate?url=http://nowhere.test/cm&system={GENDER}&code=male")[0] == 404


def test_translate_an_official_example_map_stored_by_an_administrator(send):
    status, stored = send("POST", "/fhir/ConceptMap", example("ConceptMap-101"), who="admin")
    assert status == 201
    status, body = send("GET", f"/fhir/ConceptMap/{stored['id']}/$translate"
                               "?system=http://hl7.org/fhir/address-use&code=home")
    assert status == 200 and out(body)["result"]["valueBoolean"] is True
    assert out(body)["match"]["part"][1]["valueCoding"]["code"] == "H"


def test_capability_statement_lists_the_terminology_operations(send):
    status, cs = send("GET", "/fhir/metadata")
    ops = {(r["type"], o["name"]): o["definition"] for r in cs["rest"][0]["resource"] for o in r.get("operation", ())}
    base = "http://hl7.org/fhir/OperationDefinition/"
    assert ops[("ValueSet", "expand")] == base + "ValueSet-expand"
    assert ops[("ValueSet", "validate-code")] == base + "ValueSet-validate-code"
    assert ops[("CodeSystem", "validate-code")] == base + "CodeSystem-validate-code"
    assert ops[("CodeSystem", "subsumes")] == base + "CodeSystem-subsumes"
    assert ops[("ConceptMap", "translate")] == base + "ConceptMap-translate"
    # the CodeSystem form takes the CodeSystem definition's parameters (codeSystem, version), not the ValueSet's
    assert send("GET", "/fhir/CodeSystem/$validate-code?url=http://hl7.org/fhir/administrative-gender"
                       "&version=4.0.1&code=male")[0] == 200
    assert send("GET", "/fhir/ValueSet/$validate-code?url=" + GENDER_VS + "&version=4.0.1&code=male")[0] == 400
