"""Type level: [base]/[type] create, search, conditional update/patch/delete, history."""
from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from ..errors import BadRequest, UnsupportedMediaType
from ..governance import provenance as prov
from ..interactions import create as create_i
from ..interactions import delete as delete_i
from ..interactions import history as history_i
from ..interactions import patch as patch_i
from ..interactions import search as search_i
from ..interactions import update as update_i
from ..interactions.binary_content import externalize_data, pending_blob
from ..interactions.common import if_match_version
from . import ctx
from .binary_io import is_raw_upload, upload_raw_body
from .negotiation import json_body, patch_document, prefer, request_media_type, response_type
from .rendering import history_bundle, json_response, no_content, resource_response, searchset_bundle

blp = Blueprint("type", __name__, url_prefix="/fhir", description="Type-level interactions")


@blp.route("/<rtype:type>")
class TypeLevel(MethodView):
    def get(self, type):
        """search: a searchset Bundle of matching resources."""
        return _search(type, list(request.args.items(multi=True)))

    def post(self, type):
        """create with a server-assigned id; If-None-Exist makes it conditional. Binary accepts raw bytes."""
        media = response_type()
        provenance = x_provenance()
        if_none_exist = request.headers.get("If-None-Exist")
        if type == "Binary" and is_raw_upload():
            resource, blob = {"resourceType": "Binary", "contentType": request.mimetype}, upload_raw_body(ctx())
        else:
            resource = json_body()
            blob = externalize_data(ctx(), resource) if type == "Binary" and isinstance(resource, dict) else None
        with pending_blob(ctx(), blob):
            result = create_i.create(ctx(), type, resource, if_none_exist, blob=blob, provenance=provenance)
        return resource_response(result.version, result.status, media, prefer().ret,
                                 location=result.status == 201, outcome=result.outcome)

    def put(self, type):
        """conditional update: PUT [type]?criteria (0 matches create, 1 updates, several 412)."""
        media = response_type()
        criteria = _criteria()
        provenance = x_provenance()
        resource = json_body()
        blob = externalize_data(ctx(), resource) if type == "Binary" and isinstance(resource, dict) else None
        with pending_blob(ctx(), blob):
            result = update_i.conditional_update(ctx(), type, criteria, resource,
                                                 if_match_version(request.headers.get("If-Match")), provenance, blob,
                                                 request.headers.get("If-None-Match"))
        return resource_response(result.version, result.status, media, prefer().ret,
                                 location=result.status == 201, outcome=result.outcome)

    def patch(self, type):
        """conditional patch: PATCH [type]?criteria (1 match is patched, 0 -> 404, several -> 412)."""
        media = response_type()
        criteria = _criteria()
        provenance = x_provenance()
        result = patch_i.conditional_patch(ctx(), type, criteria, patch_document(),
                                           if_match_version(request.headers.get("If-Match")), provenance)
        return resource_response(result.version, 200, media, prefer().ret, outcome=result.outcome)

    def delete(self, type):
        """conditional delete: DELETE [type]?criteria (one match at most)."""
        provenance = x_provenance()
        result = delete_i.conditional_delete(ctx(), type, _criteria(), provenance)
        return no_content({"ETag": f'W/"{result.version.version}"'} if result.version else {})


@blp.route("/<rtype:type>/_search", methods=["POST"])
def search_post(type):
    """search with parameters in an application/x-www-form-urlencoded body (and/or the URL)."""
    if request_media_type() != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("POST _search needs Content-Type application/x-www-form-urlencoded")
    return _search(type, list(request.args.items(multi=True)) + list(request.form.items(multi=True)))


@blp.route("/<rtype:type>/<id>/<rtype:target>")
def compartment_search(type, id, target):
    """compartment search: GET Patient/[id]/[type] (resources of that type in the patient's compartment)."""
    media = response_type()
    result = search_i.search(ctx(), target, list(request.args.items(multi=True)), prefer().lenient,
                             compartment=(type, id))
    return json_response(searchset_bundle(f"{type}/{id}/{target}", self_params(result), result), media_type=media)


@blp.route("/<rtype:type>/_history")
def type_history(type):
    """history of every resource of one type, newest first."""
    media = response_type()
    params = search_i.history_params(list(request.args.items(multi=True)), prefer().strict)
    page = history_i.history(ctx(), type, None, params)
    return json_response(history_bundle(f"{type}/_history", params, page), media_type=media)


def _search(type, params):
    media = response_type()
    result = search_i.search(ctx(), type, params, prefer().lenient)
    return json_response(searchset_bundle(type, self_params(result), result), media_type=media)


def self_params(result) -> list[tuple[str, str]]:
    """The parameters the server used, for the self link (unknown ones dropped when lenient)."""
    cursor = result.parsed.cursor
    return result.parsed.used + ([("_cursor", cursor)] if cursor else [])


def x_provenance() -> dict | None:
    """The request's X-Provenance header, checked (400 before anything is stored), for the write's
    Provenance (governance/provenance.py)."""
    return prov.from_header(ctx(), request.headers.get(prov.HEADER))


def _criteria() -> str:
    if not request.query_string:
        raise BadRequest("Conditional update/patch/delete needs search criteria in the URL")
    return request.query_string.decode("utf-8", "replace")
