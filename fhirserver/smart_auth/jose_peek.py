"""Reading a compact JWS's header or payload before its signature is checked.

Only to choose how to verify it: the kid of an access token (which published key), the iss of a
client assertion (whose registered keys, RFC 7523 3) or of a refused one (the audit record). The
input is hostile, so the segment is bounded in length and parsed by the strict parser with a small
nesting limit (RFC 7515 7.1 compact form; RFC 7519 7.2: the header and claims are JSON objects):
a deep "[[[[..." segment is refused here, never a RecursionError (a 500) in a JSON parser.
"""
from __future__ import annotations

import base64

from .. import jsonio
from ..errors import BadRequest

HEADER, PAYLOAD = 0, 1
MAX_DEPTH = 16          # our tokens and SMART assertions nest two or three levels
MAX_SEGMENT = 16 * 1024


def segment(token, index: int) -> dict | None:
    """The JSON object of a compact JWS's header (HEADER) or payload (PAYLOAD), or None when the token
    is not three segments or the segment is not a bounded, well-formed JSON object."""
    if not isinstance(token, str):
        return None
    parts = token.split(".")
    if len(parts) != 3 or len(parts[index]) > MAX_SEGMENT:
        return None
    text = parts[index]
    try:
        value = jsonio.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), max_depth=MAX_DEPTH)
    except (ValueError, BadRequest):
        return None
    return value if isinstance(value, dict) else None
