"""Operations over HTTP: [base]/$op, [base]/[type]/$op, [base]/[type]/[id]/$op (operations.html)."""
from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from .. import operations
from . import ctx
from .negotiation import json_body, response_type, wants_html
from .rendering import json_response

blp = Blueprint("operations", __name__, url_prefix="/fhir",
                description="Operations ($lookup, $validate, $match, $health-card)")


def _run(rtype, id, name):
    html = operations.offers_page(name) and wants_html()      # a browser asking for the page
    media = None if html else response_type()
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    body = json_body() if request.method == "POST" and has_body else None     # an empty POST: no parameters
    result = operations.invoke(ctx(), name, rtype, id, list(request.args.items(multi=True)), body, request.method,
                               html)
    if isinstance(result, operations.Raw):
        return Response(result.data, content_type=result.media_type, headers={"Cache-Control": "no-store"})
    return json_response(result, media_type=media)


@blp.route("/$<name>", methods=["GET", "POST"])
def system_operation(name):
    """An operation at system level."""
    return _run(None, None, name)


@blp.route("/<rtype:type>/$<name>", methods=["GET", "POST"])
def type_operation(type, name):
    """An operation at type level, e.g. CodeSystem/$lookup, Patient/$validate."""
    return _run(type, None, name)


@blp.route("/<rtype:type>/<id>/$<name>", methods=["GET", "POST"])
def instance_operation(type, id, name):
    """An operation on one resource, e.g. Patient/123/$validate."""
    return _run(type, id, name)
