"""What the fuzzers found, kept as regression tests: each was a 500 and is now a clear 400."""
from __future__ import annotations

import json

FHIR_JSON = "application/fhir+json"


def _entry_status(response) -> str:
    body = response.get_json()
    return str(response.status_code) if body["resourceType"] == "OperationOutcome" \
        else body["entry"][0]["response"]["status"]


def test_an_entry_if_match_that_is_not_a_string_is_a_400(server):
    """Was: AttributeError in interactions/common.py if_match_version (header.strip())."""
    b = {"resourceType": "Bundle", "type": "batch",
         "entry": [{"request": {"method": "GET", "url": "Patient/asha", "ifMatch": 1}}]}
    r = server.request("POST", "/fhir/", body=json.dumps(b).encode(), content_type=FHIR_JSON)
    assert _entry_status(r).startswith("400")


def test_an_entry_full_url_that_is_not_a_string_is_a_400(server):
    """Was: TypeError unhashable type in bundle_entries.py _no_duplicate_full_urls."""
    b = {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"fullUrl": ["urn:uuid:1"], "request": {"method": "GET", "url": "Patient/asha"}}]}
    r = server.request("POST", "/fhir/", body=json.dumps(b).encode(), content_type=FHIR_JSON)
    assert r.status_code == 400 and "fullUrl must be a string" in r.get_data(as_text=True)
