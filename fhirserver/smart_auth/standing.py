"""Whether the client and the user behind a token are still in good standing (neither disabled).

Every consumer of a token asks this one question, through tokens.verify() (access tokens: the FHIR
API, /auth/introspect, /auth/launch, /auth/revoke, the admin API) and refresh.find() (refresh
tokens: the refresh_token grant and introspection): RFC 7662 2.2 ("active" means the token may be
used now), RFC 9700 2.2 / 4.14 (a grant must end when its client or user is no longer authorised)
and SMART App Launch 2.2 "Token introspection".

It runs on every request, so it is cheap: two point reads by primary key (the record store's
(kind, key) index), each remembered per process. On SQLite an answer is kept while the store's commit
stamp is unchanged (Store.commit_stamp: any commit, by any process, changes it), so a disable applies
at once in every worker. Elsewhere (MongoDB) it is kept for at most STANDING_TTL_S seconds: a disable
is seen at once by the process that made it (Users.disable / Clients.disable forget the entry) and by
every other worker and machine within STANDING_TTL_S seconds.
"""
from __future__ import annotations

import threading
import time
import weakref

from ..errors import Unauthorized

USER_KIND = "user"          # accounts.KIND (not imported: accounts imports this module)
CLIENT_KIND = "client"      # clients.KIND
STANDING_TTL_S = 2.0        # the longest a disable takes to reach another worker

# store -> {(kind, key): (state, when read, commit stamp read under)}; weak so that a closed store is forgotten
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_MAX_ENTRIES = 8192


def check(store, client_id, username=None) -> None:
    """Unauthorized if the token's client is disabled, or (for a user's token) its user is disabled
    or gone. A client that was never registered here is not refused (tokens of this server name a
    registered client; unknown ones come only from tests minting tokens directly)."""
    if client_id is None and username is None:
        return
    # taken once, before both reads: a commit after it changes the stamp, so what they read is not
    # reused under the next one
    stamp, now = store.commit_stamp(), time.monotonic()
    if client_id is not None and _state(store, CLIENT_KIND, str(client_id), stamp, now) == "disabled":
        raise Unauthorized("The application (client) of this token is disabled")
    if username is not None and _state(store, USER_KIND, str(username), stamp, now) != "active":
        raise Unauthorized("The user of this token is disabled")


def forget(store, kind: str, key: str) -> None:
    """Drop what this process remembers of one client or user (called when it is disabled here)."""
    with _lock:
        entries = _cache.get(store)
        if entries is not None:
            entries.pop((kind, key), None)


def _state(store, kind: str, key: str, stamp: bytes | None, now: float) -> str:
    """'active', 'disabled' or 'missing': as read under the store's commit stamp `stamp` (taken before
    the read, Store.commit_stamp), else (no stamp) at most STANDING_TTL_S seconds before `now`."""
    with _lock:
        entries = _cache.get(store)
        if entries is None:
            entries = _cache.setdefault(store, {})
        hit = entries.get((kind, key))
    if hit is not None:
        state, when, read_under = hit
        if stamp is not None:
            current = read_under == stamp
        else:
            current = read_under is None and now - when < STANDING_TTL_S
        if current:
            return state
    record = store.get_record(kind, key)
    state = "missing" if record is None else ("disabled" if record.get("disabled") else "active")
    with _lock:
        if len(entries) >= _MAX_ENTRIES:
            entries.clear()
        entries[(kind, key)] = (state, now, stamp)
    return state
