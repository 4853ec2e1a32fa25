"""The authorization endpoint and the consent step (RFC 6749 4.1.1-4.1.2; SMART App Launch 2.2
"Obtain authorization code", "EHR Launch", "Standalone Launch"; RFC 7636 for PKCE).

GET or POST /auth/authorize (capability authorize-post) checks the request in this order: an
unknown or disabled client and an unregistered redirect_uri get an error page and never a redirect
(RFC 6749 4.1.2.1); everything else is sent back to the redirect_uri as ?error=...&state=...:
response_type=code, aud = the FHIR base URL, a PKCE S256 code_challenge (every client), the scopes
(malformed -> invalid_scope; reduced to what the client may have), and a launch id issued by
/auth/launch when the `launch` scope is asked for. The pending request is stored (kind
"auth-request", 10 minutes) with the hash of the browser's binding cookie (sessions.bind_browser), then
the user signs in (sessions.py) and consents, in that browser only.

GET /auth/consent shows the app, each scope with a checkbox, and for a standalone launch/patient by
a practitioner a patient picker; POST /auth/consent (CSRF-checked) issues a single-use code
(kind "code", keyed by its SHA-256, 60 s) with the granted scopes and launch context, or answers
access_denied.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from urllib.parse import quote

from authlib.common.urls import add_params_to_uri
from flask import redirect, request

from ..errors import BadRequest
from ..governance import proxy
from ..resources import ctx
from ..search.parse import parse_search
from ..uhid import identifier as uhid_identifier
from ..uhid import number as uhid_number
from . import auth_audit, pages, sessions
from . import launch as launches
from .accounts import Users
from .clients import Clients
from .scopes import ScopeError, parse_scope
from .token_endpoint import CODE_KIND

REQUEST_KIND = sessions.REQUEST_KIND
REQUEST_LIFETIME_S = 600
CODE_LIFETIME_S = 60
PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "aud", "launch", "code_challenge",
          "code_challenge_method", "nonce")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")   # RFC 7636 4.2, the whole value (fullmatch)
MAX_PARAM = 4096
PICKER_RESULTS = 20


class _RedirectError(Exception):
    """An error sent back to the client's redirect_uri (RFC 6749 4.1.2.1)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error, self.description = error, description


def error_redirect(redirect_uri: str, error: str, description: str | None, state: str | None):
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state is not None:
        params.append(("state", state))
    return redirect(add_params_to_uri(redirect_uri, params), 302)


# ---- /auth/authorize ---------------------------------------------------------------------------

def authorize_view():
    """GET or POST /auth/authorize."""
    c = ctx()
    source = request.form if request.method == "POST" else request.args
    params = {}
    for name in PARAMS:
        values = source.getlist(name)
        if len(values) > 1 or any(len(v) > MAX_PARAM for v in values):
            if name in ("client_id", "redirect_uri"):
                return pages.error_page(f"The {name} parameter is repeated or too long.")
            params[name] = None           # reported below, once client and redirect_uri are known
            params.setdefault("_bad", name)
        elif values:
            params[name] = values[0]
    client = Clients(c.store).get(params.get("client_id") or "") if params.get("client_id") else None
    if client is None or client.disabled:
        return pages.error_page("Unknown or disabled application (client_id).")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        return pages.error_page("The redirect_uri is not registered for this application.")
    state = params.get("state")
    try:
        pending = _check(c, client, params)
    except _RedirectError as e:
        return error_redirect(redirect_uri, e.error, e.description, state)
    request_id = secrets.token_urlsafe(24)
    pending["browser"] = sessions.bind_browser(c.settings)    # only this browser may continue it
    c.store.put_record(REQUEST_KIND, request_id, pending, expires_at=time.time() + REQUEST_LIFETIME_S)
    session = sessions.current(c.store)
    target = "consent" if session is not None and session.username else "login"
    return redirect(f"/auth/{target}?request={quote(request_id)}", 303)


def _check(c, client, params) -> dict:
    """The pending request to store, or _RedirectError."""
    if "_bad" in params:
        raise _RedirectError("invalid_request", f"Parameter {params['_bad']} is repeated or too long")
    if params.get("response_type") != "code":
        raise _RedirectError("unsupported_response_type", "response_type must be code")
    aud = params.get("aud")
    if not aud or aud.rstrip("/") != c.base:
        raise _RedirectError("invalid_request", "aud must be the FHIR base URL of this server")
    challenge = params.get("code_challenge")
    if not challenge or not _CHALLENGE.fullmatch(challenge):
        raise _RedirectError("invalid_request", "A PKCE code_challenge is required (RFC 7636)")
    if params.get("code_challenge_method") != "S256":
        raise _RedirectError("invalid_request", "code_challenge_method must be S256")
    requested = list(dict.fromkeys((params.get("scope") or "").split()))
    try:
        parsed = {raw: parse_scope(raw) for raw in requested}
    except ScopeError:
        raise _RedirectError("invalid_scope", "A requested scope is malformed") from None
    # system/ scopes belong to client_credentials; the rest must be allowed for the client
    scopes = [raw for raw in requested
              if client.permits(raw) and not (parsed[raw] is not None and parsed[raw].context == "system")]
    if not scopes:
        raise _RedirectError("invalid_scope", "None of the requested scopes is available to this application")
    launch_context = None
    launch_id = params.get("launch")
    if launch_id is not None or "launch" in requested:
        launch_context = launches.get(c.store, launch_id or "")
        if launch_context is None:
            raise _RedirectError("invalid_request", "The launch parameter is missing, unknown or expired")
    nonce = params.get("nonce")
    return {"client_id": client.client_id, "redirect_uri": params["redirect_uri"], "state": params.get("state"),
            "scopes": scopes, "code_challenge": challenge, "nonce": nonce, "launch": launch_context}


# ---- /auth/consent -----------------------------------------------------------------------------

def consent_view():
    """GET (the page, with patient search) or POST (the decision) /auth/consent."""
    c = ctx()
    request_id = (request.form if request.method == "POST" else request.args).get("request", "")
    if not sessions.valid_request_id(request_id):
        return pages.error_page("This authorization request is unknown or has expired.")
    pending = c.store.get_record(REQUEST_KIND, request_id)
    if pending is not None and not sessions.bound_here(pending):     # someone else's link: no code
        return sessions.foreign_request_page()
    session = sessions.current(c.store)
    if request.method == "POST" and not sessions.csrf_ok(session, request.form.get("csrf")):
        return pages.error_page("The form has expired; start again from the application.", 403)
    if session is None or not session.username:
        return redirect(f"/auth/login?request={quote(request_id)}", 303)
    user = Users(c.store).get(session.username)
    if user is None or user.disabled:
        sessions.log_out(c.store, c.settings)
        return redirect(f"/auth/login?request={quote(request_id)}", 303)
    client = Clients(c.store).get(pending["client_id"]) if pending else None
    if pending is None or client is None or client.disabled:
        return pages.error_page("This authorization request is unknown or has expired.")
    offered = _offered(pending["scopes"], user)
    ehr = pending.get("launch")
    if ehr and "launch" in offered and user.role == "patient" and user.fhir_user != f"Patient/{ehr['patient']}":
        return pages.error_page("This launch is for another patient's record.", 403)
    if ehr and "launch" in offered and user.role == proxy.ROLE and ehr["patient"] not in _delegating(c, user):
        return pages.error_page("This launch is for a patient who has not given you access to their record.", 403)
    picker = "launch/patient" in offered and not (ehr and "launch" in offered) and user.role != "patient"
    if user.role == proxy.ROLE:         # a family proxy picks among the patients who delegated to them
        picker = not (ehr and "launch" in offered) and ("launch/patient" in offered or _has_patient_scope(offered))
    if request.method == "GET":
        return _page(c, session, user, client, request_id, offered, picker)
    if request.form.get("decision") == "search":      # the picker's search: the same form, nothing decided
        return _page(c, session, user, client, request_id, offered, picker)
    if request.form.get("decision") != "approve":
        c.store.take_record(REQUEST_KIND, request_id)
        auth_audit.consent(user, client.client_id, [], (ehr or {}).get("patient") or _own_patient(user),
                           refused="the user denied access")
        return error_redirect(pending["redirect_uri"], "access_denied", "The user denied access", pending["state"])
    granted = [s for s in offered if s in set(request.form.getlist("scope"))]
    context = {"patient": None, "encounter": None, "fhirContext": None, "need_patient_banner": False}
    if ehr and "launch" in granted:
        context.update(patient=ehr["patient"], encounter=ehr.get("encounter"), fhirContext=ehr.get("fhirContext"))
    elif user.role == "patient" and ("launch/patient" in granted or _has_patient_scope(granted)):
        context.update(patient=_own_patient(user), need_patient_banner=True)
    elif user.role == proxy.ROLE and ("launch/patient" in granted or _has_patient_scope(granted)):
        chosen = request.form.get("patient") or ""
        if chosen not in _delegating(c, user):       # only a patient whose delegation is live now
            return _page(c, session, user, client, request_id, offered, picker, status=400,
                         picker_message="Choose whose record the application may use.")
        context.update(patient=chosen, need_patient_banner=True)
    elif user.role == proxy.ROLE:
        pass                                 # no patient context: patient/ scopes are dropped below
    elif "launch/patient" in granted:
        chosen = (request.form.get("patient_id") or "").strip() or request.form.get("patient") or ""
        if not _reachable(c, user, chosen):
            return _page(c, session, user, client, request_id, offered, picker, status=400,
                         picker_message="Choose a patient: search by name or UHID, then pick one.")
        context.update(patient=chosen, need_patient_banner=True)
    if context["patient"] is None:          # patient/ scopes need a patient context
        granted = [s for s in granted if not _is_patient_scope(s)]
    if not granted:
        c.store.take_record(REQUEST_KIND, request_id)
        auth_audit.consent(user, client.client_id, [], context["patient"], refused="no permission was granted")
        return error_redirect(pending["redirect_uri"], "access_denied", "No permission was granted",
                              pending["state"])
    if c.store.take_record(REQUEST_KIND, request_id) is None:
        return pages.error_page("This authorization request has already been answered.")
    code = secrets.token_urlsafe(32)
    now = time.time()
    c.store.put_record(CODE_KIND, hashlib.sha256(code.encode()).hexdigest(), {
        "client_id": client.client_id, "redirect_uri": pending["redirect_uri"],
        "code_challenge": pending["code_challenge"], "scope": " ".join(granted), "nonce": pending.get("nonce"),
        "username": user.username, "fhir_user": user.fhir_user, "role": user.role,
        "organization": user.organization, **context,
        "grant": (grant := secrets.token_urlsafe(16)), "session_id": session.id, "session_expires": session.expires,
        "expires_at": now + CODE_LIFETIME_S}, expires_at=now + CODE_LIFETIME_S)
    auth_audit.consent(user, client.client_id, granted, context["patient"], grant)
    params = [("code", code)] + ([("state", pending["state"])] if pending["state"] is not None else [])
    return redirect(add_params_to_uri(pending["redirect_uri"], params), 302)


def _offered(scopes: list[str], user) -> list[str]:
    """The scopes this user can give: a patient user gives no user/ scopes (they would reach
    beyond their own record); patient/ scopes of a patient user are confined to their record."""
    if user.role != "admin":
        scopes = [s for s in scopes if s != "medport/admin"]     # the admin API is for administrators
    if user.role not in ("patient", proxy.ROLE):     # a proxy has a patient's rights, no user/ ones
        return list(scopes)
    return [s for s in scopes if not _context_of(s) == "user"]


def _context_of(raw: str) -> str | None:
    try:
        scope = parse_scope(raw)
    except ScopeError:
        return None
    return scope.context if scope else None


def _is_patient_scope(raw: str) -> bool:
    return _context_of(raw) == "patient"


def _has_patient_scope(scopes: list[str]) -> bool:
    return any(_is_patient_scope(s) for s in scopes)


def _own_patient(user) -> str | None:
    rtype, _, rid = (user.fhir_user or "").partition("/")
    return rid if rtype == "Patient" and rid else None


def _page(c, session, user, client, request_id, offered, picker, status=200, message=None, picker_message=None):
    """The consent page. Re-shown after a POST (the picker's search, a missing patient) it keeps
    what the user chose: the ticked scopes (an unticked one stays unticked), the search and the
    chosen patient; first shown (GET), every offered scope is ticked."""
    source = request.args if request.method == "GET" else request.form
    if user.role == proxy.ROLE:
        return _proxy_page(c, session, user, client, request_id, offered, picker, status, message, picker_message)
    search = (source.get("patient_search") or "").strip()[:100]
    ticked = set(offered) if request.method == "GET" else set(request.form.getlist("scope"))
    chosen_id = request.form.get("patient") if request.method == "POST" else None
    chosen = _patient_summary(c, chosen_id, user) if picker and chosen_id else None
    patients = []
    if picker and search:
        patients, problem = _search_patients(c, user, search)
        picker_message = picker_message or problem
        if not patients and not picker_message:
            picker_message = "No patient matches that name or UHID."
    if chosen is not None and all(p["id"] != chosen["id"] for p in patients):
        patients.insert(0, chosen)          # the chosen patient stays on the page, by name
    own = _own_patient(user) if user.role == "patient" else None
    label = None
    if own and "launch/patient" in offered:
        label = _patient_summary(c, own)
    elif pending_launch := (c.store.get_record(REQUEST_KIND, request_id) or {}).get("launch"):
        label = _patient_summary(c, pending_launch.get("patient"), user) if "launch" in offered else None
    return pages.render("consent", status, action="/auth/consent", csrf=session.csrf, request_id=request_id,
                        app_name=client.name, username=user.username, signed_in_as=user.username,
                        message=message, picker=picker, picker_message=picker_message,
                        search=search, patients=patients, chosen=chosen["id"] if chosen else None,
                        chosen_patient=chosen,
                        patient_label=_label(label) if label else None,
                        scopes=[{"raw": s, "text": pages.describe_scope(s), "ticked": s in ticked} for s in offered])


def _delegating(c, user) -> list[str]:
    """The Patients whose delegation to this proxy is live now (governance/proxy.py)."""
    return proxy.delegating_patients(c.store, proxy.related_person_of(user.fhir_user))


def _proxy_page(c, session, user, client, request_id, offered, picker, status, message, picker_message):
    """The consent page of a family proxy: the picker lists exactly the patients who delegated to
    them (no search: a proxy cannot look for anyone else)."""
    ticked = set(offered) if request.method == "GET" else set(request.form.getlist("scope"))
    summaries = (_patient_summary(c, pid) for pid in _delegating(c, user)) if picker else ()
    patients = [p for p in summaries if p is not None]
    chosen_id = request.form.get("patient") if request.method == "POST" else None
    chosen = next((p for p in patients if p["id"] == chosen_id), None)
    if picker and not patients and not picker_message:
        picker_message = "Nobody has given you access to their record (a delegation) at the moment."
    return pages.render("consent", status, action="/auth/consent", csrf=session.csrf, request_id=request_id,
                        app_name=client.name, username=user.username, signed_in_as=user.username,
                        message=message, picker=picker, proxy_picker=True, picker_message=picker_message,
                        search="", patients=patients, chosen=chosen["id"] if chosen else None,
                        chosen_patient=chosen, patient_label=None,
                        scopes=[{"raw": s, "text": pages.describe_scope(s), "ticked": s in ticked} for s in offered])


def _label(summary: dict) -> str:
    return summary["name"] + (f" (UHID {summary['uhid']})" if summary.get("uhid") else "")


def _patient_summary(c, patient_id, user=None) -> dict | None:
    """{id, name, birth_date, uhid} of an existing Patient, or None; with `user`, only of a Patient that
    user's own rights reach (_picker_guard)."""
    if not (_reachable(c, user, patient_id) if user is not None else launches.exists(c.store, "Patient", patient_id)):
        return None
    return _summary(c, patient_id, json.loads(c.store.read("Patient", patient_id).body))


def _picker_guard(c, user):
    """The guard of the picker's look-ups: the Patients the user's own rights reach (a hospital's
    practitioner: what its organisation holds, what patients share with it, an emergency session's
    patient; docs/governance.md), so the picker names nobody whom no request of the user may read (and
    whose record the launched app could not read either). None: an account of no organisation."""
    return launches.user_guard(c, _user_claims(user), "Patient", "search-type")


def _reachable(c, user, patient_id) -> bool:
    """An existing Patient inside the picker's guard."""
    return launches.reached(c, _user_claims(user), "Patient", patient_id)


def _user_claims(user) -> dict:
    return {"sub": user.username, "role": user.role, "fhirUser": user.fhir_user, "organization": user.organization}


def _summary(c, patient_id: str, body: dict) -> dict:
    return {"id": patient_id, "name": _display_name(body), "birth_date": body.get("birthDate"),
            "uhid": uhid_identifier.value_of(body, c.uhid_system)}


def _search_patients(c, user, text: str) -> tuple[list[dict], str | None]:
    """Patients matching the picker's text, and a problem to show beside the picker: a UHID in any
    typed form (with or without dashes or spaces), else every word of a name ("Asha Sharma": each
    word must match some part of the name), plus a Patient whose id is the text; only Patients the
    user's rights reach (_picker_guard)."""
    digits_only = re.fullmatch(r"[\d\s\-‐‑‒–—.]+", text) is not None
    if digits_only:
        try:
            value = uhid_number.canonical(text)
        except uhid_number.InvalidUhid as e:
            return [], str(e)
        params = [("identifier", f"{c.uhid_system}|{value}")]
    else:
        words = text.split()[:5]
        params = [("name", w) for w in words]
    try:
        query = parse_search("Patient", params).query
        page = c.store.search("Patient", query, limit=PICKER_RESULTS, total="none", guard=_picker_guard(c, user))
    except BadRequest:
        return [], "That search could not be understood; type a name or a UHID."
    found = [_summary(c, v.id, json.loads(v.body)) for v in page.items]
    if not digits_only and all(p["id"] != text for p in found):
        by_id = _patient_summary(c, text, user)
        if by_id is not None:
            found.insert(0, by_id)
    return found, None


def _display_name(patient: dict) -> str:
    for name in patient.get("name") or []:
        if name.get("text"):
            return name["text"]
        parts = list(name.get("given") or []) + ([name["family"]] if name.get("family") else [])
        if parts:
            return " ".join(parts)
    return "(no name)"
