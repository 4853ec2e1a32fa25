"""`X-Content-Type-Options: nosniff` on every response (https://fetch.spec.whatwg.org/#x-content-type-options-header).

Browsers then keep to the declared Content-Type: an OperationOutcome or a JSON body that quotes
client input as text is never sniffed into HTML or script. Raw Binary downloads add more
(binary_io.raw_headers).
"""
from __future__ import annotations

from .response_headers import put_absent


def install(app) -> None:
    @app.after_request
    def _nosniff(response):
        put_absent(response.headers, "X-Content-Type-Options", "nosniff")
        return response
