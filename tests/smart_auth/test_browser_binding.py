"""Security issue 12, finding 16: a pending authorization request continues only in the browser that
started it (RFC 9700 4.2.4/4.5), so a victim sent a link to an attacker's pending request gives the
attacker no code; and the consent form needs the session's CSRF token. On every store."""
from __future__ import annotations

import pytest

from fhirserver.smart_auth import sessions
from tests.smart_auth.test_oauth_helpers import (
    authorize_params,
    begin,
    consent_page,
    csrf,
    decide,
    login,
    make_world,
    pkce,
    query,
    start,
)

SCOPE = "launch/patient patient/*.rs"


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend=backend)
    w.asha = w.patient("Sharma", "Asha")
    w.users.add("asha", "correct horse battery", "patient", fhir_user=f"Patient/{w.asha}")
    w.users.add("mallory", "correct horse battery", "practitioner", fhir_user="Practitioner/6")
    w.client, _ = w.app_client()
    return w


def _signed_in_victim(world):
    """Asha's browser, signed in (through a request of her own, which she leaves pending)."""
    http, own = begin(world, world.client.client_id, SCOPE)
    assert login(http, own, "asha").status_code == 303
    return http


def test_authorize_sets_a_binding_cookie(world):
    _v, challenge = pkce()
    r = start(world.browser(), authorize_params(world.client.client_id, challenge, SCOPE))
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(sessions.BINDING_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/auth" in cookie
    pending = world.store.get_record(sessions.REQUEST_KIND, query(r.headers["Location"])["request"])
    assert len(pending["browser"]) == 64 and cookie.split(";")[0].split("=", 1)[1] not in str(pending)


def test_a_link_to_someone_elses_pending_request_issues_no_code(world):
    _attacker, request_id = begin(world, world.client.client_id, SCOPE)      # the attacker's PKCE
    victim = _signed_in_victim(world)
    for r in (victim.get(f"/auth/login?request={request_id}"), consent_page(victim, request_id),
              consent_page(victim, request_id, patient_search="sharma")):
        assert r.status_code == 403 and "another browser" in r.get_data(as_text=True)
        assert "Location" not in r.headers
    # the victim's own valid CSRF token does not help: the POST is refused and no code is issued
    own_page = victim.get("/auth/login").get_data(as_text=True)
    r = victim.post("/auth/consent", data={"csrf": csrf(own_page), "request": request_id, "decision": "approve",
                                           "scope": SCOPE.split()})
    assert r.status_code == 403 and "Location" not in r.headers
    r = victim.post("/auth/login", data={"csrf": csrf(own_page), "request": request_id, "username": "asha",
                                         "password": "correct horse battery"})
    assert r.status_code == 403 and "Location" not in r.headers
    assert world.store.list_records("code") == []
    assert world.store.get_record(sessions.REQUEST_KIND, request_id) is not None    # untouched


def test_the_browser_that_started_it_completes_it_even_with_several_pending(world):
    http, first = begin(world, world.client.client_id, SCOPE)
    _v, challenge = pkce()
    second = query(start(http, authorize_params(world.client.client_id, challenge, SCOPE)).headers["Location"])[
        "request"]
    assert login(http, second, "asha").status_code == 303
    for request_id in (first, second):
        r = decide(http, request_id)
        assert r.status_code == 302 and query(r.headers["Location"])["code"]


def test_the_consent_form_needs_the_sessions_csrf_token(world):
    http, request_id = begin(world, world.client.client_id, SCOPE)
    login(http, request_id, "asha")
    for forged in ("", "forged"):
        r = http.post("/auth/consent", data={"csrf": forged, "request": request_id, "decision": "approve",
                                             "scope": SCOPE.split()})
        assert r.status_code == 403 and "Location" not in r.headers
    assert world.store.list_records("code") == []
