"""Security issue 12, finding 8: disabling a client or a user ends every token of theirs wherever a
token is accepted (the FHIR API, /auth/introspect, /auth/launch, the refresh_token grant), through
the one check in token verification (smart_auth/standing.py), on every store."""
from __future__ import annotations

import base64

import pytest

from fhirserver.smart_auth import standing
from fhirserver.storage import open_store
from tests.smart_auth.test_oauth_helpers import full_flow, make_world


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend=backend, auth="on")
    w.asha = w.patient("Sharma", "Asha")
    w.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{w.asha}")
    w.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    w.rs, secret = w.app_client(type="confidential-symmetric")
    w.rs_auth = {"Authorization": "Basic " + base64.b64encode(f"{w.rs.client_id}:{secret}".encode()).decode()}
    return w


def _introspect(world, token):
    return world.http.post("/auth/introspect", data={"token": token}, headers=world.rs_auth).get_json()


def _fhir(world, token):
    return world.http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}).status_code


def _launch(world, token):
    return world.http.post("/auth/launch", json={"patient": world.asha},
                           headers={"Authorization": f"Bearer {token}"}).status_code


def _refresh(world, client_id, token):
    return world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                "client_id": client_id})


def test_a_disabled_clients_tokens_stop_everywhere(world):
    app, _ = world.app_client()
    body = full_flow(world, app.client_id, "drwho", "user/*.rs offline_access")
    access, refresh = body["access_token"], body["refresh_token"]
    assert _fhir(world, access) == 200 and _launch(world, access) == 200
    assert _introspect(world, access)["active"] is True and _introspect(world, refresh)["active"] is True
    assert world.clients.disable(app.client_id)
    assert _fhir(world, access) == 401 and _launch(world, access) == 401
    assert _introspect(world, access) == {"active": False} and _introspect(world, refresh) == {"active": False}
    r = world.http.post("/auth/introspect", data={"token": access}, headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 401                     # nor does the token authenticate a caller any more
    # a disabled client is invalid_client (this server) or its grant invalid_grant: RFC 6749 5.2 lets a
    # client that did not authenticate by the Authorization header have either 400 or 401
    assert _refresh(world, app.client_id, refresh).status_code in (400, 401)


def test_a_disabled_users_tokens_stop_everywhere(world):
    app, _ = world.app_client()
    body = full_flow(world, app.client_id, "drwho", "user/*.rs offline_access")
    access, refresh = body["access_token"], body["refresh_token"]
    assert _launch(world, access) == 200 and _introspect(world, access)["active"] is True
    assert world.users.disable("drwho")
    assert _fhir(world, access) == 401 and _launch(world, access) == 401
    assert _introspect(world, access) == {"active": False} and _introspect(world, refresh) == {"active": False}
    r = _refresh(world, app.client_id, refresh)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_a_code_of_a_user_disabled_after_consent_gives_no_token(world):
    from tests.smart_auth.test_oauth_helpers import get_code, redeem
    app, _ = world.app_client()
    code, verifier, _q = get_code(world, app.client_id, "drwho", "user/*.rs")
    world.users.disable("drwho")
    r = redeem(world, app.client_id, code, verifier)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_a_disable_made_by_another_process_is_seen_within_the_cache_bound(world, monkeypatch):
    """`medport client disable` runs in another process: this worker's remembered standing lasts at
    most STANDING_TTL_S (the clock is moved on instead of waiting)."""
    app, _ = world.app_client()
    access = full_flow(world, app.client_id, "drwho", "user/*.rs")["access_token"]
    assert _fhir(world, access) == 200
    record = world.store.get_record("client", app.client_id)
    world.store.put_record("client", app.client_id, {**record, "disabled": True})     # as the CLI does it
    clock = standing.time.monotonic() + standing.STANDING_TTL_S + 0.01
    monkeypatch.setattr(standing.time, "monotonic", lambda: clock)
    assert _fhir(world, access) == 401 and _introspect(world, access) == {"active": False}


def test_on_sqlite_a_disable_made_by_another_process_applies_at_once(tmp_path, monkeypatch):
    """On SQLite a worker keeps a standing only while the store's commit stamp is unchanged (any commit
    by any process changes it: storage/sqlite_read_cache.py): the CLI's disable, made through a store
    of its own, stops the token at the next request, without waiting for STANDING_TTL_S."""
    world = make_world(tmp_path, monkeypatch, backend="sqlite", auth="on")
    world.users.add("drwho", "correct horse battery", "practitioner", fhir_user="Practitioner/9")
    app, _ = world.app_client()
    access = full_flow(world, app.client_id, "drwho", "user/*.rs")["access_token"]
    assert world.store.commit_stamp() is not None
    assert _fhir(world, access) == 200 and _fhir(world, access) == 200
    cli = open_store(world.ctx.settings)
    try:
        record = cli.get_record("client", app.client_id)
        cli.put_record("client", app.client_id, {**record, "disabled": True})
    finally:
        cli.close()
    assert _fhir(world, access) == 401
