"""Patient/[id]/$break-glass: emergency access of the calling practitioner to this patient's whole
record for a limited time (profiles/operations/Patient-break-glass.json; governance/break_glass.py;
docs/governance.md, "Break the glass").

Only a practitioner's token whose account holds the break-glass privilege may call it (403 for
everyone else, before anything about the patient is looked at). The patient is by design outside the
caller's view, so the instance is not read through the caller's guard: a privileged caller learns
whether the Patient exists (404 if not; the privilege is the bound). Expired sessions of every
user are closed (and audited) on each call.
"""
from __future__ import annotations

import datetime

from ..errors import BadRequest, Forbidden, NotFound
from ..governance import break_glass
from ..smart_auth.access import UNRESTRICTED
from ..smart_auth.accounts import Users
from .parameters import first

ACTIONS = ("start", "stop")


def break_glass_operation(ctx, rtype, id, params: dict) -> dict:
    username = _privileged(ctx)
    action = first(params, "action", "start")
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}, not {action!r}", expression=("action",))
    break_glass.close_expired(ctx)
    if action == "stop":
        event = break_glass.stop(ctx, username, id, "stopped by the user")
        if event is None:
            raise NotFound(f"You have no emergency access session for Patient/{id}")
        return _answer("stop", None, event)
    reason = first(params, "reason")
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest("Breaking the glass needs a reason (parameter 'reason', a string)", expression=("reason",))
    if len(reason) > break_glass.MAX_REASON:
        raise BadRequest(f"The reason may be at most {break_glass.MAX_REASON} characters", expression=("reason",))
    longest = ctx.settings.break_glass_minutes
    minutes = _minutes(first(params, "duration", longest), longest)
    # by design outside the caller's view (the privilege is the bound): read as the server
    current = ctx.acting_as(UNRESTRICTED).repo.read("Patient", id)
    if current is None or current.deleted:
        raise NotFound(f"Patient/{id} is not known")
    entry, event = break_glass.start(ctx, username, id, reason.strip(), minutes)
    return _answer("start", entry["expires"], event)


def _privileged(ctx) -> str:
    """The username of a practitioner's token whose account holds the privilege, else 403."""
    claims = ctx.access.claims
    user = Users(ctx.store).active(claims.get("sub")) if ctx.access.grants is not None else None
    if user is None or claims.get("role") != "practitioner" or user.role != "practitioner" or not user.break_glass:
        raise Forbidden("Breaking the glass needs a practitioner's token whose account holds the break-glass "
                        "privilege (docs/governance.md)")
    ctx.repo.allow("read", "Patient")
    return user.username


def _minutes(value, longest: int) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise BadRequest("duration must be a whole number of minutes", expression=("duration",)) from None
    if isinstance(value, bool) or not 1 <= minutes <= longest:
        raise BadRequest(f"duration must be 1 to {longest} minutes", expression=("duration",))
    return minutes


def _answer(action: str, expires: float | None, event: str) -> dict:
    out = [{"name": "action", "valueCode": action}]
    if expires is not None:
        when = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(timespec="seconds")
        out.append({"name": "expires", "valueInstant": when})
    out.append({"name": "auditEvent", "valueReference": {"reference": f"AuditEvent/{event}"}})
    return {"resourceType": "Parameters", "parameter": out}
