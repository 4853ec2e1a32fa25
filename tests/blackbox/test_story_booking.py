"""A story over HTTP against a real `medport serve --demo`: Priya, Asha's daughter abroad, books her
mother a blood test near home.

She signs in to the demo SMART app as herself (a related-person account; the patient picker offers
the mother who delegated to her: docs/auth.md "Family proxy"), reads her mother's address, finds the
nearest laboratory without any token (the public directory, docs/directory.md), sees what the blood
test costs her mother ($price, docs/prices.md), finds a free time ($find) and books it for her
($book, docs/scheduling.md). The booking is held by the laboratory's hospital: Asha and that
hospital's own client see it; the other hospital (the Chennai clinic) does not.
"""
from __future__ import annotations

import json

import pytest
import requests

from .test_smart_e2e import Browser, _app_session

SCOPE = "launch/patient openid fhirUser patient/*.cruds"
FACILITY = "https://medport.health/fhir/CodeSystem/facility-type"
BLOOD_TEST = "http://snomed.info/sct|396550006"
GEO = "http://hl7.org/fhir/StructureDefinition/geolocation"


@pytest.fixture(scope="module")
def demo(module_server_factory, tmp_path_factory):
    folder = tmp_path_factory.mktemp("story-demo")
    server = module_server_factory(str(folder / "store.db"), auth="on", demo=True)
    with open(folder / "demo-credentials.json") as f:
        creds = json.load(f)
    return server, creds


def _user_token(server, creds, username: str) -> dict:
    """The SMART authorization code flow of the demo app for a user (login, consent, picker)."""
    sess, url, verifier = _app_session(server, creds, SCOPE)
    back = Browser(server.root).authorize(url, username, creds["users"][username]["password"])
    return sess.fetch_token(server.root + "/auth/token", authorization_response=back, code_verifier=verifier)


def _client_token(server, creds, client: str, scope: str = "system/*.rs") -> str:
    c = creds["clients"][client]
    r = requests.post(server.root + "/auth/token", auth=(c["client_id"], c["client_secret"]), timeout=30,
                      data={"grant_type": "client_credentials", "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _get(server, path: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.base}/{path}", headers=headers, timeout=30)


def _part(parameter: dict, name: str):
    return next(p for p in parameter["part"] if p["name"] == name)


def test_a_daughter_abroad_books_her_mother_a_blood_test_at_the_nearest_lab(demo):
    server, creds = demo
    # Priya signs in; the picker holds her mother, who delegated to her
    token = _user_token(server, creds, "priya")
    assert token["patient"] == "demo-patient"
    priya = token["access_token"]
    mother = _get(server, "Patient/demo-patient", priya)
    assert mother.status_code == 200
    geo = {e["url"]: e["valueDecimal"] for a in mother.json()["address"] for x in a.get("extension", [])
           if x["url"] == GEO for e in x["extension"]}
    home = f"{geo['latitude']}|{geo['longitude']}"

    # the nearest laboratory to her mother's home, and its blood test: no token at all
    labs = _get(server, f"Location?type=HLAB,OUTLAB&near={home}|10|km&_sort=near&_count=1")
    assert labs.status_code == 200, labs.text
    lab = labs.json()["entry"][0]
    assert lab["resource"]["id"] == "demo-hospital-lab" and labs.json()["total"] == 2
    assert lab["search"]["extension"][0]["valueDistance"]["value"] < 2
    hospital = lab["resource"]["managingOrganization"]["reference"]
    services = _get(server, f"HealthcareService?location=Location/demo-hospital-lab&service-type={BLOOD_TEST}").json()
    assert [e["resource"]["id"] for e in services["entry"]] == ["demo-blood-test"]
    blood_banks = _get(server, f"Location?type={FACILITY}|blood-bank&near={home}|10|km&_sort=near&_count=1").json()
    assert blood_banks["entry"][0]["resource"]["id"] == "demo-hospital-blood-bank"
    assert _get(server, "HealthcareService/demo-blood-test/$price").status_code == 401     # an operation

    # what it costs: the public price list says 400 INR, 20% off for senior citizens (no token) ...
    prices = _get(server, "ChargeItemDefinition?service=HealthcareService/demo-blood-test&status=active").json()
    [definition] = [e["resource"] for e in prices["entry"]]
    assert definition["propertyGroup"][0]["priceComponent"][0]["amount"] == {"value": 400, "currency": "INR"}
    assert definition["propertyGroup"][1]["priceComponent"][0] == {"type": "discount", "factor": 0.2}
    # ... and $price, with her own token, works it out for her mother (born 1956): 320 INR
    price = _get(server, "HealthcareService/demo-blood-test/$price?patient=Patient/demo-patient", priya)
    assert price.status_code == 200, price.text
    quote = price.json()["parameter"][0]
    assert _part(quote, "base")["valueMoney"] == {"value": 400, "currency": "INR"}
    assert _part(quote, "total")["valueMoney"] == {"value": 320, "currency": "INR"}

    # a free time at that laboratory, booked for her mother
    found = _get(server, f"Appointment/$find?location=Location/demo-hospital-lab&service-type={BLOOD_TEST}"
                         "&patient=Patient/demo-patient&_count=3", priya)
    assert found.status_code == 200, found.text
    proposal = found.json()["entry"][0]["resource"]
    assert proposal["status"] == "proposed"
    booked = requests.post(f"{server.base}/Appointment/$book", timeout=30,
                           headers={"Authorization": f"Bearer {priya}", "Content-Type": "application/fhir+json"},
                           json={"resourceType": "Parameters",
                                 "parameter": [{"name": "appointment", "resource": proposal}]})
    assert booked.status_code == 200, booked.text
    appointment = booked.json()["entry"][0]["resource"]
    assert appointment["status"] == "booked" and appointment["slot"] == proposal["slot"]
    actors = {p["actor"]["reference"] for p in appointment["participant"]}
    assert {"Patient/demo-patient", "Location/demo-hospital-lab", "HealthcareService/demo-blood-test"} <= actors
    slot = _get(server, appointment["slot"][0]["reference"]).json()
    assert slot["status"] == "busy"
    again = _get(server, f"Appointment/$find?location=Location/demo-hospital-lab&service-type={BLOOD_TEST}"
                         "&_count=3", priya).json()
    assert appointment["slot"][0] not in [s for e in again["entry"] for s in e["resource"]["slot"]]

    # Asha sees it in her own record
    asha = _user_token(server, creds, "asha")["access_token"]
    mine = _get(server, "Appointment?patient=Patient/demo-patient", asha).json()
    assert [e["resource"]["id"] for e in mine["entry"]] == [appointment["id"]]
    # the laboratory's hospital sees it with its own client; the clinic in Chennai does not
    assert hospital == "Organization/demo-hospital"
    ehr = _client_token(server, creds, "backend")
    assert _get(server, f"Appointment/{appointment['id']}", ehr).status_code == 200
    assert appointment["id"] in [e["resource"]["id"] for e in
                                 _get(server, "Appointment?service-type=" + BLOOD_TEST, ehr).json()["entry"]]
    clinic = _client_token(server, creds, "clinic")
    assert _get(server, f"Appointment/{appointment['id']}", clinic).status_code == 404
    assert _get(server, "Appointment", clinic).json()["total"] == 0
