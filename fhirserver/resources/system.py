"""System level: [base]/metadata, batch/transaction, system search and [base]/_history."""
from __future__ import annotations

import datetime

from flask import request
from flask_smorest import Blueprint

from ..audit_log import trail
from ..errors import BadRequest, UnsupportedMediaType
from ..interactions import batch as batch_i
from ..interactions import capabilities as capabilities_i
from ..interactions import history as history_i
from ..interactions import search as search_i
from ..interactions import transaction as transaction_i
from . import ctx
from .bundle_response import response_bundle
from .negotiation import json_body, prefer, response_type
from .rendering import history_bundle, json_response, searchset_bundle
from .type_level import self_params, x_provenance

blp = Blueprint("system", __name__, url_prefix="/fhir", description="System-level interactions")
_STARTED = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@blp.route("/metadata")
def metadata():
    """capabilities: the CapabilityStatement of this server (?mode=terminology: its TerminologyCapabilities)."""
    media = response_type()
    return json_response(capabilities_i.capabilities(ctx().settings, _STARTED, request.args.get("mode")),
                         media_type=media)


@blp.route("/", methods=["POST"])
def batch_or_transaction():
    """batch or transaction: POST a Bundle of type batch or transaction to the base."""
    media = response_type()
    provenance = x_provenance()
    bundle = json_body()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base URL takes a Bundle of type batch or transaction")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise BadRequest(f"Bundle.type must be batch or transaction, not {kind!r}")
    trail.set_interaction(kind)
    # entries are validated one by one, so that errors name the entry (and a batch keeps going)
    with search_i.handling(prefer().strict):     # for the searches and history of its GET entries
        results = (transaction_i.transaction if kind == "transaction" else batch_i.batch)(ctx(), bundle, provenance)
    ret = prefer().ret if "return=" in request.headers.get("Prefer", "") else "minimal"
    return json_response(response_bundle(kind, results, ret), media_type=media)


@blp.route("/", methods=["GET"])
def system_search():
    """system search: GET [base]?_type=Patient,Observation&... (search.html#all)."""
    return _system_search(list(request.args.items(multi=True)))


@blp.route("/_search", methods=["POST"])
def system_search_post():
    """system search with parameters in a form body."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("POST _search needs Content-Type application/x-www-form-urlencoded")
    return _system_search(list(request.args.items(multi=True)) + list(request.form.items(multi=True)))


def _system_search(params):
    media = response_type()
    result = search_i.system_search(ctx(), params, prefer().lenient)
    return json_response(searchset_bundle("", self_params(result), result), media_type=media)


@blp.route("/_history")
def system_history():
    """history of every resource on the server, newest first."""
    media = response_type()
    params = search_i.history_params(list(request.args.items(multi=True)), prefer().strict)
    page = history_i.history(ctx(), None, None, params)
    return json_response(history_bundle("_history", params, page), media_type=media)
