"""The terminology engine one store's server uses (http://hl7.org/fhir/R4/terminology-service.html).

Definitions are resolved through conformance.definitions(store) (store-held first, then shipped).
Compiled code systems, compiled value sets and expansions are cached by the identity of the definition
they came from (canonical, version and stored versionId, or "shipped"), so a definition an
administrator rewrites is compiled again and nothing stale is served; the caches are bounded."""
from __future__ import annotations

import threading
from collections import OrderedDict

from .. import errors, jsonio
from ..conformance import definitions
from ..errors import BadRequest, NotFound
from .codesystem import CodeIndex, compile_code_system
from .filters import regex_budget
from .valueset import MAX_DEPTH, CompiledValueSet, Entry

MAX_CODES = 10_000           # codes one expansion may hold
_CACHE_SIZE = 512


class TooCostly(errors.TooCostly):
    """An expansion over MAX_CODES (http://hl7.org/fhir/R4/valueset-operation-expand.html: too-costly)."""
    code = "too-costly"


class _Lru:
    def __init__(self, size: int):
        self._data: OrderedDict = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def get(self, key):
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


def identity(resource: dict) -> tuple:
    meta = resource.get("meta") or {}
    return (resource.get("resourceType"), resource.get("url"), resource.get("version"), resource.get("id"),
            meta.get("versionId") or "shipped", meta.get("lastUpdated"))


class Terminology:
    def __init__(self, store, *, resolve=None):
        """resolve(rtype, canonical): where definitions come from (default: the store's, then shipped)."""
        self._store = store
        self._resolve = resolve or definitions(store).resolve
        self._indexes, self._compiled, self._expansions = _Lru(_CACHE_SIZE), _Lru(_CACHE_SIZE), _Lru(64)

    # -- definitions ------------------------------------------------------------------------------
    def resolve(self, rtype: str, canonical: str) -> dict | None:
        return self._resolve(rtype, canonical)

    def code_system(self, system: str | None, version: str | None = None) -> CodeIndex | None:
        """The compiled code system (that version if held, else the newest), or None."""
        if not isinstance(system, str) or not system:
            return None
        cs = (self.resolve("CodeSystem", f"{system}|{version}") if version else None) \
            or self.resolve("CodeSystem", system)
        if cs is None:
            return None
        key = identity(cs)
        return self._indexes.get(key) or self._indexes.put(key, compile_code_system(cs))

    def asked_code_system(self, system: str, version: str | None = None) -> CodeIndex:
        """The code system (and version) an operation names: 404 when it, or that version, is not held
        (code_system() falls back to the newest version, as bindings need; an operation must not)."""
        index = self.code_system(system, version)
        if index is None or (version and index.version != version):
            raise NotFound(f"No CodeSystem {system}" + (f" version {version}" if version else "") + " on this server")
        return index

    def value_set(self, valueset: str | dict) -> dict:
        """The ValueSet a canonical names (404 when unknown), or the resource given."""
        if isinstance(valueset, dict):
            if valueset.get("resourceType") != "ValueSet":
                raise BadRequest("A ValueSet resource is expected")
            return valueset
        vs = self.resolve("ValueSet", valueset) if isinstance(valueset, str) else None
        if vs is None:
            raise NotFound(f"No ValueSet {valueset} on this server")
        return vs

    def _compiled_vs(self, valueset: str | dict) -> CompiledValueSet:
        vs = self.value_set(valueset)
        if isinstance(valueset, dict):
            return CompiledValueSet.of(vs)          # a client's ValueSet: compiled for this request only
        key = identity(vs)
        return self._compiled.get(key) or self._compiled.put(key, CompiledValueSet.of(vs))

    # -- membership ---------------------------------------------------------------------------------
    def contains(self, valueset: str, system: str | None, code: str) -> bool | None:
        """Is (system, code) in the value set? None: cannot tell (unknown or broken value set, or a code
        system needed is not here or only a fragment of it)."""
        try:
            return self.member(valueset, system, code)
        except (NotFound, BadRequest):
            return None

    def _enter(self, valueset: str | dict, path: tuple) -> tuple[CompiledValueSet, tuple]:
        """The compiled value set and the import path extended by it (cycles and depth refused)."""
        compiled = self._compiled_vs(valueset)
        key = ("inline", id(valueset)) if isinstance(valueset, dict) else identity(compiled.resource)
        if key in path:
            raise BadRequest(f"Value sets import each other in a cycle ({compiled.url})")
        if len(path) >= MAX_DEPTH:
            raise BadRequest(f"Value sets import each other deeper than {MAX_DEPTH}")
        return compiled, path + (key,)

    def member(self, valueset: str | dict, system: str | None, code: str, path: tuple = ()) -> bool | None:
        with regex_budget():
            compiled, path = self._enter(valueset, path)
            return compiled.member(self, system, code, path)

    # -- expansion ----------------------------------------------------------------------------------
    def entries(self, valueset: str | dict, path: tuple = ()) -> list[Entry]:
        """Every member (bounded by MAX_CODES; TooCostly past it)."""
        compiled, inner = self._enter(valueset, path)
        key = None if isinstance(valueset, dict) else identity(compiled.resource)
        hit = self._expansions.get(key) if key else None
        if hit is None:
            with regex_budget():
                hit = compiled.entries(self, inner, MAX_CODES + 1, _within_limit)
            _within_limit(len(hit))
            if key:
                self._expansions.put(key, hit)
        return hit

    def codes(self, valueset: str) -> frozenset[tuple[str, str]]:
        return frozenset((e.system, e.code) for e in self.entries(valueset))

    def expand(self, valueset: str | dict, *, filter=None, offset: int = 0, count: int | None = None,
               active_only: bool = False) -> dict:
        """The ValueSet with its expansion (expansion.py: text filter, paging, total)."""
        from .expansion import expansion
        return expansion(self, valueset, filter=filter, offset=offset, count=count, active_only=active_only)

    # -- hierarchy and concepts ----------------------------------------------------------------------
    def descendants(self, system: str, code: str) -> frozenset[str]:
        index = self.code_system(system)
        return index.descendants(code) if index is not None else frozenset()

    def ancestors(self, system: str, code: str) -> frozenset[str]:
        index = self.code_system(system)
        return index.ancestors(code) if index is not None else frozenset()

    def lookup(self, system: str, code: str, version: str | None = None) -> dict | None:
        from .concepts import lookup
        return lookup(self, system, code, version)

    def subsumes(self, system: str, a: str, b: str, version: str | None = None) -> str:
        from .concepts import subsumes
        return subsumes(self, system, a, b, version)

    def translate(self, system: str | None, code: str, **kw) -> list[dict]:
        """Matches of a code through ConceptMaps (conceptmap.translate: url, conceptmap, source, target,
        target_system, reverse): [{equivalence, concept: Coding, source: map url}]."""
        from .conceptmap import translate
        return translate(self, system, code, **kw)

    def concept_maps(self) -> list[dict]:
        """The ConceptMaps a url-less translation looks through: stored ones, then shipped ones of
        other urls (bounded: conceptmap.MAX_MAPS)."""
        from ..conformance import catalogue
        from .conceptmap import MAX_MAPS
        stored = []
        if self._store is not None:      # the trusted ones only (conformance/trust.py)
            from ..conformance import trust
            from ..search.parse import parse_search
            for criteria in trust.criteria([]):
                page = self._store.search("ConceptMap", parse_search("ConceptMap", criteria).query, limit=MAX_MAPS,
                                          total="none")
                stored += [m for m in (jsonio.loads(v.body) for v in page.items) if trust.trusted(m)]
            stored = stored[:MAX_MAPS]
        urls = {m.get("url") for m in stored}
        return (stored + [m for m in catalogue.all_of("ConceptMap") if m.get("url") not in urls])[:MAX_MAPS]


def _within_limit(n: int) -> None:
    if n > MAX_CODES:
        raise TooCostly(f"The expansion would hold more than {MAX_CODES} codes")
