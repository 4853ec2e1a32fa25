"""Instance level: [base]/[type]/[id] read, update, patch, delete, history, vread."""
from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from .. import jsonio
from ..interactions import delete as delete_i
from ..interactions import history as history_i
from ..interactions import patch as patch_i
from ..interactions import read as read_i
from ..interactions import search as search_i
from ..interactions import update as update_i
from ..interactions.binary_content import externalize_data, pending_blob
from ..interactions.common import if_match_version
from . import ctx
from .binary_io import is_raw_upload, raw_binary_response, upload_raw_body
from .negotiation import json_body, patch_document, prefer, response_type
from .rendering import history_bundle, json_response, no_content, resource_response, version_headers
from .type_level import x_provenance

blp = Blueprint("instance", __name__, url_prefix="/fhir", description="Instance-level interactions")


@blp.route("/<rtype:type>/<id>")
class Instance(MethodView):
    init_every_request = False      # it keeps no state: one instance serves every request

    def get(self, type, id):
        """read: the current version (404 unknown, 410 deleted). Binary: raw bytes unless FHIR JSON is asked for."""
        media = response_type(allow_raw=(type == "Binary"))
        result = read_i.read(ctx(), type, id)
        v = result.version
        if _not_modified(v):
            return _304(v)
        if media is None:
            return raw_binary_response(v, _binary_content_type(v))
        return resource_response(v, 200, media, shape=_shape(type))

    def put(self, type, id):
        """update (or update-as-create with a client-chosen id); If-Match for optimistic locking,
        If-None-Match: * to create only."""
        media = response_type()
        if_match = if_match_version(request.headers.get("If-Match"))
        provenance = x_provenance()
        if type == "Binary" and is_raw_upload():
            resource = {"resourceType": "Binary", "id": id, "contentType": request.mimetype}
            blob = upload_raw_body(ctx())
        else:
            resource = json_body()
            blob = externalize_data(ctx(), resource) if type == "Binary" and isinstance(resource, dict) else None
        with pending_blob(ctx(), blob):
            result = update_i.update(ctx(), type, id, resource, if_match, blob=blob, provenance=provenance,
                                     if_none_match=request.headers.get("If-None-Match"))
        return resource_response(result.version, result.status, media, prefer().ret,
                                 location=result.status == 201, outcome=result.outcome)

    def patch(self, type, id):
        """patch with JSON Patch (application/json-patch+json) or FHIRPath Patch (a Parameters resource,
        application/fhir+json)."""
        media = response_type()
        provenance = x_provenance()
        operations = patch_document()
        result = patch_i.patch(ctx(), type, id, operations, if_match_version(request.headers.get("If-Match")),
                               provenance)
        return resource_response(result.version, 200, media, prefer().ret, outcome=result.outcome)

    def delete(self, type, id):
        """delete: later reads answer 410 Gone; history keeps every version."""
        provenance = x_provenance()
        result = delete_i.delete(ctx(), type, id, if_match_version(request.headers.get("If-Match")), provenance)
        return no_content({"ETag": f'W/"{result.version.version}"'} if result.version else {})


@blp.route("/<rtype:type>/<id>/_history")
def instance_history(type, id):
    """history of one resource, newest first (_since, _count, paging)."""
    media = response_type()
    params = search_i.history_params(list(request.args.items(multi=True)), prefer().strict)
    page = history_i.history(ctx(), type, id, params)
    return json_response(history_bundle(f"{type}/{id}/_history", params, page), media_type=media)


@blp.route("/<rtype:type>/<id>/_history/<vid>")
def vread(type, id, vid):
    """vread: one version of a resource."""
    media = response_type(allow_raw=(type == "Binary"))
    v = read_i.vread(ctx(), type, id, vid).version
    if _not_modified(v):
        return _304(v)
    if media is None:
        return raw_binary_response(v, _binary_content_type(v))
    return resource_response(v, 200, media, shape=_shape(type))


def _shape(type: str):
    """_summary / _elements of a read or vread (read.shape); nothing to look at without a query string."""
    return read_i.shape(type, request.args.items(multi=True)) if request.query_string else None


def _not_modified(v) -> bool:
    """Conditional read (http.html#cread; RFC 9110 13.1.2, 13.1.3). The headers as request.headers.get
    reads them, from the environ directly (a missing header costs headers.get a KeyError, issue 16)."""
    environ = request.environ
    return read_i.not_modified(v, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_IF_MODIFIED_SINCE"))


class _NotModified(Response):
    """Werkzeug drops Last-Modified from a 304 (an RFC 2616 rule); it is kept here to refresh the
    client's stored validators (RFC 9110 15.4.5)."""

    def get_wsgi_headers(self, environ):
        headers = super().get_wsgi_headers(environ)
        if "Last-Modified" in self.headers and "Last-Modified" not in headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def _304(v):
    """304 Not Modified: no body, the validators of the version the client holds (ETag, Last-Modified)."""
    response = _NotModified(status=304, headers=version_headers(v))
    del response.headers["Content-Type"]
    return response


def _binary_content_type(v) -> str:
    return jsonio.loads_stored(v.body).get("contentType") or "application/octet-stream"
