"""Parse search parameters into a query tree (http://hl7.org/fhir/R4/search.html).

Parameter names are data from the registry; each value is parsed by its
type's module (search/kinds). Chains (subject:Patient.name), reverse chains
(_has:Observation:patient:code, nested), :missing, :not, :identifier,
:of-type, composites ($) and _list are handled here for every type; token :in, :not-in, :below and
:above by search/token_sets.py, with the terminology the caller passes (none: 400).
Unknown parameters (search.html#errors) are a 400 when strict, or else left out of the query and
listed in ParsedSearch.ignored (the search interaction decides which: lenient unless the client
sends Prefer: handling=strict). Only an unknown parameter is ignored: an unknown modifier or a
malformed value of a known parameter changes what the search means, so it is always a 400.

Every query is bounded while it is parsed (search/limits.py): parameters, values per parameter,
chain depth, the target types of an untyped chain and the query-tree nodes of the whole query;
past any of them the search is refused as too costly (400), before anything runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..definitions import resource_types
from ..errors import BadRequest, TooCostly
from . import query as q
from .extract import component_keys
from .implicit_systems import widen
from .kinds import kind, reference_kind, token_kind
from .limits import DEFAULT_LIMITS, NodeBudget, SearchLimits, check_length, size
from .parse_util import split_unescaped, unescape
from .registry import SearchParam, component_param, lookup
from .results import RESULT_PARAMS, ResultSpec, parse_result_param
from .token_sets import MODIFIERS as SET_MODIFIERS
from .token_sets import TokenSets


@dataclass
class ParsedSearch:
    query: q.And
    results: ResultSpec = field(default_factory=ResultSpec)
    used: list[tuple[str, str]] = field(default_factory=list)   # echoed in the self link
    ignored: list[str] = field(default_factory=list)            # unknown parameters left out (lenient)

    @property
    def count(self):
        return self.results.count

    @property
    def cursor(self):
        return self.results.cursor


class UnknownParameter(BadRequest):
    """A parameter this server does not know for the type (ignored when lenient)."""


def parse_search(rtype: str, params: list[tuple[str, str]], lenient: bool = False, base: str = "",
                 limits: SearchLimits | None = None, budget: NodeBudget | None = None,
                 terminology=None) -> ParsedSearch:
    """`budget` is shared when several searches count against one total (the GET entries of a Bundle).
    Every parameter given counts toward max_params, ignored or not; the other limits bound what is used.
    `terminology` (fhirserver.terminology.for_store(store)) expands token :in/:not-in/:below/:above;
    without it they are refused (400)."""
    limits = limits or DEFAULT_LIMITS
    if len(params) > limits.max_params:
        raise TooCostly(f"This search has {len(params)} parameters; this server takes at most "
                        f"{limits.max_params}. Split it into several searches")
    p = _Parser(base, limits, NodeBudget(limits.max_nodes), TokenSets(terminology))
    out = ParsedSearch(q.And(()))
    clauses = []
    for name, value in params:
        bare = name.split(":")[0]
        if bare in RESULT_PARAMS:
            if bare != "_cursor":           # the cursor holds sort values as stored: bounded by the store
                p.check_values(name, value)
            parse_result_param(rtype, out.results, name, value)
            if bare not in ("_cursor", "_format", "_pretty"):
                out.used.append((name, value))
            continue
        try:
            clauses.append(p.clause(rtype, name, value, depth=0))
        except UnknownParameter:
            if lenient:
                if name not in out.ignored:
                    out.ignored.append(name)
                continue
            raise
        out.used.append((name, value))
    out.query = q.And(tuple(clauses))
    p.budget.charge(1, "the whole query")
    if budget is not None:
        budget.charge(p.budget.used, rtype)
    return out


class _Parser:
    def __init__(self, base: str, limits: SearchLimits, budget: NodeBudget, sets: TokenSets):
        self.base, self.limits, self.budget, self.sets = base, limits, budget, sets

    def check_values(self, name: str, value: str) -> list[str]:
        """The comma-separated values of `value` (escapes kept), refused past max_values or past the
        characters a value may have."""
        check_length(name, value)           # before splitting: a value of megabytes is never walked
        alts = split_unescaped(value, ",")
        check_length(name, value, alts)
        if len(alts) > self.limits.max_values:
            raise TooCostly(f"'{name}' has {len(alts)} comma-separated values; this server takes at most "
                            f"{self.limits.max_values} per parameter. Split the search")
        return alts

    def clause(self, rtype: str, name: str, value: str, depth: int, whole: str = ""):
        whole = whole or name
        if depth > self.limits.max_chain_depth:
            raise TooCostly(f"Chains and _has may nest at most {self.limits.max_chain_depth} levels; "
                            f"'{whole}' goes deeper. Search in steps instead")
        if name == "_has" or name.startswith("_has:"):        # known (search.html#has): malformed is a 400
            return self._has(rtype, name, value, depth, whole)
        head, dot, rest = name.partition(".")
        if dot:
            return self._chain(rtype, head, rest, value, depth, whole)
        code = name.partition(":")[0]
        if code not in ("_id", "_list") and lookup(rtype, code) is None:
            raise UnknownParameter(f"Unknown search parameter '{code}' for {rtype}")
        if value == "":
            raise BadRequest(f"Empty value for search parameter '{name}'")
        node = _leaf(rtype, name, value, self.check_values(whole, value), self.base, self.sets)
        self.budget.charge(size(node), name)
        return node

    def _chain(self, rtype: str, head: str, rest: str, value: str, depth: int, whole: str):
        """subject:Patient.name=x (search.html#chaining): a reference parameter, an optional target type,
        the rest. Without a type the chain tries every target type that has the next parameter; past
        max_chain_targets of them it must name one."""
        code, _, target = head.partition(":")
        param = lookup(rtype, code)
        if param is None:
            raise UnknownParameter(f"Unknown search parameter '{code}' for {rtype}")
        if param.kind != "reference":
            raise BadRequest(f"Cannot chain through '{code}': it is a {param.kind} parameter, not a reference")
        if target:
            if target not in resource_types():
                raise BadRequest(f"Unknown resource type '{target}' in chain '{head}'")
            targets = [target]
        else:
            targets = [t for t in param.targets if t in resource_types() and _chain_target_ok(t, rest)]
            if not targets:
                raise UnknownParameter(f"No target type of '{code}' has the parameter '{rest.split('.')[0]}'")
            if len(targets) > self.limits.max_chain_targets:
                raise TooCostly(
                    f"The chain '{code}.{rest}' could lead to {len(targets)} resource types; this server "
                    f"follows at most {self.limits.max_chain_targets} without a type. Name the target type "
                    f"with the :Type modifier, e.g. '{code}:{targets[0]}.{rest}'")
        self.budget.charge(len(targets) + (len(targets) > 1), f"{head}.{rest}")
        chains = tuple(q.Chain(param.key, t, self.clause(t, rest, value, depth + 1, whole)) for t in targets)
        return chains[0] if len(chains) == 1 else q.Or(chains)

    def _has(self, rtype: str, name: str, value: str, depth: int, whole: str):
        """_has:Observation:patient:code=x (search.html#has): resources referred to by matching Observations."""
        parts = name.split(":", 3)
        if len(parts) < 4 or not all(parts[1:]):
            raise BadRequest(f"_has needs _has:Type:reference:parameter, got '{name}'")
        _, source, ref_code, rest = parts
        if source not in resource_types():
            raise BadRequest(f"Unknown resource type '{source}' in '{name}'")
        ref = lookup(source, ref_code)
        if ref is None or ref.kind != "reference":
            raise BadRequest(f"'{ref_code}' is not a reference parameter of {source}")
        if ref.targets and rtype not in ref.targets:
            raise BadRequest(f"{source}.{ref_code} cannot refer to {rtype}")
        self.budget.charge(1, name)
        return q.Has(source, ref.key, self.clause(source, rest, value, depth + 1, whole))


def _leaf(rtype: str, name: str, value: str, alts: list[str], base: str, sets: TokenSets):
    """A parameter without chain or _has: an Or of its comma-separated values `alts` (or :missing, _id...)."""
    code, _, modifier = name.partition(":")
    if code == "_id":
        if modifier:
            raise BadRequest(f"Unknown modifier :{modifier} for _id")
        return q.IdIn(tuple(unescape(v) for v in alts))
    if code == "_list":
        if modifier:
            raise BadRequest(f"Unknown modifier :{modifier} for _list")
        ids = tuple(unescape(v) for v in alts)
        return q.Has("List", "List.item", q.IdIn(ids))
    param = lookup(rtype, code)
    if param is None:
        raise UnknownParameter(f"Unknown search parameter '{code}' for {rtype}")
    if modifier == "missing":
        return _missing(param, value)
    if param.kind == "composite":
        if modifier:
            raise BadRequest(f"Composite parameter '{code}' takes no modifier")
        return q.Or(tuple(_composite(param, alt, base) for alt in alts))
    if param.kind == "reference" and modifier == "identifier":
        return q.Or(tuple(q.Match("token", param.key + reference_kind.IDENTIFIER, token_kind.parse(param, "", alt))
                          for alt in alts))
    if param.kind == "token" and modifier == "not":
        return q.Not(q.Or(tuple(widen(param, token_kind.parse(param, "", alt)) for alt in alts)))
    if param.kind == "token" and modifier in SET_MODIFIERS:
        return sets.clause(param, modifier, alts)
    if param.kind == "token" and modifier == "of-type":
        return q.Or(tuple(q.Match("token", param.key + token_kind.OF_TYPE, token_kind.parse(param, modifier, alt))
                          for alt in alts))
    if param.kind == "token" and not modifier:
        return q.Or(tuple(widen(param, _parse_value(param, "", alt, base)) for alt in alts))
    return q.Or(tuple(q.Match(param.kind, param.key, _parse_value(param, modifier, alt, base))
                      for alt in alts))


def _parse_value(param: SearchParam, modifier: str, raw: str, base: str):
    if raw == "":
        raise BadRequest(f"Empty value in search parameter '{param.code}'")
    if param.kind == "reference":
        return reference_kind.parse(param, modifier, raw, base)
    return kind(param.kind).parse(param, modifier, raw)


def _missing(param: SearchParam, value: str):
    if value not in ("true", "false"):
        raise BadRequest(f"{param.code}:missing must be true or false, got {value!r}")
    if param.kind == "composite":
        keys = tuple((component_param(param.resource_type, d).kind, key)
                     for (d, _e), key in zip(param.components, component_keys(param.key), strict=True))
    else:
        keys = ((param.kind, param.key),)
    return q.Missing(keys, value == "true")


def _composite(param: SearchParam, raw: str, base: str):
    """code-value-quantity=http://loinc.org|8480-6$lt60 (search.html#composite)."""
    values = split_unescaped(raw, "$")
    if len(values) != len(param.components):
        raise BadRequest(f"'{param.code}' needs {len(param.components)} values separated by $, got {raw!r}")
    parts = []
    for (definition, _expr), v in zip(param.components, values, strict=True):
        component = component_param(param.resource_type, definition)
        parts.append((component.kind, _parse_value(component, "", v, base)))
    return q.Composite(param.key, tuple(parts))


def _chain_target_ok(target: str, rest: str) -> bool:
    code = rest.split(".")[0].split(":")[0]
    return code in ("_id", "_has", "_list") or lookup(target, code) is not None or code.startswith("_has")
