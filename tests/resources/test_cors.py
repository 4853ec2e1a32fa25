"""Browser SMART apps can call the API: CORS on every /fhir response and on preflights."""
from __future__ import annotations


def test_preflight_and_responses_allow_any_origin(client):
    r = client.open("/fhir/Patient", method="OPTIONS",
                    headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    r = client.get("/fhir/metadata")
    assert r.headers["Access-Control-Allow-Origin"] == "*" and "ETag" in r.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in r.headers      # bearer tokens, never cookies
