"""RFC 6749 5.2: a failed client authentication is 401 invalid_client with a WWW-Authenticate
challenge of the scheme the client used (HTTP Basic: the only one), which carries its realm
(RFC 7617 2: "The realm authentication parameter is REQUIRED"), at the token, introspection and
revocation endpoints alike, as JSON with Cache-Control: no-store and Pragma: no-cache.

Found: authlib's challenge `Basic error="invalid_client", error_description="..."` had no realm.
"""
from __future__ import annotations

import pytest

from tests.smart_auth.test_oauth_helpers import basic, make_world


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    return make_world(tmp_path, monkeypatch, backend)


def test_every_invalid_client_answer_carries_a_basic_challenge_with_a_realm(world):
    client, _secret = world.app_client(type="confidential-symmetric")
    wrong = basic(client.client_id, "wrong")
    answers = [
        world.http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs"}, headers=wrong),
        world.http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client.client_id,
                                             "client_secret": "wrong"}),
        world.http.post("/auth/token", data={"grant_type": "authorization_code", "client_id": "nobody"}),
        world.http.post("/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !"}),
        world.http.post("/auth/introspect", data={"token": "x"}, headers=wrong),
        world.http.post("/auth/revoke", data={"token": "x"}, headers=wrong),
    ]
    for r in answers:
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client", r.get_data(as_text=True)
        assert r.headers["WWW-Authenticate"] == 'Basic realm="token", error="invalid_client"'
        assert r.mimetype == "application/json"
        assert r.headers["Cache-Control"] == "no-store" and r.headers["Pragma"] == "no-cache"


@pytest.mark.parametrize("credentials", ["é", "\u202e", "Zm9v\u00e9", "!!", "Zm9v"])
def test_malformed_basic_credentials_are_an_invalid_client(world, credentials):
    """Found: a non-ASCII character in the Basic credentials (a header byte >= 0x80) was a 500: base64
    raised ValueError, not the binascii.Error that was caught."""
    for path in ("/auth/token", "/auth/introspect", "/auth/revoke"):
        r = world.http.post(path, data={"grant_type": "client_credentials", "token": "x"},
                            headers={"Authorization": f"Basic {credentials}"})
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client", (path, r.get_data(as_text=True))
        assert r.headers["WWW-Authenticate"] == 'Basic realm="token", error="invalid_client"'
