"""Bulk Data export over HTTP (https://hl7.org/fhir/uv/bulkdata/export.html):

- kick-off: GET or POST [base]/$export, [base]/Patient/$export, [base]/Group/[id]/$export with
  Prefer: respond-async -> 202 and Content-Location (the status URL);
- status: GET [base]/bulk-status/[job] -> 202 (X-Progress, Retry-After) while it runs, 429 when
  polled faster than Retry-After allows, 200 with the manifest when done, 500 OperationOutcome if
  it failed; DELETE cancels (202; the job is then unknown: 404);
- files: GET [base]/bulk-files/[job]/[n].ndjson, application/fhir+ndjson.
Status and files answer only the client that started the export (others: 404, as if unknown); the
bearer check in front of every /fhir path asks a token for them when authorization is on
(requiresAccessToken).
"""
from __future__ import annotations

import time
from email.utils import formatdate

from flask import Response, request
from flask_smorest import Blueprint

from .. import bounds, jsonio
from ..errors import BadRequest, Issue, NotFound, TooManyRequests, operation_outcome
from ..interactions.common import now_instant
from ..resources import ctx
from ..resources.negotiation import json_body, prefer
from ..resources.rendering import json_response
from ..smart_auth.stored_claims import owner_of
from . import jobs, plan
from . import request as export_request
from .run import AUDIT

bp = Blueprint("bulk", __name__, url_prefix="/fhir", description="Bulk Data export (Bulk Data Access 3.0)")
NDJSON = "application/fhir+ndjson"
_ACCEPTED = ("application/fhir+json", "application/json", "*/*", "application/*")


@bp.route("/$export", methods=["GET", "POST"])
def system_export():
    """Export every resource the client may read (system level)."""
    return _kickoff("system")


@bp.route("/Patient/$export", methods=["GET", "POST"])
def patient_export():
    """Export the Patient compartments of every patient the client may read (or of `patient`)."""
    return _kickoff("patient")


@bp.route("/Group/<id>/$export", methods=["GET", "POST"])
def group_export(id):
    """Export the Patient compartments of a Group's members."""
    return _kickoff("group", id)


@bp.route("/bulk-status/<job_id>", methods=["GET", "DELETE"])
def status(job_id):
    """The export's progress (202), its manifest (200), or its error; DELETE cancels it."""
    c = ctx()
    job = _own(c, job_id)
    if request.method == "DELETE":
        if job["state"] in jobs.ACTIVE:
            jobs.cancel(c.store, job_id)
        else:
            jobs.remove(c.store, job)
        return json_response(_outcome(f"Export {job_id} cancelled; its files are deleted"), status=202)
    _polled(c, job_id)
    retry = str(c.settings.export_poll_s)
    if job["state"] in jobs.ACTIVE:
        running = Response(status=202, headers={"X-Progress": _progress(job), "Retry-After": retry})
        del running.headers["Content-Type"]         # no body: nothing to type (Flask would say text/html)
        return running
    if job["state"] == "failed":
        return json_response(_error_outcome(job.get("message") or "The export failed"), status=500)
    return Response(jsonio.dumps(_manifest(c, job)), status=200, content_type="application/json",
                    headers={"Expires": formatdate(job["expires"], usegmt=True)})


@bp.route("/bulk-files/<job_id>/<name>", methods=["GET"])
def file(job_id, name):
    """One NDJSON file of a finished export."""
    c = ctx()
    job = _own(c, job_id)
    item = _by_name(job, name)
    stream = c.store.blobs.open(item["key"])

    def chunks():
        with stream as f:
            while chunk := f.read(256 * 1024):
                yield chunk
    return Response(chunks(), content_type=NDJSON, direct_passthrough=True,
                    headers={"Content-Length": str(item["size"]), "Cache-Control": "no-store"})


def _kickoff(level: str, group: str | None = None):
    c = ctx()
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise BadRequest("A Bulk Data kick-off needs the header Prefer: respond-async (export.html#headers)")
    accept = request.headers.get("Accept")
    if accept and not any(a.split(";")[0].strip().lower() in _ACCEPTED for a in accept.split(",")):
        raise BadRequest(f"Accept {accept!r}: a kick-off answers application/fhir+json (export.html#headers)")
    plan.check_client(c.access)
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    body = json_body() if request.method == "POST" and has_body else None
    lenient = _lenient()
    req = export_request.read(level, group, list(request.args.items(multi=True)), body, c.base, c.terminology,
                              lenient)
    if level != "system":
        c.access.allow("read", "Patient")
    types = plan.types(c.access, req, lenient)
    patients = None
    if level == "group":
        c.access.allow("read", "Group")
        members = plan.group_members(c.repo, group)
        patients = plan.group_patients(req.patients, members, lenient) if req.patients else members
    elif req.patients:              # one the client may not see exports nothing, as one that does not exist
        patients = list(req.patients)
    if AUDIT in types:              # read-your-audit: every event recorded before the kick-off is in the store
        from ..audit_log.journal import drain_quietly
        drain_quietly(c.store, c.base)
    owner = owner_of(c.access.claims)
    if jobs.active_of(c.store, owner) >= c.settings.export_max_jobs:
        raise TooManyRequests(f"This client already has {c.settings.export_max_jobs} exports queued or running: "
                              "wait for one to finish or cancel one", headers={"Retry-After": "10"})
    job = jobs.new_job(c.store, claims=c.access.claims or None, request=req.as_json(), request_url=_kickoff_url(c),
                       transaction_time=now_instant(), types=types, patients=patients,
                       requires_token=c.settings.auth != "off")
    location = f"{c.base}/bulk-status/{job['id']}"
    issues = [Issue(f"Export accepted; poll {location}", "informational", "information")]
    if req.ignored:
        issues.append(Issue("Not supported, left out (Prefer: handling=lenient): " + ", ".join(req.ignored)[:500],
                            "not-supported", "warning"))
    return json_response(operation_outcome(issues), status=202, headers={"Content-Location": location})


def _kickoff_url(c) -> str:
    """The manifest's `request`: the kick-off's full URL as the client sent it, under this server's
    configured base URL (behind a proxy, Flask's request.url is the proxy's address for it)."""
    query = request.query_string.decode("latin-1")
    return c.base + request.path.removeprefix(bp.url_prefix) + (f"?{query}" if query else "")


def _lenient() -> bool:
    """Prefer: handling=lenient (RFC 7240; export.html#query-parameters). Unlike search, an export is
    strict unless the client asks: an ignored parameter would change what it receives."""
    return prefer().asked_lenient


def _own(c, job_id: str) -> dict:
    plan.check_client(c.access)          # a patient or user token of the same app is not the exporter
    job = jobs.get(c.store, job_id)
    if job is None or job.get("client") != owner_of(c.access.claims):
        raise NotFound(f"No export {job_id} (finished exports are kept until they expire)")
    return job


def _polled(c, job_id: str) -> None:
    """429 when polled more than twice as often as Retry-After asks (export.html#bulk-data-status-request)."""
    now, interval = time.time(), c.settings.export_poll_s
    last = c.store.get_record(jobs.POLL, job_id)
    if last is not None and now - last["at"] < interval / 2:
        raise TooManyRequests("Polled too often: wait Retry-After seconds between status requests",
                              headers={"Retry-After": str(interval)})
    c.store.put_record(jobs.POLL, job_id, {"at": now}, expires_at=now + 24 * 3600)


def _progress(job: dict) -> str:
    done = len(job["types"]) if job["state"] == "done" else job["progress"]["type_index"]
    return f"{job['state']}: {done} of {len(job['types'])} types, {len(job['output'])} files"[:99]


def _manifest(c, job: dict) -> dict:
    url = f"{c.base}/bulk-files/{job['id']}/"
    return {
        "transactionTime": job["transaction_time"],
        "request": job["request_url"],
        "requiresAccessToken": job["requires_token"],
        "output": [{"type": o["type"], "url": f"{url}{i}.ndjson", "count": o["count"]}
                   for i, o in enumerate(job["output"])],
        "deleted": [{"type": d["type"], "url": f"{url}deleted-{i}.ndjson", "count": d["count"]}
                    for i, d in enumerate(job["deleted"])],
        "error": [],
        **({"extension": {"auditLog": job["audit_log"]}} if job.get("audit_log") else {}),
    }


def _by_name(job: dict, name: str) -> dict:
    stem = name.removesuffix(".ndjson")
    listing, _, index = stem.rpartition("-") if stem.startswith("deleted-") else ("", "", stem)
    items = job["deleted"] if listing == "deleted" else job["output"]
    if job["state"] != "done" or not bounds.is_digits(index) or len(index) > 9 or int(index) >= len(items):
        raise NotFound(f"No file {name} in export {job['id']}")
    return items[int(index)]


def _outcome(text: str) -> dict:
    return operation_outcome([Issue(text, "informational", "information")])


def _error_outcome(text: str) -> dict:
    return operation_outcome([Issue(text, "exception")])


def install(api) -> None:
    api.register_blueprint(bp)
