"""Security review findings on the SMART authorization server: one regression test per confirmed issue.

Each test states the expected secure behaviour. Its docstring records the defect as the review found
it (file:line references are to the code of that time, since fixed); the tests pass on the fixed code
and fail if the defect comes back.
"""
from __future__ import annotations

import base64
import hashlib
import threading

import pytest

from fhirserver.smart_auth import accounts, passwords
from fhirserver.smart_auth.accounts import LoginThrottled, Users
from fhirserver.storage.sqlite import SqliteStore
from tests.smart_auth.test_oauth_helpers import (
    REDIRECT,
    authorize_params,
    decide,
    full_flow,
    login,
    make_world,
    query,
    redeem,
    start,
)

PW = "correct horse battery"


@pytest.fixture
def world(tmp_path, monkeypatch):
    return make_world(tmp_path, monkeypatch, auth="on")


# ---- 1. admin API ignores the token's scope --------------------------------------------------

def test_admin_api_refuses_an_app_token_that_was_granted_only_openid(world):
    """Found: admin_routes.py:33-43 checked only claims["role"] == "admin", never the granted scope: any
    third-party app an administrator signed in to (here it asked for and got only `openid`) could use
    the admin API with that token, e.g. to create a new administrator account."""
    world.users.add("root", PW, "admin")
    app, _ = world.app_client(scopes=["openid"])
    body = full_flow(world, app.client_id, "root", "openid")
    assert body["scope"] == "openid"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    r = world.http.post("/auth/admin/users", headers=bearer,
                        json={"username": "mallory", "password": "long enough pw", "role": "admin"})
    assert r.status_code == 403, r.get_data(as_text=True)     # RFC 6750 3.1: valid token, scope lacking
    assert world.users.get("mallory") is None
    assert world.http.get("/auth/admin/users", headers=bearer).status_code == 403


# ---- 2. disabling a user leaves their refresh tokens working --------------------------------

def test_refresh_token_of_a_disabled_user_is_refused(world):
    """Found: accounts.py:86-93 Users.disable only flagged the record ("issued tokens are revoked
    elsewhere" - nowhere did), and refresh.py:69-89 / token_endpoint.py:200-208 never looked at the
    user: an offline_access refresh token kept minting access tokens for the refresh lifetime
    (90 days by default) after the account was disabled."""
    asha = world.patient("Sharma", "Asha")
    world.users.add("asha", PW, "patient", fhir_user=f"Patient/{asha}")
    app, _ = world.app_client()
    body = full_flow(world, app.client_id, "asha", "launch/patient patient/*.rs offline_access")
    assert world.users.disable("asha")
    r = world.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                             "client_id": app.client_id})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant", r.get_data(as_text=True)


# ---- 3. login throttling is a read-modify-write race ----------------------------------------

def _in_parallel(fn, n: int) -> None:
    """fn(0) .. fn(n-1), each in its own thread, all awaited."""
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)


def _throttled_users(tmp_path, monkeypatch):
    """A store with asha's account, 5 failures from one address before delays start, cheap scrypt."""
    monkeypatch.setattr(passwords, "N", 2 ** 10)
    store = SqliteStore(str(tmp_path / "t.db"), synchronous="NORMAL")
    users = Users(store, free_failures=5)
    users.add("asha", PW, "patient", "Patient/1")
    return store, users


def test_concurrent_wrong_passwords_are_all_counted_by_the_throttle(tmp_path, monkeypatch):
    """Found: accounts.py:98-110 read the failure list, spent one scrypt on the guess, then wrote the
    list back with one more entry: concurrent guesses all passed the check and overwrote each other,
    so a batch of N parallel guesses was evaluated in full and counted as a single failure. Here ten
    concurrent wrong guesses are checked against the hash (max_failures is 5): the account must be
    throttled afterwards."""
    store, users = _throttled_users(tmp_path, monkeypatch)
    now = accounts.time.time()
    monkeypatch.setattr(accounts.time, "time", lambda: now)    # the barrier's wait must not age the delay
    attempts = 10
    barrier = threading.Barrier(attempts)
    real_verify = passwords.verify_password
    evaluated = []

    def verify_in_step(password, stored):
        evaluated.append(password)
        try:        # every request is inside its scrypt at the same time (a real server's workers)
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return real_verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", verify_in_step)

    def guess(i):
        try:
            users.authenticate("asha", f"wrong guess {i}")
        except LoginThrottled:
            pass

    _in_parallel(guess, attempts)
    monkeypatch.setattr(passwords, "verify_password", real_verify)
    assert len(evaluated) <= users.free_failures, f"{len(evaluated)} guesses were checked against the hash"
    with pytest.raises(LoginThrottled):
        users.authenticate("asha", PW)


def test_a_burst_of_refused_guesses_cannot_erase_the_count(tmp_path, monkeypatch):
    """Found under load in CI: when every guess of a burst was recorded before any of them counted,
    each saw more than max_failures records, refused itself and deleted its own record, leaving
    none: the account was not throttled afterwards. Refused guesses now stay counted."""
    store, users = _throttled_users(tmp_path, monkeypatch)
    attempts = 8
    checked, recorded = threading.Barrier(attempts), threading.Barrier(attempts)
    real_add, real_list, first = store.add_record, store.list_records, threading.local()

    def list_then_wait(kind):
        found = real_list(kind)
        if kind.startswith("login-failures") and not getattr(first, "done", False):
            first.done = True
            checked.wait(timeout=60)      # every guess passes the first check before any is recorded
        return found

    def add_then_wait(kind, key, value, expires_at=None):
        done = real_add(kind, key, value, expires_at)
        if kind.startswith("login-failures"):
            recorded.wait(timeout=60)     # every guess is recorded before any of them is counted
        return done
    monkeypatch.setattr(store, "list_records", list_then_wait)
    monkeypatch.setattr(store, "add_record", add_then_wait)
    refused = []

    def guess(i):
        try:
            users.authenticate("asha", f"wrong guess {i}")
        except LoginThrottled:
            refused.append(i)
    _in_parallel(guess, attempts)
    monkeypatch.setattr(store, "add_record", real_add)
    monkeypatch.setattr(store, "list_records", real_list)
    assert len(refused) == attempts          # all saw 8 records: none reached the hash
    with pytest.raises(LoginThrottled):
        users.authenticate("asha", PW)


# ---- 4. PKCE code_verifier syntax (RFC 7636 4.1) is not enforced ----------------------------

def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("verifier", ["a", "0123456789", "x" * 129, "not unreserved characters! " * 2])
def test_code_verifier_outside_rfc7636_syntax_is_refused(world, verifier):
    """Found: token_endpoint.py:183-186 only required a non-blank verifier whose S256 hash matches. RFC
    7636 4.1 requires 43-128 characters of [A-Za-z0-9-._~] (authlib's CodeChallenge enforces it): a
    one-character verifier has an S256 challenge (always 43 chars, so authorize.py:108-112 accepted
    it) that an eavesdropper of the authorization request can invert by brute force."""
    world.users.add("drwho", PW, "practitioner", fhir_user="Practitioner/9")
    app, _ = world.app_client()
    http = world.browser()
    r = start(http, authorize_params(app.client_id, _s256(verifier), "user/*.rs"))
    assert r.status_code == 303, r.get_data(as_text=True)
    request_id = query(r.headers["Location"])["request"]
    login(http, request_id, "drwho")
    r = decide(http, request_id)
    assert r.status_code == 302 and r.headers["Location"].startswith(REDIRECT)
    code = query(r.headers["Location"])["code"]
    r = redeem(world, app.client_id, code, verifier)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in r.get_json()
