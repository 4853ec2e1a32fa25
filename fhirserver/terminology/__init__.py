"""Terminology (http://hl7.org/fhir/R4/terminology-module.html): the code systems, value sets and
concept maps the server knows (terminology/ shipped, plus those administrators store), their
hierarchies, expansions and translations. One engine per store:

    tx = for_store(store)
    tx.contains(valueset, system, code) -> bool | None       # None: cannot tell
    tx.codes(valueset) -> frozenset[(system, code)]          # TooCostly past MAX_CODES
    tx.descendants(system, code), tx.ancestors(system, code) -> frozenset[str]
    tx.expand(...), tx.lookup(...), tx.subsumes(...), tx.translate(...)
"""
from __future__ import annotations

import threading
import weakref

from .engine import MAX_CODES, Terminology, TooCostly
from .valueset import CannotExpand

__all__ = ["MAX_CODES", "CannotExpand", "Terminology", "TooCostly", "for_store"]

_BY_STORE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_SHIPPED_ONLY: list = []


def for_store(store) -> Terminology:
    """The one Terminology of this store (per process); None: shipped definitions only."""
    with _LOCK:
        if store is None:
            if not _SHIPPED_ONLY:
                _SHIPPED_ONLY.append(Terminology(None))
            return _SHIPPED_ONLY[0]
        found = _BY_STORE.get(store)
        if found is None:
            found = _BY_STORE[store] = Terminology(store)
        return found
