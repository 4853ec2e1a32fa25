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
    assert "Expires" in r.headers["Access-Control-Expose-Headers"]     # a bulk manifest's (export.html)
    assert "Access-Control-Allow-Credentials" not in r.headers      # bearer tokens, never cookies


def test_a_browser_app_may_read_the_challenge_of_a_refusal(client):
    """RFC 6750 3: a refusal's reason is in WWW-Authenticate, which a browser hides from the app unless
    it is exposed (the Fetch standard's CORS-safelisted response headers do not include it)."""
    for path in ("/fhir/Patient", "/auth/token", "/auth/introspect", "/auth/revoke"):
        r = client.post(path, headers={"Origin": "https://app.example"})
        exposed = [h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")]
        assert "www-authenticate" in exposed, path
