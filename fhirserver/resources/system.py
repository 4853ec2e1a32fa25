"""System level: [base]/metadata and [base]/_history."""
from __future__ import annotations

import datetime

from flask import request
from flask_smorest import Blueprint

from ..capability import capability_statement
from ..interactions import history as history_i
from . import ctx
from .negotiation import response_type
from .rendering import history_bundle, json_response

blp = Blueprint("system", __name__, url_prefix="/fhir", description="System-level interactions")
_STARTED = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@blp.route("/metadata")
def metadata():
    """capabilities: the CapabilityStatement of this server."""
    return json_response(capability_statement(ctx().settings, _STARTED), media_type=response_type())


@blp.route("/_history")
def system_history():
    """history of every resource on the server, newest first."""
    media = response_type()
    params = list(request.args.items(multi=True))
    page = history_i.history(ctx(), None, None, params)
    return json_response(history_bundle("_history", params, page), media_type=media)
