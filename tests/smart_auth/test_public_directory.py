"""The public directory (smart_auth/public_directory.py): without a token, read and search of the
eight directory types work; every other type and every other path answers 401; nothing outside the
directory is reachable through includes, chains or _has; a token is judged by its token."""
from __future__ import annotations

import json

import pytest

from fhirserver.definitions import resource_types
from fhirserver.smart_auth.public_directory import DEFINITION_TYPES, PUBLIC_TYPES
from tests.conftest import FHIR_JSON
from tests.smart_auth._tokens import auth, make_app, mint

PRIVATE = "PRIVATE-ENCOUNTER-MARK"


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("directory"))
    client = app.test_client()
    token = auth(mint(app, "system/*.cruds", client_id="city-hospital", organization="Organization/city"))

    def create(resource) -> str:
        r = client.post(f"/fhir/{resource['resourceType']}", data=json.dumps(resource),
                        headers={**token, "Content-Type": FHIR_JSON})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()["id"]

    ids = {"Organization": create({"resourceType": "Organization", "name": "City Hospital"})}
    ids["Location"] = create({"resourceType": "Location", "name": "City Blood Bank",
                              "managingOrganization": {"reference": f"Organization/{ids['Organization']}"},
                              "position": {"latitude": 12.97, "longitude": 77.59}})
    ids["Practitioner"] = create({"resourceType": "Practitioner", "name": [{"family": "Rao"}]})
    ids["PractitionerRole"] = create({"resourceType": "PractitionerRole",
                                      "practitioner": {"reference": f"Practitioner/{ids['Practitioner']}"},
                                      "location": [{"reference": f"Location/{ids['Location']}"}]})
    ids["HealthcareService"] = create({"resourceType": "HealthcareService", "name": "Blood test",
                                       "location": [{"reference": f"Location/{ids['Location']}"}]})
    ids["Schedule"] = create({"resourceType": "Schedule",
                              "actor": [{"reference": f"Location/{ids['Location']}"}]})
    ids["Slot"] = create({"resourceType": "Slot", "status": "free", "start": "2026-12-07T09:00:00Z",
                          "end": "2026-12-07T09:15:00Z", "schedule": {"reference": f"Schedule/{ids['Schedule']}"}})
    ids["ChargeItemDefinition"] = create({"resourceType": "ChargeItemDefinition", "status": "active",
                                          "url": "https://city.test/price/cbc"})
    patient = create({"resourceType": "Patient", "name": [{"family": "Private"}]})
    ids["Encounter"] = create({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                               "subject": {"reference": f"Patient/{patient}"}, "text": {
                                   "status": "generated", "div": f"<div xmlns=\"http://www.w3.org/1999/xhtml\">{PRIVATE}</div>"},
                               "location": [{"location": {"reference": f"Location/{ids['Location']}"}}],
                               "serviceProvider": {"reference": f"Organization/{ids['Organization']}"}})
    ids["Patient"] = patient
    return app, client, ids


@pytest.mark.parametrize("rtype", PUBLIC_TYPES)
def test_the_directory_is_read_and_searched_without_a_token(directory, rtype):
    _app, client, ids = directory
    assert client.get(f"/fhir/{rtype}/{ids[rtype]}").status_code == 200
    assert client.get(f"/fhir/{rtype}/{ids[rtype]}/_history/1").status_code == 200
    assert client.head(f"/fhir/{rtype}/{ids[rtype]}").status_code == 200
    bundle = client.get(f"/fhir/{rtype}?_id={ids[rtype]}").get_json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [ids[rtype]]
    r = client.post(f"/fhir/{rtype}/_search", data=f"_id={ids[rtype]}",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.get_json()["total"] == 1


# definitions are public too (tests/conformance/test_definition_access.py)
@pytest.mark.parametrize("rtype", sorted(set(resource_types()) - set(PUBLIC_TYPES) - set(DEFINITION_TYPES)))
def test_every_other_type_needs_a_token(directory, rtype):
    _app, client, ids = directory
    for r in (client.get(f"/fhir/{rtype}"), client.get(f"/fhir/{rtype}/{ids.get(rtype, 'x')}"),
              client.get(f"/fhir/{rtype}/{ids.get(rtype, 'x')}/_history/1"),
              client.post(f"/fhir/{rtype}/_search", data="_id=x",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})):
        assert r.status_code == 401, (rtype, r.get_data(as_text=True))


@pytest.mark.parametrize("method,path", [
    ("GET", "/fhir"), ("GET", "/fhir/_history"), ("GET", "/fhir/Location/_history"),
    ("GET", "/fhir/Location/{Location}/_history"), ("GET", "/fhir/Location/{Location}/$validate"),
    ("GET", "/fhir/Location/$validate"), ("GET", "/fhir/$export"), ("POST", "/fhir/Location"),
    ("PUT", "/fhir/Location/{Location}"), ("DELETE", "/fhir/Location/{Location}"),
    ("PATCH", "/fhir/Location/{Location}"), ("POST", "/fhir"), ("GET", "/fhir/HealthcareService/{HealthcareService}/$price"),
    ("GET", "/fhir/Patient/{Patient}/Encounter"), ("GET", "/fhir/Location/{Location}/Encounter"),
])
def test_every_other_path_needs_a_token(directory, method, path):
    _app, client, ids = directory
    r = client.open(path.format(**ids), method=method, data="{}", headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 401, r.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    "Location?_revinclude=Encounter:location", "Organization?_revinclude=Encounter:service-provider",
    "Location?_has:Encounter:location:status=finished", "Organization?_has:Encounter:service-provider:status=finished",
    "Location?_revinclude:iterate=Encounter:location&_include:iterate=Encounter:subject",
    "Location?organization.name=City", "PractitionerRole?_include=PractitionerRole:practitioner",
])
def test_no_path_from_the_directory_reaches_anything_else(directory, query):
    _app, client, ids = directory
    r = client.get(f"/fhir/{query}")
    assert r.status_code in (200, 400), r.get_data(as_text=True)
    text = r.get_data(as_text=True)
    assert PRIVATE not in text and ids["Encounter"] not in text and ids["Patient"] not in text
    for e in (r.get_json() or {}).get("entry", ()):
        assert e["resource"]["resourceType"] in PUBLIC_TYPES + ("OperationOutcome",)


def test_a_token_is_judged_by_its_token(directory):
    app, client, ids = directory
    patient_token = auth(mint(app, "patient/Observation.rs", patient=ids["Patient"]))
    assert client.get(f"/fhir/Location/{ids['Location']}", headers=patient_token).status_code == 403
    assert client.get(f"/fhir/Location/{ids['Location']}", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_the_setting_turns_it_off(tmp_path):
    app = make_app(tmp_path, public_directory="off")
    assert app.test_client().get("/fhir/Location").status_code == 401
    # definitions stay public
    r = app.test_client().get("/fhir/NamingSystem?_id=uhid")
    assert r.status_code == 200 and [e["resource"]["resourceType"] for e in r.get_json()["entry"]] == ["NamingSystem"]
