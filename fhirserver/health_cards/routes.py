"""Health cards over HTTP, both open like the CapabilityStatement (a verifier needs no account):

- GET  /fhir/.well-known/jwks.json: the issuer's public keys (https://spec.smarthealth.cards/#protocol-details),
  with CORS (the .well-known prefix is a CORS path of smart_auth.routes);
- POST /fhir/$verify-health-card: checks a card sent as {"jws": ...}, {"qr": "shc:/..."}, a
  .smart-health-card file, a Parameters with jws or qr, or the plain shc:/ text. The answer is a
  Parameters (valid, issuer, name, birthDate, uhid, each problem in words): 200 whatever the card's
  verdict, 400 when no card was sent.
Patient/[id]/$health-card, which needs rights on the patient, is an ordinary operation
(fhirserver/operations/health_card.py)."""
from __future__ import annotations

import json

from flask import Response
from flask_smorest import Blueprint

from .. import jsonio
from ..errors import BadRequest, NotFound
from ..resources import ctx
from ..resources.negotiation import read_body
from ..resources.rendering import json_response
from . import revocation
from .checking import summary, verify_card
from .issuer_keys import IssuerKeys

bp = Blueprint("health_cards", __name__, description="SMART Health Cards: issuer keys and verification (open)")
MAX_BODY = 1 << 20      # cards are a few KiB; a file of ten is far below this (413 above)


@bp.route("/fhir/.well-known/jwks.json", methods=["GET"])
def jwks():
    """The health card issuer's public keys (JWKS), each with its revocation list's version."""
    store = ctx().store
    keys, ctr = IssuerKeys(store).jwks(), revocation.version(store)
    for key in keys["keys"] if ctr else ():
        key["crlVersion"] = ctr
    return Response(json.dumps(keys), content_type="application/json", headers={"Cache-Control": "max-age=300"})


@bp.route("/fhir/.well-known/crl/<kid>.json", methods=["GET"])
def revocation_list(kid):
    """The revocation list of one issuer key (https://spec.smarthealth.cards/#revocation)."""
    store = ctx().store
    if kid not in {k["kid"] for k in IssuerKeys(store).jwks()["keys"]} or not revocation.version(store):
        raise NotFound(f"No revocation list for key {kid}")
    return Response(json.dumps(revocation.crl(store, kid)), content_type="application/json",
                    headers={"Cache-Control": "max-age=300"})


@bp.route("/fhir/$verify-health-card", methods=["POST"])
def verify_health_card():
    """Check a card: {"jws": ...}, {"qr": "shc:/..."}, a .smart-health-card file, a Parameters with jws or
    qr, or the plain shc:/ text. 200 with a Parameters: valid, issuer, name, birthDate, uhid, problems."""
    c = ctx()
    card = _card(read_body(min(c.settings.max_body_bytes, MAX_BODY)), c.settings.max_json_depth)
    return json_response(summary(verify_card(c, card)))


def _card(body: bytes, max_depth: int) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        raise BadRequest("Send a card: {\"jws\": ...}, {\"qr\": \"shc:/...\"}, a .smart-health-card file or shc:/ text")
    if not text.startswith("{"):
        return text
    data = jsonio.loads(body, max_depth)
    if isinstance(data, dict) and data.get("resourceType") == "Parameters":
        parameters = data.get("parameter") if isinstance(data.get("parameter"), list) else []
        data = {p["name"]: p.get("valueString") for p in parameters
                if isinstance(p, dict) and isinstance(p.get("name"), str)}
    if isinstance(data, dict) and "verifiableCredential" in data:
        return text                     # a .smart-health-card file: verify() reads every card in it
    card = data.get("jws") or data.get("qr") if isinstance(data, dict) else None
    if not isinstance(card, str):
        raise BadRequest("The body names no card: give 'jws' (the compact JWS) or 'qr' (the shc:/ text)")
    return card


def install(api) -> None:
    api.register_blueprint(bp)
