"""/register (the web page) and POST /api/registrations (JSON), open to anyone unless the
self_registration setting is off. The page's form is CSRF-protected by a double-submitted token
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
from ..health_cards import qr
from ..resources import ctx
from ..resources.negotiation import read_body
from . import form, pages, service

bp = Blueprint("registration", __name__)        # the web page
api_bp = ApiBlueprint("registrations", __name__, description="Self-registration: a Patient with a UHID, "
                      "the patient account and the first health card (docs/uhid.md)")
COOKIE = "medport_register"
_FIELDS = ("given", "family", "birthDate", "gender", "phone", "email", "uhid", "claimCode", "emergencyContactName",
           "emergencyContactPhone", "emergencyContactRelationship", "allergies", "conditions", "username")


def _enabled():
    if ctx().settings.self_registration != "on":
        raise NotFound("Self-registration is switched off on this server; ask your hospital to register you")


def _count_attempt():
    """Registrations (and claims) per client address are limited: bulk sign-ups and guessing."""
    c = ctx()
    rate_limit.attempt(c.store, "registration", request.remote_addr or "-", c.settings.registration_limit)


@api_bp.route("/api/registrations", methods=["POST"])
def register_api():
    """Register a person. JSON in (given, family, birthDate, gender, phone and/or email, username,
    password; optional emergencyContactName/Phone/Relationship, allergies, conditions, uhid with
    claimCode, confirmNewIdentity); 201 with the Patient reference, the UHID, the username and the
    health card; 400 naming each bad field, 409 for a possible duplicate (with the choices) or a
    taken username, 429 past the per-address limit."""
    _enabled()
    _count_attempt()
    c = ctx()
    data = jsonio.loads(read_body(c.settings.max_body_bytes), c.settings.max_json_depth)
    done = service.register(c, form.parse(data))
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
    cookie, sent = request.cookies.get(COOKIE, ""), request.form.get("csrf", "")
    if not cookie or not hmac.compare_digest(cookie, sent):
        return _form(values, ["This form has expired; please submit it again."], 400)
    try:
        _count_attempt()
        done = service.register(ctx(), form.parse({**values, "password": request.form.get("password", ""),
                                                   "confirmNewIdentity": request.form.get("confirmNewIdentity")}))
    except service.PossibleDuplicate as e:
        return _form(values, [e.issues[0].diagnostics], 409, duplicate=True,
                     choices=[i.diagnostics for i in e.issues[1:]])
    except FhirError as e:
        return _form(values, [i.diagnostics for i in e.issues], e.status, headers=e.headers)
    file = json.dumps({"verifiableCredential": [done.card]}).encode() if done.card else None
    return pages.render("card", 201, uhid=done.uhid, username=done.username, claimed=done.claimed,
                        name=f"{values['given']} {values['family']}".strip(),
                        birth_date=values["birthDate"], issuer=ctx().base,
                        png=base64.b64encode(qr.png(qr.to_numeric(done.card))).decode() if done.card else None,
                        file=base64.b64encode(file).decode() if file else None)


def _form(values: dict, messages: list[str], status: int, headers: dict | None = None, **extra) -> Response:
    token = secrets.token_urlsafe(24)
    response = pages.render("form", status, csrf=token, v=values, genders=form.GENDERS, messages=messages,
                            cookies={COOKIE: token}, **extra)
    response.headers.update(headers or {})      # Retry-After of a 429
    return response


def install(app, api) -> None:
    app.register_blueprint(bp)
    api.register_blueprint(api_bp)
