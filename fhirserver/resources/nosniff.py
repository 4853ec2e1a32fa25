"""`X-Content-Type-Options: nosniff` on every response (https://fetch.spec.whatwg.org/#x-content-type-options-header).

Browsers then keep to the declared Content-Type: an OperationOutcome or a JSON body that quotes
client input as text is never sniffed into HTML or script. Raw Binary downloads add more
(binary_io.raw_headers).
"""
from __future__ import annotations

from .response_headers import add_absent


def apply(headers, names: set) -> None:
    """(After every request: request_hooks.py.) names: the response's lower-case header names."""
    add_absent(headers, names, "X-Content-Type-Options", "nosniff")
