"""The /register web page: a form with a CSRF token, the duplicate choice, the UHID card."""
from __future__ import annotations

import re

from tests.registration.test_registration_api import ASHA

FORM = {k: v for k, v in ASHA.items() if isinstance(v, str)} | {"allergies": "Penicillin\nSulfa"}


def open_form(client) -> str:
    r = client.get("/register")
    assert r.status_code == 200 and r.headers["X-Frame-Options"] == "DENY" and "script-src" not in r.headers[
        "Content-Security-Policy"]
    return re.search(r'name="csrf" value="([^"]+)"', r.get_data(as_text=True)).group(1)


def test_register_through_the_page(client):
    token = open_form(client)
    r = client.post("/register", data={**FORM, "csrf": token})
    page = r.get_data(as_text=True)
    assert r.status_code == 201, page
    uhid = re.search(r"<strong>(\d\d-\d{4}-\d{4}-\d{4})</strong>", page).group(1)
    assert 'src="data:image/png;base64,' in page and "Asha Sharma, born 1950-04-02" in page
    assert client.get("/fhir/Patient", query_string={"identifier": uhid.replace("-", "")}).json["total"] == 0
    found = client.get("/fhir/Patient", query_string={"identifier": uhid}).json
    assert found["total"] == 1
    pid = found["entry"][0]["resource"]["id"]
    assert client.get("/fhir/AllergyIntolerance", query_string={"patient": pid}).json["total"] == 2


def test_a_post_without_the_forms_token_is_refused(client):
    open_form(client)
    r = client.post("/register", data={**FORM, "csrf": "forged"})
    assert r.status_code == 400 and "expired" in r.get_data(as_text=True)
    client.delete_cookie("medport_register", path="/register")
    r = client.post("/register", data={**FORM, "csrf": ""})
    assert r.status_code == 400
    assert client.get("/fhir/Patient").json["total"] == 0


def test_the_page_offers_the_choice_for_a_possible_duplicate(client):
    assert client.post("/register", data={**FORM, "csrf": open_form(client)}).status_code == 201
    again = {**FORM, "username": "asha-2"}
    r = client.post("/register", data={**again, "csrf": open_form(client)})
    page = r.get_data(as_text=True)
    assert r.status_code == 409 and "already registered" in page and 'name="confirmNewIdentity"' in page
    assert 'value="Sharma"' in page            # what was typed stays in the form
    r = client.post("/register", data={**again, "csrf": open_form(client), "confirmNewIdentity": "yes"})
    assert r.status_code == 201


def test_field_problems_are_shown_and_markup_is_escaped(client):
    r = client.post("/register", data={**FORM, "csrf": open_form(client), "given": "<script>x</script>",
                                       "birthDate": "1950-13-40"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "birthDate" in page and "<script>x" not in page and "&lt;script&gt;" in page
