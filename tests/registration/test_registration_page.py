"""The /register web pages: a form with a CSRF token, the code entry (the same page for everyone),
the UHID card."""
from __future__ import annotations

import re
from html.parser import HTMLParser

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


# ---- what a newcomer sees (issue 13): landmarks, labels, required markers, errors by their fields ----

class _Page(HTMLParser):
    """Every start tag with its attributes, and the text inside each <label>, <title> and <option>."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.texts: dict[int, str] = {}         # index in tags -> the text inside that element
        self._open: list[int] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v if v is not None else "" for k, v in attrs}))
        if tag in ("label", "title", "option", "p"):
            self._open.append(len(self.tags) - 1)

    def handle_endtag(self, tag):
        if tag in ("label", "title", "option", "p") and self._open:
            self._open.pop()

    def handle_data(self, data):
        for i in self._open:
            self.texts[i] = self.texts.get(i, "") + data

    def all(self, tag: str, **attrs) -> list[tuple[int, dict]]:
        return [(i, a) for i, (t, a) in enumerate(self.tags) if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def one(self, tag: str, **attrs) -> tuple[int, dict]:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def text(self, index: int) -> str:
        return " ".join(self.texts.get(index, "").split())


REQUIRED = ("given", "family", "birthDate", "gender", "password")


def assert_accessible(page: _Page, html: str):
    assert page.one("html")[1].get("lang") == "en"
    assert page.all("main") and "Med-Port" in page.text(page.one("title")[0])
    viewport = page.one("meta", name="viewport")[1]["content"]
    assert "width=device-width" in viewport and "initial-scale=1" in viewport
    assert re.search(r"font-size:\s*16px", html) and re.search(r"min-height:\s*44px", html)
    labelled = {a["for"] for _i, a in page.all("label") if a.get("for")}
    controls = [a for t, a in page.tags if t in ("input", "select", "textarea") and a.get("type") != "hidden"]
    assert all(a.get("id") and a["id"] in labelled for a in controls), controls
    assert len({a["id"] for a in controls}) == len(controls)        # ids are unique


def field_block(html: str, name: str) -> str:
    """The <div class="field ..."> holding the control with this id: its label, hint, error and input."""
    blocks = re.findall(r'<div class="field[^"]*">.*?</div>', html, re.S)
    found = [b for b in blocks if re.search(rf'<(input|select|textarea)[^>]* id="{name}"', b)]
    assert len(found) == 1, (name, found)
    return found[0]


def test_the_form_is_accessible_and_marks_what_is_required(client):
    html = client.get("/register").get_data(as_text=True)
    page = _Page(html)
    assert_accessible(page, html)
    for name in REQUIRED:
        tag = "select" if name == "gender" else "input"
        attrs = page.one(tag, id=name)[1]
        assert "required" in attrs and attrs.get("aria-required") == "true", name
        label = page.one("label", **{"for": name})[0]
        assert page.text(label).endswith("*"), page.text(label)      # the visible marker
    for optional in ("uhid", "claimCode", "emergencyContactName", "allergies"):
        assert "required" not in page.one("textarea" if optional == "allergies" else "input", id=optional)[1]
    # the phone-or-email rule is stated before the phone field, not only after a refused submit
    assert html.index("mobile phone number or\nan email address") < html.index('id="phone"')
    assert page.one("input", id="phone")[1]["type"] == "tel" and page.one("input", id="email")[1]["type"] == "email"
    # no gender chosen for the person: an empty first option, display names rather than codes
    options = page.all("option")
    assert options[0][1]["value"] == "" and page.text(options[0][0]).startswith("Choose")
    assert ["selected" in a for _i, a in options] == [True] + [False] * (len(options) - 1)
    assert [page.text(i) for i, _a in options[1:]] == ["Female", "Male", "Other", "Unknown"]
    assert [a["value"] for _i, a in options[1:]] == ["female", "male", "other", "unknown"]


def test_an_empty_form_gets_each_problem_next_to_its_field_in_plain_words(client):
    r = client.post("/register", data={"csrf": open_form(client)})
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert_accessible(_Page(html), html)
    expected = {"given": "Enter your given name", "family": "Enter your family name",
                "birthDate": "Enter your date of birth", "gender": "Choose your gender",
                "password": "Choose a password of 8 to 200 characters"}
    for name, words in expected.items():
        block = field_block(html, name)
        assert words in block and f'id="{name}-error"' in block, (name, block)
        assert block.index(words) < block.index(f'id="{name}"')          # read before the input
        control = re.search(rf'<(?:input|select)[^>]* id="{name}"[^>]*>', block).group(0)
        assert 'aria-invalid="true"' in control and f"{name}-error" in control
    contact = re.search(r"<fieldset[^>]*>\s*<legend>How we reach you.*?</fieldset>", html, re.S).group(0)
    assert "Enter a mobile phone number or an email address" in contact and 'id="phone"' in contact
    for api_words in ("given is required", "birthDate is required", "password must be"):
        assert api_words not in html                                      # not the API's field names
    assert 'aria-invalid' not in field_block(html, "uhid")
    assert "Some details need changing" in html and html.count('role="alert"') == 1   # one short alert, no list


def test_a_bad_field_keeps_the_others_and_says_what_to_type(client):
    r = client.post("/register", data={**FORM, "csrf": open_form(client), "birthDate": "02/04/1950",
                                       "email": "asha at example", "gender": "male"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "Enter your date of birth as day, month and year" in field_block(html, "birthDate")
    assert "Enter an email address" in field_block(html, "email")
    assert 'value="Asha"' in field_block(html, "given") and "aria-invalid" not in field_block(html, "given")
    assert re.search(r'<option value="male" selected>Male</option>', html)
    assert "enter your password again" in html                            # passwords are never sent back
    future = client.post("/register", data={**FORM, "csrf": open_form(client), "birthDate": "2999-01-01"})
    assert "cannot be in the future" in field_block(future.get_data(as_text=True), "birthDate")


def test_the_confirm_page_shows_a_wrong_code_by_its_field(client):
    token = confirm_form(client, client.post("/register", data={**FORM, "csrf": open_form(client)}))
    r = client.post("/register/confirm", data={"csrf": token, "code": "AAAA-AAAA-AA"})
    html = r.get_data(as_text=True)
    page = _Page(html)
    assert r.status_code == 404
    assert_accessible(page, html)
    block = field_block(html, "code")
    assert "unknown, used or expired" in block and 'aria-invalid="true"' in block
    assert "required" in page.one("input", id="code")[1]


def test_the_card_page_keeps_the_uhid_whole_and_says_what_to_do_next(client):
    token = confirm_form(client, client.post("/register", data={**FORM, "csrf": open_form(client)}))
    code = code_in(messages_to(client, ASHA["phone"])[-1])
    r = client.post("/register/confirm", data={"csrf": token, "code": code})
    html = r.get_data(as_text=True)
    page = _Page(html)
    assert r.status_code == 201
    assert_accessible(page, html)
    uhid_class = page.one("p", **{"class": "uhid"})[0]
    assert re.fullmatch(r"\d\d-\d{4}-\d{4}-\d{4}", page.text(uhid_class))
    assert re.search(r"\.uhid\s*\{[^}]*white-space:\s*nowrap", html)
    links = {a.get("href", "")[:40]: a for _i, a in page.all("a")}
    assert "/auth/login" in links                                          # sign in
    assert any(h.startswith("data:application/smart-health-card") and "download" in a for h, a in links.items())
    assert "Print this page" in html and "@media print" in html
