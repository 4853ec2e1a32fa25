"""The UHID system a store was first started with stays its system (a changed base URL must not
make every patient UHID-less and so be issued a second one)."""
from __future__ import annotations

import pytest

from fhirserver import create_app
from fhirserver.config import Settings
from tests.conftest import FHIR_JSON, store_url


def test_the_system_is_fixed_by_the_first_start(tmp_path, backend):
    url = store_url(backend, tmp_path)
    app = create_app(Settings(store=url, base_url="http://old.test/fhir", auth="off"))
    store = app.config["MEDPORT"].store        # the same store, reopened under another base URL
    first = app.test_client()
    p = first.post("/fhir/Patient", json={"resourceType": "Patient"}, headers={"Content-Type": FHIR_JSON}).json
    [uhid] = [i for i in p["identifier"] if i["system"] == "http://old.test/fhir/sid/uhid"]
    moved = create_app(Settings(store=url, base_url="https://new.test/fhir", auth="off"), store)
    client = moved.test_client()
    assert moved.config["MEDPORT"].uhid_system == "http://old.test/fhir/sid/uhid"
    r = client.put(f"/fhir/Patient/{p['id']}", json={**p, "gender": "other"}, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200 and [i for i in r.json["identifier"] if "sid/uhid" in i["system"]] == [uhid]
    ns = client.get("/fhir/NamingSystem/uhid").json
    assert ns["uniqueId"][0]["value"] == "http://old.test/fhir/sid/uhid"
    with pytest.raises(SystemExit, match="issued under"):
        create_app(Settings(store=url, base_url="https://new.test/fhir", auth="off",
                            uhid_system="urn:other:uhid"), store)
