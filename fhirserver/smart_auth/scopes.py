"""SMART scopes, v1 and v2 (SMART App Launch 2.2, "Scopes and Launch Context").

    (patient|user|system)/(Type|*).[c][r][u][d][s][?param=value&...]     v2
    (patient|user|system)/(Type|*).(read|write|*)                        v1

v1 maps to v2: read = rs, write = cud, * = cruds. A granular v2 scope carries
a search query that limits what it grants (e.g. Observations of one category).
This module only decides; the interactions apply the decision inside their
queries (a patient/ scope adds the patient compartment, a granular scope its
query), so that no path can return more than the grant.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..definitions import resource_types
from ..search.results import RESULT_PARAMS

PERMISSIONS = "cruds"
NOT_FILTERS = RESULT_PARAMS | {"_cursor"}     # result parameters of a search (R4 search.html#return)
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\."
                    r"(?P<perm>[a-z*]+)(?:\?(?P<query>.+))?$")

# the permission each FHIR interaction needs (App Launch 2.2 table of scope letters)
INTERACTION_PERMISSION = {
    "create": "c",
    "read": "r", "vread": "r", "history-instance": "r",
    "update": "u", "patch": "u",
    "delete": "d",
    "search-type": "s", "search-system": "s", "search-compartment": "s",
    "history-type": "s", "history-system": "s",
}


class ScopeError(ValueError):
    """A scope string that names a resource scope but breaks the grammar."""


@dataclass(frozen=True)
class Scope:
    context: str                         # patient | user | system
    resource_type: str                   # a resource type or "*"
    permissions: str                     # a subsequence of "cruds"
    query: tuple[tuple[str, str], ...]   # granular restriction (empty: none)
    raw: str

    def covers(self, permission: str, resource_type: str) -> bool:
        return permission in self.permissions and self.resource_type in ("*", resource_type)


@functools.lru_cache(maxsize=4096)     # every request parses its token's scopes: the same few strings
def parse_scope(raw: str) -> Scope | None:
    """A resource scope, or None for the others (openid, fhirUser, launch, offline_access...)."""
    if "/" not in raw or raw.split("/")[0] not in ("patient", "user", "system"):
        return None
    m = _SCOPE.match(raw)
    if not m:
        raise ScopeError(f"malformed scope {raw!r}")
    rtype = m.group("type")
    if rtype != "*" and rtype not in resource_types():
        raise ScopeError(f"unknown resource type in scope {raw!r}")
    perm = V1.get(m.group("perm"), m.group("perm"))
    if not perm or not _in_order(perm):
        raise ScopeError(f"permissions in {raw!r} must be some of c, r, u, d, s in that order")
    query = tuple(parse_qsl(m.group("query") or "", keep_blank_values=True))
    if m.group("perm") in V1 and query:
        raise ScopeError(f"v1 scope {raw!r} cannot carry a query")
    if any(name.split(":")[0] in NOT_FILTERS for name, _value in query):
        # a granular scope restricts by search parameters (App Launch 2.2 "Finer-grained resource
        # constraints using search parameters"); _count, _include... restrict nothing: taken as the
        # scope's query they would leave it unrestricted
        raise ScopeError(f"the query of scope {raw!r} may only hold search parameters that filter, "
                         f"not {', '.join(sorted(NOT_FILTERS))}")
    return Scope(m.group("context"), rtype, perm, query, raw)


def _in_order(perm: str) -> bool:
    positions = [PERMISSIONS.find(p) for p in perm]
    return all(p >= 0 for p in positions) and positions == sorted(set(positions))


@dataclass(frozen=True)
class Decision:
    """Whether an interaction is allowed and, if so, what the query must be ANDed with."""
    allowed: bool
    patient_compartment: bool = False               # confine to the token's patient
    alternatives: tuple[tuple[tuple[str, str], ...], ...] = ()   # OR of granular queries; () = none


class Grants:
    """The resource scopes of one token."""

    def __init__(self, scopes: list[Scope]):
        self.scopes = scopes
        self._decided: dict[tuple[str, str], Decision] = {}     # a Decision depends on the scopes alone

    @classmethod
    def parse(cls, scope_string: str) -> "Grants":
        """The grants of a scope string; the same (immutable) Grants for the same string, so that
        a token's decisions are made once per process, not on every request (issue 16)."""
        return _parsed(cls, scope_string)

    def decide(self, interaction: str, resource_type: str) -> Decision:
        """Allowed if some scope covers the interaction's permission on the type. Scopes that
        cover it are combined: any unrestricted one wins over granular ones; user/system
        scopes win over patient ones (the user's own rights, not one patient's)."""
        key = (interaction, resource_type)
        decision = self._decided.get(key)
        if decision is None:
            if len(self._decided) >= 4096:      # types come from URLs: keep the memory bounded
                self._decided.clear()
            decision = self._decided[key] = self._decide(interaction, resource_type)
        return decision

    def _decide(self, interaction: str, resource_type: str) -> Decision:
        permission = INTERACTION_PERMISSION[interaction]
        covering = [s for s in self.scopes if s.covers(permission, resource_type)]
        if not covering:
            return Decision(False)
        broad = [s for s in covering if s.context in ("user", "system")]
        chosen = broad or covering
        if any(not s.query for s in chosen):
            return Decision(True, patient_compartment=not broad)
        return Decision(True, patient_compartment=not broad, alternatives=tuple(s.query for s in chosen))

    def granted(self) -> str:
        return " ".join(s.raw for s in self.scopes)


@functools.lru_cache(maxsize=1024)
def _parsed(cls, scope_string: str) -> Grants:
    return cls([s for s in (parse_scope(raw) for raw in scope_string.split()) if s is not None])


def covers_scope(granted: Scope, asked: Scope) -> bool:
    """Whether the granted scope gives everything the asked one does, by meaning and not by string:
    the same context, the type or "*", every permission letter (v1 .read is v2 .rs), and a granular
    query only narrows (the asked scope keeps every parameter of the granted one's query)."""
    return (granted.context == asked.context
            and granted.resource_type in ("*", asked.resource_type)
            and set(asked.permissions) <= set(granted.permissions)
            and set(granted.query) <= set(asked.query))


def within(asked: list[str], granted: list[str]) -> bool:
    """Whether every asked scope is covered by the granted ones (a refresh may only narrow, RFC 6749
    section 6, SMART App Launch 2.2 "Refresh access token"): a resource scope when some granted
    resource scope covers it (covers_scope), any other scope (openid, launch/patient,
    offline_access...) only when it was granted as such. A malformed asked scope is not within."""
    try:
        resources = [s for s in (parse_scope(raw) for raw in granted) if s is not None]
        for raw in asked:
            scope = parse_scope(raw)
            if scope is None:
                if raw not in granted:
                    return False
            elif not any(covers_scope(g, scope) for g in resources):
                return False
    except ScopeError:
        return False
    return True
