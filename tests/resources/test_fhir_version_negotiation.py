"""The fhirVersion parameter of the FHIR media types (http://hl7.org/fhir/R4/versioning.html#mt-version,
http.html#mime-type): this server speaks R4 (4.0) only. Accept naming another version alone is a 406; a
body declared as another version is a 415 and nothing is stored; 4.0 and 4.0.1 are R4."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, data_versions, patient, post


@pytest.mark.parametrize("accept, status, media", [
    (f"{FHIR_JSON}; fhirVersion=4.0", 200, FHIR_JSON),
    (f"{FHIR_JSON}; fhirVersion=4.0.1", 200, FHIR_JSON),
    (f"{FHIR_JSON}; fhirVersion=3.0", 406, None),
    (f"{FHIR_JSON}; fhirVersion=5.0", 406, None),
    (f"{FHIR_JSON}; fhirVersion=3.0, application/json;q=0.5", 200, "application/json"),
    (f"{FHIR_JSON}; fhirVersion=3.0, */*;q=0.1", 200, FHIR_JSON),
])
def test_accept_with_a_fhir_version(client, accept, status, media):
    pid = post(client, patient()).json["id"]
    r = client.get(f"/fhir/Patient/{pid}", headers={"Accept": accept})
    assert r.status_code == status, r.data[:300]
    if media:
        assert r.headers["Content-Type"].startswith(media)
    else:
        assert r.json["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("version, status", [("4.0", 201), ("4.0.1", 201), ("3.0", 415), ("1.0.2", 415)])
def test_a_body_of_another_fhir_version_is_415(client, ctx, version, status):
    before = data_versions(ctx)
    r = client.post("/fhir/Patient", json=patient(), headers={"Content-Type": f"{FHIR_JSON}; fhirVersion={version}"})
    assert r.status_code == status, r.data[:300]
    if status == 415:
        assert r.json["resourceType"] == "OperationOutcome" and data_versions(ctx) == before
