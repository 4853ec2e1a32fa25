"""The shipped definitions served like any resource (conformance.html): R4 core and US Core
StructureDefinitions, the shipped ValueSets, CodeSystems and ConceptMaps (catalogue.py) and the R4
SearchParameters (profiles/search-parameters.json) are read, searched, included and paged through the
store, so `GET [base]/ValueSet?url=...` and `GET [base]/StructureDefinition/us-core-patient` answer like
for an installed guide.

They are put in the store on the first read of their type by a request (by id, a type-level search or
history: Repository.ready), not at the init step: a store that never reads a definition never pays for it
(one to three seconds per type, once per store). Each copy keeps its published id and is tagged
trust.SHIPPED_COPY: it is served, never resolved (the catalogue of the running release judges records).
A copy is created only where its id was never used in the store (what an administrator or
`medport ig install` wrote, or deleted, stands), and brought up to date when a later release changes it
(the catalogue's fingerprint per type says when to look). Med-Port's own definitions are the seed's
(seed.py). Written as the server in batches, one transaction each; several processes importing at once
each write what the other has not (a lost race is a conflict, and what is left is looked at again). The
import is recorded as done only when nothing is left, so a busy store (503) is retried by the next read.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import threading
import weakref

from .. import jsonio
from ..definitions import load_json
from ..errors import FhirError, PreconditionFailed, VersionConflict
from ..search import limits
from . import catalogue, seed, trust

log = logging.getLogger(__name__)

SERVED_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap", "SearchParameter"})
RECORD_KIND = "config"
BATCH = 200

_done: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()    # store -> types already in place
_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def shipped(rtype: str) -> tuple[dict, ...]:
    """The definitions of this type the server serves from its release (Med-Port's own left to the seed)."""
    own = seed.keys()
    found = catalogue.all_of(rtype)
    if rtype == "SearchParameter":
        found = found + [e["resource"] for e in load_json("search-parameters.json")["entry"]]
    return tuple(r for r in found if isinstance(r.get("id"), str) and f"{rtype}/{r['id']}" not in own)


@functools.lru_cache(maxsize=None)
def fingerprint(rtype: str) -> str:
    """Names this release's set of definitions of the type (which ids, in which versions)."""
    digest = hashlib.sha256()
    for r in shipped(rtype):
        digest.update(f"{r['id']}|{r.get('version', '')}\n".encode())
    return digest.hexdigest()


def ensure(ctx, rtype: str) -> None:
    """The shipped definitions of rtype are in this store (the request's Repository asks before it reads)."""
    if rtype not in SERVED_TYPES or ctx.settings.shipped_definitions != "served":
        return
    store = ctx.store
    if rtype in _done.get(store, ()):
        return
    with _lock:
        if rtype in _done.get(store, ()):
            return
        key = f"served-definitions:{rtype}"
        record = store.get_record(RECORD_KIND, key)
        if record is None or record.get("fingerprint") != fingerprint(rtype):
            with limits.paused():       # not the request's search: not held to, nor counted in, its deadline
                written, left = _import(ctx, rtype)
            if left:
                return                  # conflicts with another process's import: the next read looks again
            store.put_record(RECORD_KIND, key, {"fingerprint": fingerprint(rtype), "written": written})
            log.info("served %d shipped %s definitions from this store on", written, rtype)
        _done.setdefault(store, set()).add(rtype)


def _todo(ctx, rtype: str) -> list[tuple[dict, object]]:
    """(shipped definition, the store's current version or None) of each copy to create or bring up to date."""
    out = []
    for r in shipped(rtype):
        current = ctx.store.read(rtype, r["id"])
        if current is None:
            out.append((r, None))
        elif not current.deleted:
            stored = jsonio.loads(current.body)
            if trust.shipped_copy(stored) and _content(stored) != _content(r):
                out.append((r, current))
    return out


def _content(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


def _import(ctx, rtype: str) -> tuple[int, int]:
    """(copies written, copies still to write: another process's import took them first)."""
    from ..interactions.common import store_new_version
    from ..smart_auth.access import UNRESTRICTED
    server = ctx.acting_as(UNRESTRICTED)
    todo, refused, written = _todo(ctx, rtype), set(), 0
    for start in range(0, len(todo), BATCH):
        batch = []
        for r, current in todo[start:start + BATCH]:
            p = _prepared(server, rtype, r)
            if p is None:
                refused.add(r["id"])
            else:
                batch.append((p, current))
        try:
            with ctx.store.transaction() as tx:
                for p, was in batch:
                    now = tx.read(rtype, p.resource["id"])
                    if (now is None and was is None) or (now is not None and was is not None
                                                        and now.version == was.version):
                        store_new_version(tx, p, p.resource["id"], "PUT", now)
                        written += 1
        except (PreconditionFailed, VersionConflict):
            continue        # another process wrote some of this batch at the same moment
    left = [r for r, _current in _todo(ctx, rtype) if r["id"] not in refused] if written < len(todo) else []
    return written, len(left)


def _prepared(server, rtype: str, resource: dict):
    from ..interactions.common import prepare
    copy = jsonio.loads(jsonio.dumps(resource))
    copy.setdefault("meta", {}).setdefault("tag", []).append(dict(trust.SHIPPED_COPY))
    try:
        return prepare(server, rtype, copy)
    except FhirError as e:      # a shipped definition R4 does not accept (tests/conformance/test_served.py)
        log.warning("shipped %s/%s is not served: %s", rtype, resource.get("id"), e)
        return None
