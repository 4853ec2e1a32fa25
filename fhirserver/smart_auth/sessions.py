"""Login sessions of the authorization server's pages, and their CSRF tokens.

A session is a store record (kind "session") under a random id carried in an HttpOnly,
SameSite=Lax cookie scoped to /auth (Secure when the server is served over https), expiring after
settings.session_lifetime. A session exists before login too (anonymous), so that the login form
carries a CSRF token; logging in replaces it with a fresh id (no session fixation). Every POSTed
form must echo the session's CSRF token (OWASP CSRF cheat sheet, synchronizer token pattern).

A pending authorization request is bound to the browser that started it (RFC 9700 4.2.4 and 4.5:
an authorization request must complete in the user agent that made it): /auth/authorize sets a
random binding cookie (HttpOnly, SameSite=Lax, Secure over https, path /auth) and stores its
SHA-256 with the request; the login, consent and patient picker steps refuse a request whose hash
does not match the caller's cookie, so a link to someone else's pending request issues no code.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass

from flask import after_this_request, g, redirect, request

from ..resources import ctx
from . import auth_audit, pages
from .accounts import LoginThrottled, Users
from .clients import Clients

KIND = "session"
COOKIE = "medport_auth"
ANONYMOUS_LIFETIME_S = 3600
REQUEST_KIND = "auth-request"         # the pending authorization requests of authorize.py
BINDING_COOKIE = "medport_authz"     # binds pending authorization requests to this browser
BINDING_LIFETIME_S = 600             # as long as a pending request lives (authorize.REQUEST_LIFETIME_S)
_REQUEST_ID = re.compile(r"[A-Za-z0-9_\-]{20,64}")     # whole string (fullmatch): "\n" never in a header


@dataclass
class Session:
    id: str
    csrf: str
    expires: float
    username: str | None = None          # None: not logged in yet


def current(store) -> Session | None:
    """The caller's live session, or None."""
    if "smart_session" in g:
        return g.smart_session
    sid = request.cookies.get(COOKIE, "")
    record = store.get_record(KIND, sid) if sid and len(sid) <= 128 else None
    session = Session(id=sid, **record) if record else None
    g.smart_session = session
    return session


def ensure(store, settings) -> Session:
    """The caller's session, creating an anonymous one (and its cookie) when there is none."""
    return current(store) or _start(store, settings, None, ANONYMOUS_LIFETIME_S)


def log_in(store, settings, username: str) -> Session:
    """Replace the caller's session by a new, logged-in one."""
    old = current(store)
    if old is not None:
        store.delete_record(KIND, old.id)
    return _start(store, settings, username, settings.session_lifetime)


def log_out(store, settings) -> None:
    old = current(store)
    if old is not None:
        store.delete_record(KIND, old.id)
    g.smart_session = None
    secure = settings.base_url.startswith("https:")

    @after_this_request
    def _clear(response):
        response.delete_cookie(COOKIE, path="/auth", secure=secure, httponly=True, samesite="Lax")
        return response


def bind_browser(settings) -> str:
    """The browser binding of a new pending request: the hash of the caller's binding cookie, set
    (or renewed) on this response. An existing cookie is kept, so one browser can have several
    pending requests (several apps, several tabs)."""
    value = request.cookies.get(BINDING_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_\-]{43}", value):
        value = secrets.token_urlsafe(32)
    secure = settings.base_url.startswith("https:")

    @after_this_request
    def _set(response):
        response.set_cookie(BINDING_COOKIE, value, max_age=BINDING_LIFETIME_S, path="/auth", secure=secure,
                            httponly=True, samesite="Lax")
        return response
    return _binding(value)


def bound_here(pending: dict | None) -> bool:
    """Whether a pending authorization request was started by this browser (its binding cookie)."""
    value = request.cookies.get(BINDING_COOKIE, "")
    expected = (pending or {}).get("browser")
    return bool(value) and isinstance(expected, str) and hmac.compare_digest(_binding(value), expected)


def foreign_request_page():
    """The answer to a pending request opened in a browser that did not start it: no code."""
    return pages.error_page("This sign-in link was started in another browser or has expired. For your "
                            "safety it cannot be used here: open the application again and start from it.", 403)


def _binding(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    return (session is not None and isinstance(submitted, str)
            and hmac.compare_digest(session.csrf.encode(), submitted.encode()))


def _start(store, settings, username: str | None, lifetime_s: float) -> Session:
    session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                      expires=time.time() + lifetime_s, username=username)
    value = asdict(session)
    del value["id"]
    store.put_record(KIND, session.id, value, expires_at=session.expires)
    g.smart_session = session
    secure = settings.base_url.startswith("https:")

    @after_this_request
    def _set(response):
        response.set_cookie(COOKIE, session.id, max_age=int(lifetime_s), path="/auth", secure=secure,
                            httponly=True, samesite="Lax")
        return response
    return session


# ---- the sign-in and sign-out pages ------------------------------------------------------------

def login_view():
    """GET /auth/login (the form) and POST /auth/login (username, password, csrf, request)."""
    c = ctx()
    source = request.form if request.method == "POST" else request.args
    request_id = source.get("request", "")
    if not valid_request_id(request_id):
        request_id = ""
    pending = c.store.get_record(REQUEST_KIND, request_id) if request_id else None
    if pending is not None and not bound_here(pending):
        return foreign_request_page()
    app_name = _app_name(c.store, pending)

    def form(message=None, status=200, username=""):
        session = ensure(c.store, c.settings)
        return pages.render("login", status, action="/auth/login", csrf=session.csrf, request_id=request_id,
                            app_name=app_name, message=message, username=username)

    if request.method == "GET":
        session = current(c.store)
        if session is not None and session.username and request_id:
            return redirect(f"/auth/consent?request={request_id}", 303)
        return form()
    if not csrf_ok(current(c.store), request.form.get("csrf")):
        return form("The sign-in form expired; please try again.", 400)
    username = (request.form.get("username") or "")[:64]
    password = (request.form.get("password") or "")[:1024]
    try:
        user = Users(c.store).authenticate(username, password, request.remote_addr)
    except LoginThrottled as e:          # the same answer for every username, known or not
        auth_audit.login(username, status=429, description=f"throttled: retry in {e.retry_after} s",
                         client_id=(pending or {}).get("client_id"))
        response = form(f"Too many failed sign-in attempts. Try again in {e.retry_after} seconds.", 429, username)
        response.headers["Retry-After"] = str(e.retry_after)
        return response
    auth_audit.login(username, user, status=200 if user else 401,
                     description=None if user else "invalid username or password, or account disabled",
                     client_id=(pending or {}).get("client_id"))
    if user is None:
        return form("Invalid username or password.", 401, username)
    log_in(c.store, c.settings, user.username)
    if request_id:
        return redirect(f"/auth/consent?request={request_id}", 303)
    return pages.render("message", title="Signed in", message=f"You are signed in to Med-Port as {user.username}.",
                        signed_in_as=user.username)


def logout_view():
    """GET /auth/logout (a confirmation form) and POST /auth/logout (csrf): ends the session. Given
    the pending authorization request (?request=, the consent page's sign-out link), signing out
    leads back to the sign-in page for it (another person may sign in at this computer)."""
    c = ctx()
    session = current(c.store)
    source = request.form if request.method == "POST" else request.args
    request_id = source.get("request", "")
    request_id = request_id if valid_request_id(request_id) else ""
    if request.method == "GET" or not csrf_ok(session, request.form.get("csrf")):
        if session is None or not session.username:
            return pages.render("message", title="Signed out", message="You are not signed in.")
        return pages.render("logout", csrf=session.csrf, action="/auth/logout", request_id=request_id,
                            signed_in_as=session.username)
    log_out(c.store, c.settings)
    auth_audit.logout(session.username)
    if request_id:
        return redirect(f"/auth/login?request={request_id}", 303)
    return pages.render("message", title="Signed out", message="You are signed out.")


def valid_request_id(request_id) -> bool:
    return isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id) is not None


def _app_name(store, pending: dict | None) -> str | None:
    client = Clients(store).get(pending["client_id"]) if pending else None
    return client.name if client else None
