"""Resolve a canonical URL to a definition: held in the store first, else shipped (catalogue.py).

Store-held definitions are written only by administrators and the CLI (`medport ig install`), so what
they say is trusted like the shipped ones; versions other tokens wrote before that rule are never
resolved (trust.py). Lookups are cached per process for DEFINITIONS_TTL seconds:
a definition another process writes is seen at most that late; one this process writes at once
(`changed()`). Canonical references may carry a version: "url|version" (references.html#canonical).
"""
from __future__ import annotations

import itertools
import threading
import time
import weakref

from .. import jsonio
from . import catalogue, trust

CONFORMANCE_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap",
                               "SearchParameter", "NamingSystem", "ImplementationGuide"})
DEFINITIONS_TTL = 2.0           # seconds a store lookup is reused
_TOKENS = itertools.count()     # names each Definitions for good (compiled profiles are cached per one)
_MAX_VERSIONS = 20              # stored versions of one canonical considered when none is asked for


def split_canonical(canonical: str) -> tuple[str, str | None]:
    url, _, version = canonical.partition("|")
    return url, (version or None)


class Definitions:
    """The definitions one store's server knows."""

    def __init__(self, store):
        self.token = next(_TOKENS)
        self._store = store
        self._cache: dict[tuple[str, str], tuple[float, dict | None]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._seen: tuple[float, tuple | None] = (0.0, None)    # (when looked, the store's last writes)
        # changed() is called inside the writing transaction: until its commit is surely visible, a lookup
        # is not kept (a concurrent request could read the version being replaced)
        self._uncached_until = 0.0

    @property
    def generation(self) -> int:
        """Changes when this process writes a definition (changed()), and at most DEFINITIONS_TTL seconds
        after another process did (Store.last_write of the definition types, looked at once per TTL)."""
        now = time.monotonic()
        when, marks = self._seen
        if self._store is not None and now - when >= DEFINITIONS_TTL:
            latest = tuple(self._store.last_write(t) for t in sorted(CONFORMANCE_TYPES))
            with self._lock:
                if marks is not None and latest != marks:
                    self._cache.clear()
                    self._generation += 1
                self._seen = (now, latest)
        return self._generation

    def resolve(self, rtype: str, canonical: str) -> dict | None:
        """The definition of this type named by the canonical (url or url|version), or None."""
        if not isinstance(canonical, str) or not canonical:
            return None
        key = (rtype, canonical)
        now = time.monotonic()
        keep = now >= self._uncached_until
        hit = self._cache.get(key) if keep else None
        if hit is not None and now - hit[0] < DEFINITIONS_TTL:
            return hit[1]
        url, version = split_canonical(canonical)
        found = self._stored(rtype, url, version)
        if found is None:
            found = catalogue.shipped(rtype, url, version)
        if keep:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (now, found)
        return found

    def _stored(self, rtype: str, url: str, version: str | None) -> dict | None:
        if self._store is None or rtype == "NamingSystem":      # R4 NamingSystem has no url
            return None
        from ..search.parse import parse_search
        base = [("url", url)] + ([("version", version)] if version else [])
        found = []
        for criteria in trust.criteria(base):        # only versions the server or an administrator wrote
            page = self._store.search(rtype, parse_search(rtype, criteria).query, limit=_MAX_VERSIONS, total="none")
            found += [r for r in (jsonio.loads(v.body) for v in page.items) if trust.trusted(r)]
        if version is None:
            return catalogue.newest(found)
        return found[0] if found else None

    def changed(self) -> None:
        """A definition is being written by this process: forget what was looked up, and keep nothing
        looked up for the next DEFINITIONS_TTL seconds (the write commits after this call)."""
        with self._lock:
            self._cache.clear()
            self._generation += 1
            self._uncached_until = time.monotonic() + DEFINITIONS_TTL


_BY_STORE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


_SHIPPED_ONLY = Definitions(None)


def definitions(store) -> Definitions:
    """The one Definitions of this store (per process); store None: the shipped ones only."""
    if store is None:
        return _SHIPPED_ONLY
    with _BY_STORE_LOCK:
        found = _BY_STORE.get(store)
        if found is None:
            found = _BY_STORE[store] = Definitions(store)
        return found
