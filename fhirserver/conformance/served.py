"""The shipped definitions served like any resource (conformance.html): R4 core and US Core
StructureDefinitions, the shipped ValueSets, CodeSystems and ConceptMaps (catalogue.py) and the R4
SearchParameters (profiles/search-parameters.json) are read, searched, included and paged through the
store, so `GET [base]/ValueSet?url=...` and `GET [base]/StructureDefinition/us-core-patient` answer like
for an installed guide.

They are put in the store on the first use of their type by a request (Repository calls ensure), not at
the init step: a store that never reads a definition never pays for it (about one to three seconds per
type, once per store). Each shipped definition keeps its id and is created only when that id was never
used in the store: what an administrator or `medport ig install` wrote, or deleted, stands. Med-Port's
own definitions are the seed's (seed.py). Written as the server, in batches of one transaction each;
several processes importing at once each write what the other has not (a lost race is a conflict that
re-reads). A later release's new definitions are added when the catalogue's fingerprint changes.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import threading
import weakref

from .. import jsonio
from ..definitions import load_json
from ..errors import FhirError, PreconditionFailed, StoreUnavailable, VersionConflict
from ..search import limits
from . import catalogue, seed

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
                written = _import(ctx, rtype)
            store.put_record(RECORD_KIND, key, {"fingerprint": fingerprint(rtype), "written": written})
            log.info("served %d shipped %s definitions from this store on", written, rtype)
        _done.setdefault(store, set()).add(rtype)


def _import(ctx, rtype: str) -> int:
    from ..interactions.common import store_new_version
    from ..smart_auth.access import UNRESTRICTED
    server = ctx.acting_as(UNRESTRICTED)
    todo = [r for r in shipped(rtype) if ctx.store.vread(rtype, r["id"], 1) is None]
    written = 0
    for start in range(0, len(todo), BATCH):
        batch = [p for p in (_prepared(server, rtype, r) for r in todo[start:start + BATCH]) if p is not None]
        try:
            with ctx.store.transaction() as tx:
                for p in batch:
                    if tx.read(rtype, p.resource["id"]) is None:
                        store_new_version(tx, p, p.resource["id"], "PUT", None)
                        written += 1
        except (PreconditionFailed, VersionConflict, StoreUnavailable):
            continue        # another process wrote this batch at the same moment
    return written


def _prepared(server, rtype: str, resource: dict):
    from ..interactions.common import prepare
    try:
        return prepare(server, rtype, jsonio.loads(jsonio.dumps(resource)))
    except FhirError as e:      # a shipped definition R4 does not accept (tests/conformance/test_served.py)
        log.warning("shipped %s/%s is not served: %s", rtype, resource.get("id"), e)
        return None
