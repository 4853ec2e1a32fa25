"""SMART on FHIR end to end, over HTTP against a real `medport serve --demo` process, driven by real
client libraries: authlib's OAuth2Session (standalone patient launch, EHR practitioner launch,
refresh, introspection, revocation), private_key_jwt backend services, and the `fhirclient` package.

The browser part (login and consent pages) is a small form filler over requests: it submits the
forms the server renders, as a user would, and stops at the redirect to the app.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from ._server import MEDPORT

REDIRECT = "http://localhost:9000/callback"      # the demo app's registered redirect (nothing listens)


@pytest.fixture(scope="module")
def demo(module_server_factory, tmp_path_factory):
    folder = tmp_path_factory.mktemp("smart-demo")
    server = module_server_factory(str(folder / "store.db"), auth="on", demo=True)
    with open(folder / "demo-credentials.json") as f:
        creds = json.load(f)
    return server, creds


class _Forms(HTMLParser):
    """The forms of a page: action, method and their fields (name, value, type, checked)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(), "fields": []})
        elif tag in ("input", "button") and self.forms and a.get("name"):
            self.forms[-1]["fields"].append((a["name"], a.get("value", ""), a.get("type", tag), "checked" in a))


class Browser:
    """A user at a browser: follows redirects, fills the login form, answers the consent page."""

    def __init__(self, root: str):
        self.root = root
        self.http = requests.Session()

    def open(self, url: str, method: str = "GET", data=None) -> requests.Response:
        for _ in range(10):
            r = self.http.request(method, urljoin(self.root, url), data=data, allow_redirects=False, timeout=30)
            location = r.headers.get("Location")
            if r.status_code not in (301, 302, 303) or location.startswith(REDIRECT):
                return r
            url, method, data = urljoin(r.url, location), "GET", None
        raise AssertionError("redirect loop")

    def submit(self, page: requests.Response, values: dict, skip_unchecked: set = frozenset(),
               button: str = "approve") -> requests.Response:
        parser = _Forms()
        parser.feed(page.text)
        form = next(f for f in parser.forms if f["method"] == "post")
        data = []
        for name, value, kind, checked in form["fields"]:
            if kind == "checkbox":
                if checked and value not in skip_unchecked:
                    data.append((name, value))
            elif kind == "radio":
                if name not in values and not any(n == name for n, _ in data):
                    data.append((name, value))          # the first choice
            elif kind in ("submit", "button"):
                if value == button:
                    data.append((name, value))
            elif name not in values:
                data.append((name, value))
        data += list(values.items())
        return self.open(urljoin(page.url, form["action"] or page.url), "POST", data)

    def authorize(self, url: str, username: str, password: str, untick: set = frozenset(), **choices) -> str:
        """The app's redirect URL (with code or error) after logging in and consenting."""
        page = self.open(url)
        if 'type="password"' in page.text:
            page = self.submit(page, {"username": username, "password": password})
        if page.status_code == 200:                  # the consent page
            page = self.submit(page, choices, skip_unchecked=untick)
        # RFC 6749 4.1.2 redirects the user agent but fixes no status: 302 and 303 are both redirects
        assert page.status_code in (302, 303) and page.headers["Location"].startswith(REDIRECT), page.text[:500]
        return page.headers["Location"]


def _app_session(server, creds, scope: str, **kw) -> tuple[OAuth2Session, str, str]:
    app = creds["clients"]["app"]
    sess = OAuth2Session(app["client_id"], redirect_uri=REDIRECT, scope=scope, code_challenge_method="S256")
    verifier = generate_token(64)
    url, _state = sess.create_authorization_url(server.root + "/auth/authorize", code_verifier=verifier,
                                                aud=server.base, **kw)
    return sess, url, verifier


def _login(server, creds, username: str, scope: str, untick=frozenset(), **kw):
    sess, url, verifier = _app_session(server, creds, scope, **kw)
    browser = Browser(server.root)
    back = browser.authorize(url, username, creds["users"][username]["password"], untick)
    token = sess.fetch_token(server.root + "/auth/token", authorization_response=back, code_verifier=verifier)
    return sess, token, browser


def _fhir(server, token: str, path: str) -> requests.Response:
    return requests.get(f"{server.base}/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_standalone_patient_launch_refresh_introspect_revoke(demo):
    server, creds = demo
    sess, token, _ = _login(server, creds, "asha", "launch/patient openid fhirUser offline_access patient/*.rs")
    assert token["patient"] == "demo-patient" and token["need_patient_banner"] is True
    assert token["token_type"].lower() == "bearer" and 0 < token["expires_in"] <= 3600 and token["refresh_token"]
    access = token["access_token"]
    # the id token is signed RS256 with a key published at jwks_uri and names the user
    config = requests.get(server.base + "/.well-known/smart-configuration", timeout=30).json()
    jwks = KeySet.import_key_set(requests.get(config["jwks_uri"], timeout=30).json())
    id_token = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    assert id_token.header["kid"] and id_token.claims["fhirUser"].endswith("Patient/demo-patient")
    # the token reads the patient's own record and nothing else
    assert _fhir(server, access, "Patient/demo-patient").status_code == 200
    bundle = _fhir(server, access, "Observation").json()
    assert [e["resource"]["subject"]["reference"] for e in bundle["entry"]] == ["Patient/demo-patient"]
    assert _fhir(server, access, "Practitioner/demo-doctor").status_code == 404   # outside the compartment
    # her UHID (in the demo credentials) and her health card, through her own app's token
    own = _fhir(server, access, "Patient/demo-patient").json()
    assert creds["uhid"] in [i["value"] for i in own["identifier"]]
    card = _fhir(server, access, "Patient/demo-patient/$health-card").json()["parameter"][0]["valueString"]
    verdict = requests.post(f"{server.base}/$verify-health-card", json={"jws": card}, timeout=30).json()
    assert {"name": "uhid", "valueString": creds["uhid"]} in verdict["parameter"]
    # refresh: a narrower scope, rotation (the old refresh token is spent)
    old_refresh = token["refresh_token"]
    fresh = sess.refresh_token(server.root + "/auth/token", refresh_token=old_refresh, scope="patient/*.rs")
    assert fresh["scope"] == "patient/*.rs" and fresh["access_token"] != access
    # introspection by a confidential client
    backend = creds["clients"]["backend"]
    auth = (backend["client_id"], backend["client_secret"])

    def introspect(t):
        return requests.post(server.root + "/auth/introspect", data={"token": t}, auth=auth, timeout=30).json()
    live = introspect(fresh["access_token"])
    assert live["active"] is True and live["patient"] == "demo-patient" and live["scope"] == "patient/*.rs"
    # revocation takes effect at once
    revoked = requests.post(server.root + "/auth/revoke", timeout=30,
                            data={"token": fresh["access_token"], "client_id": creds["clients"]["app"]["client_id"]})
    assert revoked.status_code == 200
    assert introspect(fresh["access_token"]) == {"active": False}
    assert _fhir(server, fresh["access_token"], "Patient/demo-patient").status_code == 401
    # a rotated-away refresh token is refused, and its reuse revokes what the grant still had
    sess2, other, _ = _login(server, creds, "asha", "launch/patient offline_access patient/*.rs")
    spent = other["refresh_token"]
    rotated = sess2.refresh_token(server.root + "/auth/token", refresh_token=spent)
    replay = requests.post(server.root + "/auth/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": spent, "client_id": creds["clients"]["app"]["client_id"]})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"    # RFC 6749 5.2
    assert introspect(rotated["access_token"]) == {"active": False}


def test_unticked_scope_is_not_granted(demo):
    server, creds = demo
    _sess, token, _ = _login(server, creds, "asha", "launch/patient patient/Patient.rs patient/Observation.rs",
                             untick={"patient/Observation.rs"})
    assert "patient/Observation.rs" not in token["scope"].split()
    assert _fhir(server, token["access_token"], "Observation").status_code == 403
    assert _fhir(server, token["access_token"], "Patient/demo-patient").status_code == 200


def test_ehr_practitioner_launch(demo):
    server, creds = demo
    # the EHR side, acting for the logged-in doctor, creates a launch for the patient on screen
    _sess, doctor, browser = _login(server, creds, "dr.iyer", "openid fhirUser user/*.rs")
    launch = requests.post(server.root + "/auth/launch", json={"patient": "demo-patient"}, timeout=30,
                           headers={"Authorization": f"Bearer {doctor['access_token']}"})
    # /auth/launch is this server's own API (no spec fixes its success code; the in-process tests in
    # tests/smart_auth/test_oauth_launch.py pin it): here only that a launch was made
    assert launch.status_code in (200, 201), launch.text
    sess, url, verifier = _app_session(server, creds, "launch openid fhirUser patient/*.rs",
                                       launch=launch.json()["launch"])
    back = browser.authorize(url, "dr.iyer", creds["users"]["dr.iyer"]["password"])   # same browser session
    token = sess.fetch_token(server.root + "/auth/token", authorization_response=back, code_verifier=verifier)
    assert token["patient"] == "demo-patient"
    assert _fhir(server, token["access_token"], "Observation?code=http://loinc.org|718-7").json()["total"] == 1
    assert _fhir(server, doctor["access_token"], "Practitioner/demo-doctor").status_code == 200


def test_backend_services_private_key_jwt(demo, tmp_path):
    server, _creds = demo
    key = RSAKey.generate_key(2048, parameters={"kid": "ehr-1", "alg": "RS384", "use": "sig"})
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    out = subprocess.run([MEDPORT, "client", "add", "Hospital EHR", "--type", "confidential-asymmetric",
                          "--jwks", str(jwks_path), "--scope", "system/*.rs", "--organization",
                          "Organization/demo-hospital", "--store", server.store_url],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    client_id = next(line.split()[-1] for line in out.splitlines() if "client_id" in line)
    token_url = server.root + "/auth/token"

    def assertion(**over):
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240, "jti": uuid.uuid4().hex}
        claims.update(over)
        return jwt.encode({"alg": "RS384", "kid": "ehr-1", "typ": "JWT"}, claims, key, algorithms=["RS384"])

    def ask(signed: str, **over):
        data = {"grant_type": "client_credentials", "scope": "system/*.rs",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": signed, **over}
        return requests.post(token_url, data=data, timeout=30)

    signed = assertion()
    r = ask(signed)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store", r.text
    assert r.json()["expires_in"] <= 300 and "refresh_token" not in r.json()
    bundle = _fhir(server, r.json()["access_token"], "Patient").json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] >= 1
    assert ask(signed).json()["error"] == "invalid_client"                        # replayed jti
    assert ask(assertion(exp=int(time.time()) + 3600)).json()["error"] == "invalid_client"
    assert ask(assertion(), scope="system/*.cruds").json()["error"] == "invalid_scope"
    # invalid_request or invalid_client: RFC 6749 5.2 allows 400 or 401 for a client that did not
    # authenticate by the Authorization header
    assert ask(assertion(), client_assertion_type="urn:other").status_code in (400, 401)


def test_fhirclient_launch(demo):
    from fhirclient import client
    server, creds = demo
    app = creds["clients"]["app"]
    smart = client.FHIRClient(settings={"app_id": app["client_id"], "api_base": server.base,
                                        "redirect_uri": REDIRECT, "scope": "launch/patient openid fhirUser patient/*.rs"})
    url = smart.authorize_url
    assert parse_qs(urlparse(url).query)["code_challenge_method"] == ["S256"]
    back = Browser(server.root).authorize(url, "asha", creds["users"]["asha"]["password"])
    smart.handle_callback(back)
    assert smart.ready and smart.patient_id == "demo-patient"
    assert smart.patient.name[0].family == "Rao"
    if os.environ.get("MEDPORT_E2E_VERBOSE"):
        print(smart.human_name(smart.patient.name[0]))
