"""`X-Content-Type-Options: nosniff` on every response (https://fetch.spec.whatwg.org/#x-content-type-options-header).

Browsers then keep to the declared Content-Type: an OperationOutcome or a JSON body that quotes
client input as text is never sniffed into HTML or script. Raw Binary downloads add more
(binary_io.raw_headers).
"""
from __future__ import annotations


def install(app) -> None:
    @app.after_request
    def _nosniff(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
