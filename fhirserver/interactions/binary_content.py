"""Binary.data lives in the blob store, not in the JSON body (http://hl7.org/fhir/R4/binary.html).

A Binary sent as FHIR JSON has its base64 `data` decoded into a blob; the
stored body keeps only contentType/securityContext, and reads rebuild `data`.
"""
from __future__ import annotations

import base64
import binascii
import contextlib

from ..errors import InvalidResource


def externalize_data(ctx, resource: dict) -> str | None:
    """Move Binary.data into the blob store; returns its key (None when there is no data)."""
    data = resource.pop("data", None)
    if data is None:
        return None
    if not isinstance(data, str):
        raise InvalidResource("Binary.data must be a base64 string", expression=("Binary.data",))
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)   # base64Binary allows whitespace
    except (binascii.Error, ValueError):
        raise InvalidResource("Binary.data is not valid base64", expression=("Binary.data",)) from None
    return ctx.store.blobs.put(iter([raw]), ctx.settings.max_binary_bytes).key


@contextlib.contextmanager
def pending_blob(ctx, key: str | None):
    """Delete a freshly uploaded blob if the write that would refer to it fails."""
    try:
        yield key
    except BaseException:
        if key is not None:
            ctx.store.blobs.delete(key)
        raise
