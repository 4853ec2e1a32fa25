"""A sliding-window limit on attempts per key (a client address), kept in the store's records so that
every worker and machine counts together. Each attempt is recorded before it is judged, so parallel
attempts cannot slip through together (as the login throttle, smart_auth/accounts.py)."""
from __future__ import annotations

import math
import secrets
import time

from .errors import TooManyRequests


def attempt(store, name: str, key: str, limit: int, window_s: int = 3600) -> None:
    """Count one attempt; 429 with Retry-After once `limit` attempts fall within the window."""
    if limit <= 0:
        return
    kind, now = f"rate:{name}:{key}", time.time()
    store.add_record(kind, secrets.token_hex(8), {"at": now}, expires_at=now + window_s)
    recent = sorted(v["at"] for _k, v in store.list_records(kind))
    if len(recent) > limit:
        wait = max(1, math.ceil(recent[-limit - 1] + window_s - now))
        raise TooManyRequests(f"Too many attempts from this address; try again in {wait} s",
                              headers={"Retry-After": str(wait)})
