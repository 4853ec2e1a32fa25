"""The sign-in, consent and patient picker pages as a newcomer meets them: Med-Port named on every
page, a <main> landmark, a picker that finds full names and UHIDs in any typed form and shows each
candidate's UHID, the chosen patient by name, errors beside the picker, a sign-out link. On every
store."""
from __future__ import annotations

import json
import re

import pytest

from fhirserver.uhid import identifier
from tests.smart_auth._browser_form import checked, offered, submit
from tests.smart_auth.test_oauth_helpers import (
    PASSWORD,
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
    w.other_asha = w.patient("Rao", "Asha")
    w.users.add("drwho", PASSWORD, "practitioner", fhir_user="Practitioner/9")
    w.users.add("asha", PASSWORD, "patient", fhir_user=f"Patient/{w.asha}")
    body = json.loads(w.store.read("Patient", w.asha).body)
    w.uhid = identifier.value_of(body, w.ctx.uhid_system)
    assert re.fullmatch(r"\d\d-\d{4}-\d{4}-\d{4}", w.uhid)
    return w


def _pending(world, username="drwho", scope=SCOPE):
    client, _ = world.app_client()
    _verifier, challenge = pkce()
    http = world.browser()
    r = start(http, authorize_params(client.client_id, challenge, scope))
    request_id = query(r.headers["Location"])["request"]
    return http, request_id, login(http, request_id, username)


def _search(http, request_id, text):
    page = consent_page(http, request_id).get_data(as_text=True)
    return submit(http, page, ("decision", "search"), fill={"patient_search": text})


def _landmarked(html):
    assert html.count("<main") == 1 and html.count("</main>") == 1, html
    assert "Med-Port" in html and "Med-Port" in re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_every_page_names_med_port_and_has_a_main_landmark(world):
    http, request_id, r = _pending(world)
    _landmarked(world.browser().get("/auth/login").get_data(as_text=True))
    bad = world.browser().post("/auth/login", data={"username": "x", "password": "y", "csrf": "z"})
    _landmarked(bad.get_data(as_text=True))
    _landmarked(consent_page(http, request_id).get_data(as_text=True))
    _landmarked(_search(http, request_id, "sharma").get_data(as_text=True))
    _landmarked(world.browser().get("/auth/consent?request=nope").get_data(as_text=True))        # error page
    _landmarked(world.browser().get("/auth/authorize?client_id=nobody").get_data(as_text=True))   # error page
    _landmarked(http.get("/auth/logout").get_data(as_text=True))
    _landmarked(world.browser().get("/auth/logout").get_data(as_text=True))                       # message


@pytest.mark.parametrize("text", ["Asha Sharma", "asha sharma", "Sharma Asha", "  sharma  "])
def test_picker_finds_full_names(world, text):
    http, request_id, _r = _pending(world)
    page = _search(http, request_id, text).get_data(as_text=True)
    assert offered(page, "patient") == [world.asha]


def test_picker_finds_uhids_in_any_typed_form_and_shows_them(world):
    http, request_id, _r = _pending(world)
    digits = world.uhid.replace("-", "")
    spaced = " ".join([digits[:2], digits[2:6], digits[6:10], digits[10:]])
    for text in (world.uhid, digits, spaced, f" {world.uhid} "):
        page = _search(http, request_id, text).get_data(as_text=True)
        assert offered(page, "patient") == [world.asha], text
        assert f"UHID {world.uhid}" in page and "Asha Sharma" in page
    page = _search(http, request_id, "asha").get_data(as_text=True)        # every candidate shows its UHID
    assert set(offered(page, "patient")) == {world.asha, world.other_asha}
    assert page.count("UHID ") >= 2


def test_picker_errors_appear_next_to_the_picker(world):
    http, request_id, _r = _pending(world)
    wrong = world.uhid[:-1] + str((int(world.uhid[-1]) + 1) % 10)       # a mistyped check digit
    for text, words in ((wrong, "check digit"), ("12-34", "14"), ("Nobody Known", "No patient matches")):
        page = _search(http, request_id, text).get_data(as_text=True)
        picker = page[page.index("<legend>Patient</legend>"):page.index("<legend>Permissions")]
        assert words in picker and 'role="alert"' in picker, text
    page = consent_page(http, request_id).get_data(as_text=True)
    r = submit(http, page, ("decision", "approve"))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    picker = page[page.index("<legend>Patient</legend>"):page.index("<legend>Permissions")]
    assert "Choose a patient" in picker


def test_chosen_patient_is_shown_by_name_across_searches(world):
    http, request_id, _r = _pending(world)
    page = _search(http, request_id, "sharma").get_data(as_text=True)
    page = submit(http, page, ("decision", "search"), choose={"patient": world.asha},
                  fill={"patient_search": "rao"}).get_data(as_text=True)
    assert checked(page, "patient") == [world.asha] and world.ravi in offered(page, "patient")
    assert re.search(r"Chosen: <strong>Asha Sharma</strong>", page)
    assert f"Patient/{world.asha}" not in page


def test_patient_user_sees_their_own_name_not_an_id(world):
    http, request_id, _r = _pending(world, "asha", "launch/patient patient/*.rs")
    page = consent_page(http, request_id).get_data(as_text=True)
    assert "Patient: <strong>Asha Sharma (UHID " in page and f"Patient/{world.asha}" not in page


def test_sign_out_link_returns_to_sign_in_for_the_same_request(world):
    http, request_id, _r = _pending(world)
    page = consent_page(http, request_id).get_data(as_text=True)
    link = re.search(r'<a href="(/auth/logout[^"]*)">Sign out</a>', page).group(1)
    confirm = http.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert checked(confirm, "request") == [] and f'value="{request_id}"' in confirm
    r = http.post(
        "/auth/logout", data={"csrf": re.search(r'name="csrf" value="([^"]+)"', confirm).group(1),
                              "request": request_id})
    assert r.status_code == 303 and r.headers["Location"] == f"/auth/login?request={request_id}"
    assert consent_page(http, request_id).status_code == 303          # signed out: back to sign-in
