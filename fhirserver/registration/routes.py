"""/register and /register/confirm (the web pages) and POST /api/registrations and
/api/registrations/confirm (JSON), open to anyone unless the self_registration setting is off.
Registering answers alike for everyone and continues by a code sent to the phone or email
(service.py, outbox.py). The page's form is CSRF-protected by a double-submitted token
(a SameSite=Strict cookie that must equal the form's hidden field)."""
from __future__ import annotations

import base64
import hmac
import json
import secrets

from flask import Blueprint, Response, request
from flask_smorest import Blueprint as ApiBlueprint

from .. import jsonio, rate_limit
from ..errors import FhirError, NotFound
from ..governance import family_invite
from ..health_cards import qr
from ..resources import ctx
from ..resources.negotiation import read_body
from ..smart_auth import auth_audit
from . import form, pages, service

bp = Blueprint("registration", __name__)        # the web page
api_bp = ApiBlueprint("registrations", __name__, description="Self-registration: a Patient with a UHID, "
                      "the patient account and the first health card (docs/uhid.md)")
COOKIE = "medport_register"
_FIELDS = ("given", "family", "birthDate", "gender", "phone", "email", "uhid", "claimCode", "emergencyContactName",
           "emergencyContactPhone", "emergencyContactRelationship", "allergies", "conditions")


def _enabled():
    if ctx().settings.self_registration != "on":
        raise NotFound("Self-registration is switched off on this server; ask your hospital to register you")


def _count_attempt():
    """Registrations (and claims) per client address are limited: bulk sign-ups and guessing."""
    c = ctx()
    rate_limit.attempt(c.store, "registration", request.remote_addr or "-", c.settings.registration_limit)


ACCEPTED = ("If these details can be registered, a message with a confirmation code has been sent to the "
            "phone or email you gave (and if you are registered already, a message saying so). Enter the "
            "code to finish; it is valid for 30 minutes.")


@api_bp.route("/api/registrations", methods=["POST"])
def register_api():
    """Register a person. JSON in (given, family, birthDate, gender, phone and/or email, password;
    optional emergencyContactName/Phone/Relationship, allergies, conditions, confirmNewIdentity):
    202 with the same body whoever is or is not registered already; the outcome goes to the phone
    or email (the outbox), with a code for POST /api/registrations/confirm. A claim (uhid with
    claimCode) is answered at once: 201 as for a confirmation. 400 naming each bad field, 429 past
    the per-address limit."""
    _enabled()
    _count_attempt()
    c = ctx()
    data = jsonio.loads(read_body(c.settings.max_body_bytes), c.settings.max_json_depth)
    done = service.register(c, form.parse(data))
    if done is None:
        return Response(json.dumps({"status": "pending", "message": ACCEPTED}), status=202,
                        content_type="application/json", headers={"Cache-Control": "no-store"})
    return _registered(c, done)


@api_bp.route("/api/registrations/confirm", methods=["POST"])
def confirm_api():
    """Finish a registration with the code sent to the person's phone or email: JSON {"code"}; 201
    with the Patient reference, the UHID, the username and the health card; 404 for an unknown,
    used or expired code; 409 if the same person was registered meanwhile; 429 past the limit."""
    _enabled()
    _count_attempt()
    c = ctx()
    data = jsonio.loads(read_body(c.settings.max_body_bytes), c.settings.max_json_depth)
    code = data.get("code") if isinstance(data, dict) else None
    return _registered(c, service.confirm(c, code if isinstance(code, str) else ""))


@api_bp.route("/api/registrations/family", methods=["POST"])
def family_api():
    """Redeem a family invitation (Patient/[id]/$invite-family, docs/auth.md "Family proxy"): JSON
    {"code", "password"}; 201 with the username of the new related-person account, which acts for the
    patient while her delegation stays live; 404 for an unknown, used or expired code; 429 past the
    per-address limit."""
    _enabled()
    _count_attempt()
    c = ctx()
    data = jsonio.loads(read_body(c.settings.max_body_bytes), c.settings.max_json_depth)
    data = data if isinstance(data, dict) else {}
    username = family_invite.redeem(c.store, data.get("code"), data.get("password"))
    auth_audit.family_registered(c.store, username)
    return Response(json.dumps({"username": username}), status=201, content_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _registered(c, done) -> Response:
    body = {"patient": f"Patient/{done.patient_id}", "uhid": done.uhid, "username": done.username,
            "claimed": done.claimed, "healthCard": {"verifiableCredential": [done.card]} if done.card else None,
            "qr": qr.to_numeric(done.card) if done.card else None}
    return Response(json.dumps(body), status=201, content_type="application/json",
                    headers={"Location": f"{c.base}/Patient/{done.patient_id}", "Cache-Control": "no-store"})


@bp.route("/register", methods=["GET"])
def register_page():
    _enabled()
    token = secrets.token_urlsafe(24)
    return pages.render("form", csrf=token, v={}, genders=form.GENDERS, messages=[], cookies={COOKIE: token})


@bp.route("/register", methods=["POST"])
def register_submit():
    _enabled()
    values = {k: request.form.get(k, "") for k in _FIELDS}
    if not _csrf_ok():
        return _form(values, ["This form has expired; please submit it again."], 400)
    try:
        _count_attempt()
        done = service.register(ctx(), form.parse({**values, "password": request.form.get("password", ""),
                                                   "confirmNewIdentity": request.form.get("confirmNewIdentity")}))
    except FhirError as e:          # each problem next to its field, in plain words
        fields, general = form.page_errors(e.issues)
        return _form(values, general, e.status, headers=e.headers, errors=fields)
    if done is None:           # the same page for everyone: the outcome is in the message
        return _confirm_form([], 200)
    return _card(done, values)


@bp.route("/register/confirm", methods=["POST"])
def confirm_submit():
    _enabled()
    if not _csrf_ok():
        return _confirm_form(["This form has expired; please submit it again."], 400)
    try:
        _count_attempt()
        done = service.confirm(ctx(), request.form.get("code", ""))
    except FhirError as e:
        return _confirm_form([i.diagnostics for i in e.issues], e.status, headers=e.headers)
    return _card(done, {})


def _csrf_ok() -> bool:
    cookie, sent = request.cookies.get(COOKIE, ""), request.form.get("csrf", "")
    return bool(cookie) and hmac.compare_digest(cookie, sent)


def _card(done, values: dict) -> Response:
    file = json.dumps({"verifiableCredential": [done.card]}).encode() if done.card else None
    return pages.render("card", 201, uhid=done.uhid, username=done.username, claimed=done.claimed,
                        name=f"{values.get('given', '')} {values.get('family', '')}".strip(),
                        birth_date=values.get("birthDate", ""), issuer=ctx().base,
                        png=base64.b64encode(qr.png(qr.to_numeric(done.card))).decode() if done.card else None,
                        file=base64.b64encode(file).decode() if file else None)


def _confirm_form(messages: list[str], status: int, headers: dict | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = pages.render("confirm", status, csrf=token, messages=messages, accepted=ACCEPTED,
                            cookies={COOKIE: token})
    response.headers.update(headers or {})
    return response


def _form(values: dict, messages: list[str], status: int, headers: dict | None = None, **extra) -> Response:
    token = secrets.token_urlsafe(24)
    response = pages.render("form", status, csrf=token, v=values, genders=form.GENDERS, messages=messages,
                            cookies={COOKIE: token}, **extra)
    response.headers.update(headers or {})      # Retry-After of a 429
    return response


def install(app, api) -> None:
    app.register_blueprint(bp)
    api.register_blueprint(api_bp)
