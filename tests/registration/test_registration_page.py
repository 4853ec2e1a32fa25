"""The /register web pages: a form with a CSRF token, the code entry (the same page for everyone),
the UHID card."""
from __future__ import annotations

import re

from tests.registration.test_registration_api import ASHA, code_in, messages_to

FORM = {k: v for k, v in ASHA.items() if isinstance(v, str)} | {"allergies": "Penicillin\nSulfa"}


def open_form(client) -> str:
    r = client.get("/register")
    assert r.status_code == 200 and r.headers["X-Frame-Options"] == "DENY" and "script-src" not in r.headers[
        "Content-Security-Policy"]
    return re.search(r'name="csrf" value="([^"]+)"', r.get_data(as_text=True)).group(1)


def confirm_form(client, r) -> str:
    assert r.status_code == 200 and 'action="/register/confirm"' in r.get_data(as_text=True), r.get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', r.get_data(as_text=True)).group(1)


def test_register_through_the_page(client):
    assert 'name="username"' not in client.get("/register").get_data(as_text=True)   # assigned by the server
    token = open_form(client)
    r = client.post("/register", data={**FORM, "csrf": token})
    token = confirm_form(client, r)
    code = code_in(messages_to(client, ASHA["phone"])[-1])
    r = client.post("/register/confirm", data={"csrf": token, "code": code})
    page = r.get_data(as_text=True)
    assert r.status_code == 201, page
    uhid = re.search(r"<strong>(\d\d-\d{4}-\d{4}-\d{4})</strong>", page).group(1)
    assert 'src="data:image/png;base64,' in page and "asha-" in page
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


def test_the_page_answers_alike_for_a_registered_person(client):
    first = client.post("/register", data={**FORM, "csrf": open_form(client)})
    code = code_in(messages_to(client, ASHA["phone"])[-1])
    assert client.post("/register/confirm", data={"csrf": confirm_form(client, first), "code": code}).status_code == 201
    again = client.post("/register", data={**FORM, "csrf": open_form(client)})
    assert again.status_code == first.status_code == 200
    strip = lambda r: re.sub(r'value="[^"]+"', "", r.get_data(as_text=True))      # noqa: E731 - the CSRF token
    assert strip(again) == strip(first) and "already exists" in messages_to(client, ASHA["phone"])[-1]
    r = client.post("/register/confirm", data={"csrf": confirm_form(client, again), "code": "AAAA-AAAA-AA"})
    assert r.status_code == 404 and "unknown, used or expired" in r.get_data(as_text=True)
    r = client.post("/register", data={**FORM, "csrf": open_form(client), "confirmNewIdentity": "yes"})
    code = code_in(messages_to(client, ASHA["phone"])[-1])
    assert client.post("/register/confirm", data={"csrf": confirm_form(client, r), "code": code}).status_code == 201
    assert client.get("/fhir/Patient").json["total"] == 2


def test_field_problems_are_shown_and_markup_is_escaped(client):
    r = client.post("/register", data={**FORM, "csrf": open_form(client), "given": "<script>x</script>",
                                       "birthDate": "1950-13-40"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "birthDate" in page and "<script>x" not in page and "&lt;script&gt;" in page
