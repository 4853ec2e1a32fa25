"""EHR launch ids (SMART App Launch 2.2 "EHR Launch": the EHR opens the app with iss and launch).

POST /auth/launch, called by the EHR side with a practitioner's or admin's bearer token and a JSON
body {"patient": id, "encounter": id?, "fhirContext": [...]?}, records the launch context (kind
"launch", one hour) and answers {"launch": id, "iss": base_url}. The authorization endpoint later
accepts `launch=<id>` only if it was issued here, and puts the context into the token response.
"""
from __future__ import annotations

import secrets
import time

from flask import jsonify, request

from .. import jsonio
from ..errors import BadRequest, PayloadTooLarge, Unauthorized
from ..interactions.common import ID_RE
from ..resources import ctx
from ..resources.negotiation import read_body
from ..search import query as q
from . import tokens
from .access import Access
from .bearer import challenge
from .keys import SigningKeys

KIND = "launch"
LIFETIME_S = 3600
MAX_BODY = 16 * 1024
MAX_CONTEXT_ITEMS = 20
LAUNCH_ROLES = ("practitioner", "admin")


def get(store, launch_id: str) -> dict | None:
    """The launch context {patient, encounter, fhirContext, created_by}, or None if unknown/expired."""
    if not isinstance(launch_id, str) or not launch_id or len(launch_id) > 128:
        return None
    return store.get_record(KIND, launch_id)


def create(store, patient: str, encounter: str | None = None, fhir_context: list | None = None,
           created_by: str | None = None) -> str:
    launch_id = secrets.token_urlsafe(24)
    store.put_record(KIND, launch_id, {"patient": patient, "encounter": encounter,
                                       "fhirContext": fhir_context, "created_by": created_by},
                     expires_at=time.time() + LIFETIME_S)
    return launch_id


def exists(store, rtype: str, rid) -> bool:
    if not isinstance(rid, str) or not ID_RE.match(rid):
        return False
    version = store.read(rtype, rid)
    return version is not None and not version.deleted


def launch_view():
    """POST /auth/launch."""
    c = ctx()
    token = tokens.bearer(request.headers.get("Authorization"))
    if token is None:
        return _error("invalid_token", "A bearer access token is required", 401, anonymous=True)
    try:
        claims = tokens.verify(SigningKeys(c.store), c.store, token, c.base, c.base)
    except Unauthorized as e:
        return _error("invalid_token", str(e), 401)
    if claims.get("role") not in LAUNCH_ROLES:
        return _error("insufficient_scope", "Only practitioners and administrators may create launches", 403)
    try:      # read at most MAX_BODY + 1 bytes: a chunked body has no Content-Length to refuse it by
        body = jsonio.loads(read_body(MAX_BODY) or b"null", max_depth=10)
    except PayloadTooLarge:
        return _error("invalid_request", "The request body is too large", 413)
    except BadRequest as e:
        return _error("invalid_request", str(e), 400)
    if not isinstance(body, dict):
        return _error("invalid_request", 'The body must be a JSON object {"patient": id, ...}', 400)
    patient, encounter, fhir_context = body.get("patient"), body.get("encounter"), body.get("fhirContext")
    user = {k: claims.get(k) for k in ("sub", "role", "fhirUser", "organization")}
    if not reached(c, user, "Patient", patient):
        return _error("invalid_request", "The patient does not exist", 400)
    if encounter is not None and not reached(c, user, "Encounter", encounter):
        return _error("invalid_request", "The encounter does not exist", 400)
    if fhir_context is not None and not (
            isinstance(fhir_context, list) and len(fhir_context) <= MAX_CONTEXT_ITEMS
            and all(isinstance(item, dict) and item for item in fhir_context)):
        return _error("invalid_request", f"fhirContext must be a list of at most {MAX_CONTEXT_ITEMS} objects", 400)
    launch_id = create(c.store, patient, encounter, fhir_context, created_by=claims.get("sub"))
    response = jsonify({"launch": launch_id, "iss": c.base})
    response.headers["Cache-Control"] = "no-store"
    return response


def user_guard(c, user: dict, rtype: str, interaction: str = "read"):
    """The guard of rtype under a signed-in user's own rights (user: their sub, role, fhirUser and
    organization claims), whatever the scopes of the token or app at hand (docs/governance.md: a
    hospital's practitioner reads what its organisation holds and what patients share with it)."""
    claims = {**user, "scope": f"user/{rtype}.rs"}
    return Access.from_claims(claims, c.settings.sharing_default, c.store).guard(interaction)


def reached(c, user: dict, rtype: str, rid) -> bool:
    """An existing rtype/rid inside the user's own rights (user_guard): a launch names no record its
    user may not read, and one outside them answers as one that does not exist (no oracle; the
    consent page shows the launch's patient)."""
    if not exists(c.store, rtype, rid):
        return False
    guard = user_guard(c, user, rtype)
    return bool(c.store.search(rtype, q.IdIn((rid,)), limit=1, total="none", guard=guard).items)


def _error(code: str, description: str, status: int, anonymous: bool = False):
    """RFC 6750 3: a refused bearer token (401 invalid_token, 403 insufficient_scope) gets a challenge,
    without an error code when no token was sent (3.1)."""
    response = jsonify({"error": code, "error_description": description})
    if status in (401, 403):
        response.headers.update(challenge(ctx().base, None if anonymous else code))
    return response, status
