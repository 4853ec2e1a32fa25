"""Binary contents over HTTP: streamed uploads, raw downloads with Range, and
the FHIR JSON form with base64 data built on the fly (http://hl7.org/fhir/R4/binary.html#rest).

Raw downloads serve whatever a client stored, under the stored Content-Type, from the server's own
origin. binary.html#security warns that such content may be active (HTML, SVG with script), so every
raw download is sent as inert content:

- `X-Content-Type-Options: nosniff`: the browser keeps to the declared type;
- `Content-Security-Policy: sandbox`: a document opened anyway runs in a unique origin, with no
  scripts, forms or plugins (so no access to this origin's pages or storage);
- `Content-Disposition: attachment` unless the type is in INLINE_TYPES, the media that browsers
  show passively: raster images, PDF, plain text and opaque bytes. text/html, image/svg+xml, XML,
  JavaScript and anything unknown are downloaded, never rendered. (Browsers that refuse to show a
  sandboxed PDF inline, such as Chrome, offer it as a download instead.)

The Content-Type is sent exactly as stored (a charset it carries is not added a second time).
"""
from __future__ import annotations

import base64

from flask import Response, current_app, g, request
from werkzeug.wsgi import wrap_file

from ..errors import PayloadTooLarge
from ..storage.base import Version
from .negotiation import JSON_TYPES, XML_TYPES, request_media_type

CHUNK = 3 * 64 * 1024   # a multiple of 3, so base64 chunks concatenate cleanly


def request_chunks(chunk: int = 64 * 1024):
    """The raw request body as a stream of chunks (once read, the request cannot be replayed)."""
    g.body_streamed = True
    while True:
        data = request.stream.read(chunk)
        if not data:
            return
        yield data


def upload_raw_body(ctx) -> str:
    """Stream a raw Binary body into the blob store; refuse a declared oversize body at once."""
    limit = ctx.settings.max_binary_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Binary content of {request.content_length} bytes exceeds the limit of {limit}")
    return ctx.store.blobs.put(request_chunks(), limit).key


def is_raw_upload() -> bool:
    """A Binary body sent as its own media type rather than as FHIR JSON."""
    mt = request_media_type()
    return mt not in JSON_TYPES and mt not in XML_TYPES and mt != ""


INLINE_TYPES = frozenset({"application/octet-stream", "application/pdf", "image/gif", "image/jpeg", "image/png",
                          "image/webp", "text/plain"})


def raw_headers(content_type: str) -> dict:
    """The headers that keep stored content inert in a browser (see the module docstring)."""
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
    if content_type.split(";", 1)[0].strip().lower() not in INLINE_TYPES:
        headers["Content-Disposition"] = "attachment"
    return headers


def raw_binary_response(v: Version, content_type: str) -> Response:
    """The stored bytes under their own Content-Type; Range requests answer 206."""
    store = current_app.config["MEDPORT"].store
    headers = raw_headers(content_type)
    if v.blob is None:   # a Binary without data
        return Response(b"", content_type=content_type, headers=headers)
    response = Response(wrap_file(request.environ, store.blobs.open(v.blob)), content_type=content_type,
                        direct_passthrough=True, headers={"ETag": f'W/"{v.version}"', **headers})
    # RFC 9110 range requests: 206 with Content-Range, 416 when unsatisfiable
    return response.make_conditional(request.environ, accept_ranges=True,
                                     complete_length=store.blobs.size(v.blob))


def binary_json_stream(v: Version):
    """The Binary resource as FHIR JSON, its data base64-encoded chunk by chunk."""
    return json_chunks(v, current_app.config["MEDPORT"].store.blobs)


def json_chunks(v: Version, blobs):
    """The Binary resource as FHIR JSON from this blob store (work outside a request: bulk export)."""
    return _json_chunks(v, blobs.open(v.blob))


def _json_chunks(v: Version, blob):
    body = v.body.rstrip()
    yield body[:-1] + b',"data":"'
    with blob as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            yield base64.b64encode(chunk)
    yield b'"}'
