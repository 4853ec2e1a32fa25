"""The consent page as a browser drives it: the patient picker's search round-trips keep what the
user unticked, and the code carries only the ticked scopes. On every store."""
from __future__ import annotations

import pytest

from tests.smart_auth._browser_form import checked, offered, submit
from tests.smart_auth.test_oauth_helpers import (
    PASSWORD,
    REDIRECT,
    authorize_params,
    consent_page,
    login,
    make_world,
    pkce,
    query,
    start,
)

SCOPE = "openid fhirUser launch/patient patient/*.rs offline_access"


@pytest.fixture
def world(tmp_path, monkeypatch, backend):
    w = make_world(tmp_path, monkeypatch, backend=backend)
    w.asha = w.patient("Sharma", "Asha")
    w.ravi = w.patient("Rao", "Ravi")
    w.users.add("drwho", PASSWORD, "practitioner", fhir_user="Practitioner/9")
    return w


def _signed_in(world, scope=SCOPE):
    client, _ = world.app_client()
    verifier, challenge = pkce()
    http = world.browser()
    r = start(http, authorize_params(client.client_id, challenge, scope))
    request_id = query(r.headers["Location"])["request"]
    assert login(http, request_id, "drwho").status_code == 303
    return client, http, request_id, verifier


def _token(world, client, location, verifier):
    assert location.startswith(REDIRECT), location
    return world.http.post("/auth/token", data={"grant_type": "authorization_code", "code": query(location)["code"],
                                                "redirect_uri": REDIRECT, "client_id": client.client_id,
                                                "code_verifier": verifier}).get_json()


def test_unticked_scope_stays_unticked_across_patient_searches(world):
    client, http, request_id, verifier = _signed_in(world)
    page = consent_page(http, request_id).get_data(as_text=True)
    assert set(checked(page, "scope")) == set(SCOPE.split())          # first shown: all ticked
    # the doctor unticks offline_access, then searches for the patient (twice)
    r = submit(http, page, ("decision", "search"), untick={"offline_access"}, fill={"patient_search": "rao"})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "offline_access" not in checked(page, "scope") and "offline_access" in offered(page, "scope")
    assert set(checked(page, "scope")) == set(SCOPE.split()) - {"offline_access"}
    assert world.ravi in offered(page, "patient") and world.asha not in offered(page, "patient")
    page = submit(http, page, ("decision", "search"), fill={"patient_search": "sharma"}).get_data(as_text=True)
    assert "offline_access" not in checked(page, "scope") and world.asha in offered(page, "patient")
    # allowing without a patient re-asks, still without offline_access
    r = submit(http, page, ("decision", "approve"))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "offline_access" not in checked(page, "scope")
    page = submit(http, page, ("decision", "search"), fill={"patient_search": "sharma"}).get_data(as_text=True)
    r = submit(http, page, ("decision", "approve"), choose={"patient": world.asha})
    assert r.status_code == 302, r.get_data(as_text=True)
    body = _token(world, client, r.headers["Location"], verifier)
    assert "offline_access" not in body["scope"].split() and "refresh_token" not in body
    assert set(body["scope"].split()) == {"openid", "fhirUser", "launch/patient", "patient/*.rs"}
    assert body["patient"] == world.asha


def test_search_is_csrf_checked_and_decides_nothing(world):
    _client, http, request_id, _verifier = _signed_in(world)
    forged = http.post("/auth/consent", data={"request": request_id, "decision": "search", "patient_search": "x",
                                              "csrf": "wrong"})
    assert forged.status_code == 403
    page = consent_page(http, request_id).get_data(as_text=True)
    r = submit(http, page, ("decision", "search"), fill={"patient_search": "sharma"})
    assert r.status_code == 200 and consent_page(http, request_id).status_code == 200     # still pending
