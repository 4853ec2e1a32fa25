"""A sliding-window limit on attempts per key (a client address), kept in the store's records so that
every worker and machine counts together. An address at its limit is refused without recording
anything (so its records stay bounded and the window does end); otherwise the attempt is recorded
and judged again, so parallel attempts cannot slip through together."""
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
    _refuse_if_full(store.list_records(kind), limit, window_s, now)   # refused attempts are not recorded
    store.add_record(kind, secrets.token_hex(8), {"at": now}, expires_at=now + window_s)
    _refuse_if_full(store.list_records(kind), limit + 1, window_s, now)   # others got in meanwhile


def _refuse_if_full(records: list, limit: int, window_s: int, now: float) -> None:
    if len(records) >= limit:
        oldest_that_counts = sorted(v["at"] for _k, v in records)[-limit]
        wait = max(1, math.ceil(oldest_that_counts + window_s - now))
        raise TooManyRequests(f"Too many attempts from this address; try again in {wait} s",
                              headers={"Retry-After": str(wait)})
