"""A ValueSet's compose evaluated against the code systems the server knows
(http://hl7.org/fhir/R4/valueset.html#compositions): include/exclude by concept list, whole system,
filters and imported value sets (an include's parts are intersected; includes are united, excludes
taken away). Two questions: is one code a member (three-valued: unknown when a code system needed
is not here, or only as a fragment) and what are all the members (an expansion). A compose that
cannot be evaluated here is answered from the complete expansion the ValueSet carries, if any."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from ..errors import BadRequest
from .filters import check, select

MAX_CLAUSES = 500            # includes + excludes + their filters and imported value sets, in one value set
MAX_WORK = 200_000           # concepts one expansion may walk through (code system size per clause and filter)
MAX_DEPTH = 16               # value sets importing value sets importing ... (cycles refused at once)


class CannotExpand(BadRequest):
    """The value set draws on a code system this server does not hold whole (e.g. all of SNOMED CT)."""
    code = "not-supported"


class Entry(NamedTuple):
    system: str
    code: str
    display: str | None
    version: str | None = None
    abstract: bool = False
    inactive: bool = False


def or3(values) -> bool | None:
    out = False
    for v in values:
        if v is True:
            return True
        if v is None:
            out = None
    return out


def and3(values) -> bool | None:
    out = True
    for v in values:
        if v is False:
            return False
        if v is None:
            out = None
    return out


@dataclass
class Clause:
    """One compose.include or compose.exclude."""
    system: str | None
    version: str | None
    concepts: dict[str, str | None] | None      # code -> display given in the clause
    filters: list[dict]
    value_sets: list[str]
    _selected: dict = field(default_factory=dict)

    @classmethod
    def of(cls, inc: dict) -> "Clause":
        if not isinstance(inc, dict):
            raise BadRequest("ValueSet.compose.include/exclude entries must be objects")
        system, value_sets = inc.get("system"), inc.get("valueSet") or []
        if system is None and not value_sets:
            raise BadRequest("A ValueSet include/exclude needs a system or a valueSet")
        concepts = None
        if inc.get("concept"):
            concepts = {c["code"]: c.get("display") for c in inc["concept"] if isinstance(c, dict) and "code" in c}
        filters = list(inc.get("filter") or ())
        for f in filters:
            check(f)
        return cls(system, inc.get("version"), concepts, filters, [v for v in value_sets if isinstance(v, str)])

    def selected(self, index) -> frozenset[str] | None:
        """The codes of the system the clause's concept list or filters admit (None: the whole system)."""
        key = id(index)
        hit = self._selected.get(key)
        if hit is None or hit[0] is not index:
            codes = None
            for f in self.filters:
                if not index.knows(f.get("property")):
                    raise CannotExpand(f"Filter property {f.get('property')!r} is not a property of "
                                       f"{index.url} this server can evaluate")
                chosen = select(index, f)
                codes = chosen if codes is None else codes & chosen
            self._selected.clear()      # only the newest compiled form: older ones are not kept alive
            hit = self._selected[key] = (index, codes)
        return hit[1]

    def match(self, tx, system: str | None, code: str, path: tuple) -> bool | None:
        if self.system is not None:
            if system is not None and system != self.system:
                return False
            own = self._match_system(tx, code)
            if own is False or not self.value_sets:
                return own
        else:
            own = True
        return and3([own] + [tx.member(v, system, code, path) for v in self.value_sets])

    def _match_system(self, tx, code: str) -> bool | None:
        if self.concepts is not None and not self.filters:
            return code in self.concepts
        index = tx.code_system(self.system, self.version)
        if index is None or index.content in ("not-present", "supplement"):
            return None
        own = index.find(code)
        if own is None:
            return False if index.complete else None
        if self.concepts is not None and own not in self.concepts:
            return False
        try:
            chosen = self.selected(index)
        except CannotExpand:
            return None
        if chosen is None or own in chosen:
            return True
        return False if index.complete else None

    def parts(self) -> int:
        return 1 + len(self.filters) + len(self.value_sets)

    def cost(self, tx) -> int:
        """The concepts evaluating this clause's own system part walks through (before doing it)."""
        n = len(self.concepts or ())
        if self.system is not None and (self.concepts is None or self.filters):
            index = tx.code_system(self.system, self.version)
            n += len(index.concepts) * (1 + len(self.filters)) if index is not None else 0
        return n

    def members(self, tx, path: tuple, budget: int, charge: Callable[[int], None]) -> dict[tuple[str, str], Entry]:
        out: dict[tuple[str, str], Entry] = {}
        charge(self.cost(tx))
        if self.system is not None:
            out = self._system_members(tx, budget)
        for i, v in enumerate(self.value_sets):
            listed = tx.entries(v, path)
            charge(len(listed))
            theirs = {(e.system, e.code): e for e in listed}
            out = theirs if self.system is None and i == 0 else {k: e for k, e in out.items() if k in theirs}
        return out

    def _system_members(self, tx, budget: int) -> dict[tuple[str, str], Entry]:
        index = tx.code_system(self.system, self.version)
        if self.concepts is not None and not self.filters:
            return {(self.system, c): _entry(self.system, c, d, index) for c, d in self.concepts.items()}
        if index is None or index.content in ("not-present", "supplement", "fragment"):
            raise CannotExpand(f"Cannot expand: code system {self.system} is not held whole by this server "
                               "(only value sets listing its codes can be expanded)")
        chosen = self.selected(index)
        codes = list(index.concepts) if chosen is None else [c for c in index.concepts if c in chosen]
        if self.concepts is not None:
            codes = [c for c in codes if c in self.concepts]
        if len(codes) > budget:
            from .engine import TooCostly
            raise TooCostly(f"The expansion would hold more than the server's limit of codes ({self.system})")
        return {(self.system, c): _entry(self.system, c, (self.concepts or {}).get(c), index) for c in codes}


def _entry(system: str, code: str, display: str | None, index) -> Entry:
    if index is None or index.find(code) is None:
        return Entry(system, code, display, None)
    own = index.find(code)
    return Entry(system, own, index.display(own) or display, index.version, index.abstract(own), index.inactive(own))


@dataclass
class CompiledValueSet:
    url: str | None
    version: str | None
    includes: list[Clause]
    excludes: list[Clause]
    resource: dict

    @classmethod
    def of(cls, vs: dict) -> "CompiledValueSet":
        compose = vs.get("compose") or {}
        inc, exc = compose.get("include") or [], compose.get("exclude") or []
        too_many = BadRequest(f"ValueSet.compose may hold at most {MAX_CLAUSES} includes, excludes, filters and "
                              "imported value sets in all")
        if not isinstance(inc, list) or not isinstance(exc, list) or len(inc) + len(exc) > MAX_CLAUSES:
            raise too_many
        out = cls(vs.get("url"), vs.get("version"), [Clause.of(i) for i in inc], [Clause.of(e) for e in exc], vs)
        if sum(c.parts() for c in out.includes + out.excludes) > MAX_CLAUSES:
            raise too_many                  # bounds membership too: it is not cached, expansions are
        return out

    def member(self, tx, system: str | None, code: str, path: tuple) -> bool | None:
        if not self.includes:
            return self._from_expansion(system, code)
        inside = or3(c.match(tx, system, code, path) for c in self.includes)
        if inside is False:
            return False
        out = or3(c.match(tx, system, code, path) for c in self.excludes)
        if out is True:
            return False
        found = inside if out is False else None
        if found is None and self._from_expansion(system, code):
            return True                 # the compose cannot be judged here; the carried expansion lists it
        return found

    def _from_expansion(self, system, code) -> bool | None:
        """A value set given only by an expansion (no compose): its contains[] is the answer."""
        listed = list(expansion_entries(self.resource))
        if not listed:
            return None
        return any(e.code == code and (system is None or e.system == system) for e in listed)

    def entries(self, tx, path: tuple, budget: int, check: Callable[[int], None]) -> list[Entry]:
        if not self.includes:
            return list(expansion_entries(self.resource))
        try:
            return self._compose_entries(tx, path, budget, check)
        except CannotExpand:
            carried = complete_expansion(self.resource)
            if carried is None:
                raise
            return carried              # valueset-example-expansion: a LOINC filter, and its author's expansion

    def _compose_entries(self, tx, path: tuple, budget: int, check: Callable[[int], None]) -> list[Entry]:
        found: dict[tuple[str, str], Entry] = {}
        work = [0]

        def charge(n: int) -> None:
            work[0] += n
            if work[0] > MAX_WORK:
                from .engine import TooCostly
                raise TooCostly(f"Expanding {self.url or 'this value set'} would walk through more than "
                                f"{MAX_WORK} concepts")
        for c in self.includes:
            for k, e in c.members(tx, path, budget, charge).items():
                found.setdefault(k, e)
            check(len(found))
        for c in self.excludes:
            for k in c.members(tx, path, budget, charge):
                found.pop(k, None)
        return list(found.values())


def complete_expansion(vs: dict) -> list[Entry] | None:
    """The members a ValueSet's own expansion lists when it lists them all (not one page of them)."""
    listed = list(expansion_entries(vs))
    expansion = vs.get("expansion") or {}
    total = expansion.get("total")
    if not listed or (expansion.get("offset") or 0) != 0 or (isinstance(total, int) and total != len(listed)):
        return None
    return listed


def expansion_entries(vs: dict):
    def walk(contains):
        for c in contains or ():
            if isinstance(c, dict):
                if c.get("code") and c.get("system"):
                    yield Entry(c["system"], c["code"], c.get("display"), c.get("version"),
                                bool(c.get("abstract")), bool(c.get("inactive")))
                yield from walk(c.get("contains"))
    yield from walk((vs.get("expansion") or {}).get("contains"))
