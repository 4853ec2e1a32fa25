"""Shared helpers of the OAuth tests (no tests here): an app with seeded users, clients and
patients, PKCE, and a browser-like walk through authorize -> login -> consent -> code -> token."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from fhirserver import create_app
from fhirserver.interactions.create import create
from fhirserver.smart_auth import passwords
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.clients import Clients
from tests.conftest import make_settings

BASE = "http://fhir.test/fhir"
AUTH = "http://fhir.test/auth"
TOKEN_URL = AUTH + "/token"
REDIRECT = "https://app.example/callback"
PASSWORD = "correct horse battery"
APP_SCOPES = ["openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access",
              "patient/*.cruds", "user/*.cruds"]


class World:
    def __init__(self, app):
        self.app = app
        self.ctx = app.config["MEDPORT"]
        self.store = self.ctx.store
        self.http = app.test_client()
        self.users = Users(self.store)
        self.clients = Clients(self.store)

    def patient(self, family: str, given: str) -> str:
        body = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], "birthDate": "1950-04-02"}
        return create(self.ctx, "Patient", body).version.id

    def encounter(self, patient_id: str) -> str:
        body = {"resourceType": "Encounter", "status": "finished", "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient_id}"}}
        return create(self.ctx, "Encounter", body).version.id

    def app_client(self, type="public", scopes=APP_SCOPES, **kw):
        client, secret = self.clients.add("Test App", type, redirect_uris=[REDIRECT], scopes=scopes, **kw)
        return client, secret

    def browser(self):
        """A fresh cookie jar (another user agent)."""
        return self.app.test_client()


def make_world(tmp_path, monkeypatch, backend: str = "sqlite", **settings) -> World:
    """A fresh app (cheap password hashing) on a fresh store of `backend`; each test module wraps it
    in a `world` fixture that takes the `backend` fixture (tests/conftest.py), so that the OAuth
    suites run on every store."""
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    return World(create_app(make_settings(tmp_path, backend, **settings)))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> dict[str, str]:
    """The HTTP Basic Authorization header of a confidential client (RFC 6749 2.3.1)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def authorize_params(client_id: str, challenge: str, scope: str, **extra) -> dict:
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": scope,
            "state": "st-123", "aud": BASE, "code_challenge": challenge, "code_challenge_method": "S256",
            **extra}


def start(http, params: dict, post: bool = False):
    """The authorize request; returns the response (a redirect to login/consent or to the app)."""
    if post:
        return http.post("/auth/authorize", data=params)
    return http.get("/auth/authorize?" + urlencode(params))


def begin(world: World, client_id: str, scope: str, **extra):
    """A new browser that has sent an authorize request (PKCE S256): (browser, request id)."""
    _verifier, challenge = pkce()
    http = world.browser()
    r = start(http, authorize_params(client_id, challenge, scope, **extra))
    return http, query(r.headers["Location"])["request"]


def login(http, request_id: str, username: str, password: str = PASSWORD):
    page = http.get(f"/auth/login?request={request_id}")
    return http.post("/auth/login", data={"csrf": csrf(page.get_data(as_text=True)), "request": request_id,
                                          "username": username, "password": password})


def consent_page(http, request_id: str, **args):
    return http.get("/auth/consent?" + urlencode({"request": request_id, **args}))


def decide(http, request_id: str, scopes=None, decision: str = "approve", **fields):
    """Submit the consent form: scopes=None keeps every offered box ticked."""
    page = consent_page(http, request_id).get_data(as_text=True)
    offered = re.findall(r'name="scope" value="([^"]+)"', page)
    ticked = offered if scopes is None else scopes
    data = {"csrf": csrf(page), "request": request_id, "decision": decision, "scope": ticked, **fields}
    return http.post("/auth/consent", data=data)


def get_code(world: World, client_id: str, username: str, scope: str, scopes=None, fields=None, http=None,
             **extra):
    """Browser part of the flow (in a fresh browser unless http is given): returns (code, verifier,
    the final redirect's query)."""
    verifier, challenge = pkce()
    http = http or world.browser()
    r = start(http, authorize_params(client_id, challenge, scope, **extra))
    assert r.status_code == 303, r.get_data(as_text=True)
    request_id = query(r.headers["Location"])["request"]
    if r.headers["Location"].startswith("/auth/login"):          # no session in this browser yet
        r = login(http, request_id, username)
        assert r.status_code == 303 and "/auth/consent" in r.headers["Location"], r.get_data(as_text=True)
    r = decide(http, request_id, scopes, **(fields or {}))
    assert r.status_code == 302, r.get_data(as_text=True)
    assert r.headers["Location"].startswith(REDIRECT)
    q = query(r.headers["Location"])
    return q.get("code"), verifier, q


def redeem(world: World, client_id: str, code: str, verifier: str | None, auth=None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
            **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    return world.http.post("/auth/token", data=data, headers=auth or {})


def full_flow(world: World, client_id: str, username: str, scope: str, **kw) -> dict:
    code, verifier, _q = get_code(world, client_id, username, scope, **kw)
    r = redeem(world, client_id, code, verifier)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()
