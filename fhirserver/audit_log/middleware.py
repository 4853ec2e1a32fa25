"""Every request's audit trail (trail.py), opened before anything else runs (authentication included,
so a refused token is recorded too) and stored before the response leaves (docs/audit.md).

If the events cannot be stored the client gets 503 with an OperationOutcome instead of the answer
(a write's own events were stored in its unit of work: had that failed, nothing was committed).
MEDPORT_AUDIT_ACCESS=off records only the sensitive acts (fhirserver/audit.py).
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Flask, g, request

from ..errors import Issue, operation_outcome
from . import balp, journal, trail
from .group_commit import GroupCommit

log = logging.getLogger("medport.audit_trail")
CONFINED_ROLES = ("patient", "related-person")   # accounts whose tokens reach one patient's record


def install(app: Flask) -> None:
    ctx = app.config["MEDPORT"]
    if ctx.settings.audit_access != "on":
        return
    base = ctx.settings.base_url
    group = GroupCommit(ctx.store, base)    # the app's: its requests share their appends

    @app.before_request
    def _open_trail():
        req, here = request._get_current_object(), g._get_current_object()   # each proxy lookup costs
        path, method = req.path, req.method
        if method == "OPTIONS" or path.startswith(trail.UNAUDITED):
            return
        fhir = path == "/fhir" or path.startswith("/fhir/")
        query = req.query_string.decode("utf-8", "replace") if fhir else None
        rid = here.get("request_id")
        here.medport_audit_trail = trail._current.set(
            trail.Trail(base, method, path[len("/fhir"):] if fhir else None, query, rid, actor_now))
        group.begin()
        here.medport_audit_counted = True

    @app.after_request
    def _store_trail(response):
        current = trail.current()
        if current is None:
            return response
        try:
            current.top.status = response.status_code
            if current.top.call.code.startswith("search") and request.method == "POST" \
                    and response.status_code not in (401, 413):
                current.top.query = _query()      # a POST _search's form (never a refused token's, nor a huge one)
            if response.status_code >= 400 and not response.is_streamed:
                current.top.description = current.top.description or trail.error_text(response.get_data())
            events = current.pending()
            if events:
                counted = g.pop("medport_audit_counted", False)
                group.submit(events, began=counted)
        except Exception:                   # noqa: BLE001 - the answer must not leave unaudited
            log.exception("audit write failed (request id %s)", g.get("request_id"))
            return _unavailable()
        return response

    @app.teardown_request
    def _close_trail(_exc=None):
        here = g._get_current_object()
        token = here.pop("medport_audit_trail", None)
        if token is not None:
            trail._current.reset(token)
        if here.pop("medport_audit_counted", False):
            group.end()


def install_drain(app: Flask) -> None:
    """Read-your-audit: a request that reads the audit trail first drains the journal (journal.py),
    once its token is known to be good (installed after authentication)."""
    ctx = app.config["MEDPORT"]
    if ctx.settings.audit_access != "on":
        return

    @app.before_request
    def _drain_for_readers():
        current = trail.current()
        if current is not None and reads_the_trail(current.top.call):
            journal.drain_quietly(ctx.store, ctx.settings.base_url)


def reads_the_trail(call) -> bool:
    """Whether an interaction may answer with AuditEvents (a bundle's entries excepted: they wait for
    the next drain, at most MEDPORT_AUDIT_INTEGRATION_S)."""
    return call.type == "AuditEvent" or call.code in ("search-system", "history-system") or \
        (call.operation or "").startswith(("$access-report", "$audit-"))


def actor_now() -> balp.Actor:
    """Who makes the current request, from its verified token (smart_auth/bearer.py)."""
    here = g._get_current_object()
    ctx = here.get("medport_ctx")
    access = getattr(ctx, "access", None)
    claims = (access.claims if access is not None else None) or here.get("token_claims") or {}
    base = ctx.base if ctx is not None else ""
    user = None
    if claims.get("role"):
        fhir_user = str(claims.get("fhirUser") or "")
        user = {"reference": fhir_user.removeprefix(base + "/")} if fhir_user else \
            {"identifier": {"system": f"{base}/sid/user", "value": str(claims.get("sub") or "")}}
    purpose = []
    if access is not None and access.emergency_used:
        purpose.append({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG",
                                    "display": "break the glass"}]})
    return balp.Actor(client_id=claims.get("client_id"), user=user,
                      alt_id=str(claims["sub"]) if claims.get("role") and claims.get("sub") else None,
                      address=request.remote_addr, purpose=purpose,
                      organization=getattr(access, "organization", None),
                      patient_context=claims.get("patient") or getattr(access, "patient", None),
                      confined=claims.get("role") in CONFINED_ROLES)


def _query() -> str | None:
    """The query as sent: the URL's, and a POST _search's form body."""
    raw = request.query_string.decode("utf-8", "replace")
    form = urlencode(list(request.form.items(multi=True)))
    return request.path[len("/fhir/"):] + "?" + "&".join(p for p in (raw, form) if p)


def _unavailable():
    from ..resources.errorhandlers import _outcome_response
    rid = g.get("request_id", "-")
    issue = Issue(f"The audit trail could not be written, so the answer is withheld; retry later "
                  f"(request id {rid})", "transient")
    return _outcome_response(operation_outcome([issue]), 503, {"Retry-After": "1"})
