"""The authorization server's security events, as DICOM-typed AuditEvents (audit_log/balp.py,
security_event) noted on the request's audit trail (audit_log/trail.note_event: stored before the
response leaves, 503 if they cannot be); the CLI stores its own directly (cli_event).

What is recorded (IHE ATNA / DICOM PS3.15 A.5.3 event types; subtypes login/logout from DCM, the
rest from balp.AUTH_EVENTS):

- 110114 User Authentication: login (success; failure 401; throttled 429) and logout at the sign-in
  pages; the token endpoint's access tokens issued and refreshed, and every request it refuses
  (bad client authentication or assertion, bad code, bad refresh token); tokens revoked (RFC 7009);
  the user's decision at the consent page (the scopes approved, or refused);
- 110114 also: a token introspected by a resource server (RFC 7662), and every caller the
  introspection endpoint refuses;
- 110113 Security Alert: a used authorization code or rotated-away refresh token presented again
  (RFC 6749 4.1.2, RFC 9700 4.14.2: the grant is revoked); the admin API refused to a caller;
- 110112 Query: the admin API's listings of users and of clients;
- 110137 User Security Attributes Changed: users and clients created or disabled (admin API, CLI),
  with their role and break-glass privilege; accounts opened by self-registration.

Identifiers only (OWASP Logging Cheat Sheet, "Data to exclude"): usernames, client_ids, grant ids and
token jti; never a password, token, code, code_verifier, client secret or client assertion.
"""
from __future__ import annotations

import re

from flask import current_app, g, has_app_context, has_request_context, request

from ..audit_log import balp, trail
from ..governance import custodian
from . import jose_peek

_SAFE = re.compile(r"[^A-Za-z0-9._@:/\-]")
TOKEN, REFRESHED, REFUSED = ("token-issued", "Access token issued"), ("token-refreshed", "Access token refreshed"), \
    ("token-refused", "Token request refused")


def _base() -> str:
    return current_app.config["MEDPORT"].settings.base_url if has_app_context() else ""


def _id(value, limit: int = 256) -> str | None:
    """An identifier as given by a caller, made harmless (printable, bounded), or None."""
    return _SAFE.sub("?", value)[:limit] if isinstance(value, str) and value else None


def actor(client_id=None, username=None, fhir_user=None, organization=None) -> balp.Actor:
    """The caller: its client, and the user (by fhirUser, else by username) if a user acted."""
    user = None
    if fhir_user:
        user = {"reference": str(fhir_user).removeprefix(_base() + "/")}
    elif username:
        user = {"identifier": {"system": f"{_base()}/sid/user", "value": username}}
    return balp.Actor(client_id=client_id, user=user, alt_id=username,
                      address=request.remote_addr if has_request_context() else None, organization=organization)


def _note(who: balp.Actor, type_code, subtype, **kw) -> None:
    if trail.current() is None:     # no request trail (audit_access off, or no request): nothing to note
        return
    event = balp.security_event(_base(), who, type_code, subtype, request_id=g.get("request_id"), **kw)
    if who.organization:            # its organisation's privacy officer finds it (as trail._held does)
        custodian.stamp(event, who.organization)
    trail.note_event(event)


def _user_about(username) -> tuple[str, str]:
    return f"{_base()}/sid/user", username


def _grant_about(grant) -> tuple[str, str] | None:
    return (f"{_base()}/sid/grant", str(grant)) if grant else None


# ---- sign-in pages (sessions.py) -----------------------------------------------------------------

def login(username: str, user=None, status: int = 200, description: str | None = None,
          client_id: str | None = None) -> None:
    """A sign-in at /auth/login: user is the account on success (None: refused, status 401 or 429);
    client_id: the app whose authorization request it continues."""
    name = _id(username, 64) or "(none)"
    who = actor(client_id, username=name, fhir_user=user.fhir_user if user else None,
                organization=user.organization if user else None)
    _note(who, balp.USER_AUTHENTICATION, balp.LOGIN, status=status, about=_user_about(name),
          description=description or ("signed in" if user else None))


def logout(username: str | None) -> None:
    if username:
        _note(actor(username=username), balp.USER_AUTHENTICATION, balp.LOGOUT, about=_user_about(username),
              description="signed out")


# ---- consent (authorize.py) ---------------------------------------------------------------------

def consent(user, client_id: str, scopes: list[str], patient: str | None = None, grant: str | None = None,
            refused: str | None = None) -> None:
    """The user's decision at the consent page: the scopes approved (SMART App Launch 2.2 "Obtain
    authorization code"), or refused with why."""
    who = actor(client_id, user.username, user.fhir_user, user.organization)
    if refused:
        _note(who, balp.USER_AUTHENTICATION, (balp.AUTH_EVENTS, "consent-refused", "Authorization refused"),
              status=403, description=refused, patient=patient, about=_user_about(user.username))
        return
    _note(who, balp.USER_AUTHENTICATION, (balp.AUTH_EVENTS, "consent-given", "Authorization given"),
          description="scopes approved: " + " ".join(scopes), patient=patient, about=_grant_about(grant))


# ---- the token and revocation endpoints ------------------------------------------------------------

def token_issued(claims: dict, refresh_token: bool = False) -> None:
    """An access token the token endpoint issued (its claims: never the token)."""
    grant_type = _id(request.form.get("grant_type"), 40)
    user = bool(claims.get("role"))
    who = actor(claims.get("client_id"), claims.get("sub") if user else None,
                claims.get("fhirUser") if user else None, claims.get("organization"))
    text = f"grant_type {grant_type}; scope {claims.get('scope')}; jti {claims.get('jti')}" + (
        "; refresh token issued" if refresh_token else "")
    _note(who, balp.USER_AUTHENTICATION, (balp.AUTH_EVENTS, *(REFRESHED if grant_type == "refresh_token" else TOKEN)),
          description=text, patient=claims.get("patient"), about=_grant_about(claims.get("grant")))


def token_failed(error, params: dict | None, client=None, endpoint: str = "token") -> None:
    """A request the token (or revocation) endpoint refused (RFC 6749 5.2): the client it named."""
    params = params or {}
    client_id = client.client_id if client is not None else (
        _id(params.get("client_id")) or _assertion_issuer(params) or _basic_client_id())
    what = f"{endpoint} request refused (grant_type {_id(params.get('grant_type'), 40)}): {error.error}"
    if error.description:
        what += f": {error.description}"
    _note(actor(client_id), balp.USER_AUTHENTICATION, (balp.AUTH_EVENTS, *REFUSED),
          status=error.status_code or 400, description=what)


def _basic_client_id() -> str | None:
    """The client id an (unverified) HTTP Basic Authorization header names (RFC 6749 2.3.1)."""
    from authlib.oauth2.rfc6749.errors import OAuth2Error

    from .token_endpoint import basic_credentials
    header = request.headers.get("Authorization") if has_request_context() else None
    try:
        basic = basic_credentials(header)
    except OAuth2Error:
        return None
    return _id(basic[0]) if basic else None


def _assertion_issuer(params: dict) -> str | None:
    """The client an (unverified, perhaps forged) client assertion claims to be: its iss only."""
    claims = jose_peek.segment(str(params.get("client_assertion") or ""), jose_peek.PAYLOAD)
    return _id(claims.get("iss")) if claims else None


def replayed(kind: str, grant) -> None:
    """A used code or rotated-away refresh token presented again: its grant was revoked."""
    client_id = _id(request.form.get("client_id")) if has_request_context() else None
    _note(actor(client_id), balp.SECURITY_ALERT, (balp.AUTH_EVENTS, "token-replayed", "Used credential replayed"),
          status=400, description=f"a used {kind} was presented again: its grant is revoked",
          about=_grant_about(grant))


def revoked(client_id: str, kind: str, grant=None, username=None, patient=None, jti=None) -> None:
    """A token revoked at the client's request (RFC 7009; App Launch 2.2 "Token revocation")."""
    text = f"{kind} revoked, with its grant" + (f"; jti {jti}" if jti else "")
    _note(actor(client_id, username), balp.USER_AUTHENTICATION, (balp.AUTH_EVENTS, "token-revoked", "Token revoked"),
          description=text, patient=patient, about=_grant_about(grant))


def introspected(client_id: str | None, username: str | None, answer: dict) -> None:
    """A token introspected (RFC 7662) by a resource server: who asked, and what the answer said of the
    token (active, its type, client and subject: identifiers only, never the token)."""
    text = f"active {str(answer.get('active')).lower()}" + "".join(
        f"; {k} {_id(str(answer[k]), 128)}" for k in ("token_type", "client_id", "sub") if answer.get(k))
    _note(actor(client_id, username), balp.USER_AUTHENTICATION,
          (balp.AUTH_EVENTS, "token-introspected", "Token introspected"), description=text,
          patient=answer.get("patient"))


# ---- administration (admin_routes.py, registration, cli_accounts.py) -------------------------------

ACTIONS = {"user-create": "User created", "user-disable": "User disabled", "client-create": "Client registered",
           "client-disable": "Client disabled", "account-registered": "Account opened by self-registration",
           "admin-refused": "Administration refused", "users-listed": "Users listed",
           "clients-listed": "Clients listed"}


def administration(action: str, about: tuple[str, str] | None, description: str | None = None,
                   status: int = 200) -> None:
    """A change to users or clients, or a listing of them (a Query), by the administrator whose token
    the admin API verified."""
    claims = g.get("medport_admin_claims") or {}
    who = actor(claims.get("client_id"), claims.get("sub"), claims.get("fhirUser"), claims.get("organization"))
    kind = balp.SECURITY_ALERT if action == "admin-refused" else \
        balp.QUERY if action.endswith("-listed") else balp.USER_SECURITY_ATTRIBUTES
    _note(who, kind, (balp.AUTH_EVENTS, action, ACTIONS[action]), status=status, description=description,
          about=about)


def user_about(username) -> tuple[str, str]:
    return _user_about(_id(username, 64) or "(none)")


def client_about(client_id) -> tuple[str, str]:
    return f"{_base()}/sid/client", _id(client_id) or "(none)"


def user_text(user) -> str:
    """A user's security attributes: role, fhirUser, organization, the break-glass privilege."""
    return (f"role {user.role}" + (f"; fhirUser {user.fhir_user}" if user.fhir_user else "")
            + (f"; organization {user.organization}" if user.organization else "")
            + ("; break-glass privilege granted" if user.break_glass else ""))


def client_text(client) -> str:
    return (f"{client.type} client {client.name!r}; scopes {' '.join(client.scopes)}"
            + (f"; organization {client.organization}" if client.organization else "")
            + ("; regulator" if client.regulator else ""))


def registered(username: str, fhir_user: str, patient: str | None, how: str) -> None:
    """An account a person opened for themselves (registration, a claim, a family invitation)."""
    _note(actor(username=username, fhir_user=fhir_user), balp.USER_SECURITY_ATTRIBUTES,
          (balp.AUTH_EVENTS, "account-registered", ACTIONS["account-registered"]),
          description=f"{how}: account {username}, {fhir_user}", patient=patient, about=_user_about(username))


def family_registered(store, username: str) -> None:
    """The account a family member opened with a patient's invitation (governance/family_invite.py)."""
    from ..governance import proxy
    from .accounts import Users
    user = Users(store).get(username)
    rid = proxy.related_person_of(user.fhir_user if user else None)
    related = proxy.live_related_person(store, rid) if rid else None
    registered(username, f"RelatedPerson/{rid}", proxy.patient_of(related) if related else None, "family invitation")


def cli_event(store, base: str, action: str, about: tuple[str, str], description: str) -> None:
    """Administration from the command line (no request, no trail): stored at once, the server's
    operator acting (no client, no user). about: ("user" or "client", its username or client_id)."""
    import socket

    from ..interactions.common import store_server_written
    event = balp.security_event(base, balp.Actor(), balp.USER_SECURITY_ATTRIBUTES,
                                (balp.AUTH_EVENTS, action, ACTIONS[action]), description=description,
                                about=(f"{base}/sid/{about[0]}", about[1]))
    event["agent"][0]["network"] = {"address": socket.gethostname()[:255] or "localhost", "type": "1"}   # machine
    with store.transaction() as tx:
        store_server_written(tx, base, event)
