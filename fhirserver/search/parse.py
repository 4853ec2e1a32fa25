"""Parse search parameters into a query tree (http://hl7.org/fhir/R4/search.html).

Parameter names are data from the registry; each value is parsed by its
type's module (search/kinds). Chains (subject:Patient.name), reverse chains
(_has:Observation:patient:code, nested), :missing, :not, :identifier,
:of-type, composites ($) and _list are handled here for every type.
Unknown parameters are a 400 unless Prefer: handling=lenient (search.html#errors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..definitions import resource_types
from ..errors import BadRequest
from . import query as q
from .kinds import kind, reference_kind, token_kind
from .parse_util import split_unescaped, unescape
from .registry import SearchParam, component_param, lookup
from .results import RESULT_PARAMS, ResultSpec, parse_result_param

MAX_CHAIN_DEPTH = 4


@dataclass
class ParsedSearch:
    query: q.And
    results: ResultSpec = field(default_factory=ResultSpec)
    used: list[tuple[str, str]] = field(default_factory=list)   # echoed in the self link

    @property
    def count(self):
        return self.results.count

    @property
    def cursor(self):
        return self.results.cursor


class UnknownParameter(BadRequest):
    pass


def parse_search(rtype: str, params: list[tuple[str, str]], lenient: bool = False, base: str = "") -> ParsedSearch:
    out = ParsedSearch(q.And(()))
    clauses = []
    for name, value in params:
        bare = name.split(":")[0]
        if bare in RESULT_PARAMS:
            parse_result_param(rtype, out.results, name, value)
            if bare not in ("_cursor", "_format", "_pretty"):
                out.used.append((name, value))
            continue
        try:
            clauses.append(parse_clause(rtype, name, value, base, depth=0))
        except UnknownParameter:
            if lenient:
                continue
            raise
        out.used.append((name, value))
    out.query = q.And(tuple(clauses))
    return out


def parse_clause(rtype: str, name: str, value: str, base: str, depth: int):
    if depth > MAX_CHAIN_DEPTH:
        raise BadRequest(f"Chains and _has may nest at most {MAX_CHAIN_DEPTH} levels")
    if value == "":
        raise BadRequest(f"Empty value for search parameter '{name}'")
    if name.startswith("_has:"):
        return _has(rtype, name, value, base, depth)
    head, dot, rest = name.partition(".")
    if dot:
        return _chain(rtype, head, rest, value, base, depth)
    code, _, modifier = name.partition(":")
    if code == "_id":
        if modifier:
            raise BadRequest(f"Unknown modifier :{modifier} for _id")
        return q.IdIn(tuple(unescape(v) for v in split_unescaped(value, ",")))
    if code == "_list":
        ids = tuple(unescape(v) for v in split_unescaped(value, ","))
        return q.Has("List", "List.item", q.IdIn(ids))
    param = lookup(rtype, code)
    if param is None:
        raise UnknownParameter(f"Unknown search parameter '{code}' for {rtype}")
    if modifier == "missing":
        return _missing(param, value)
    if param.kind == "composite":
        if modifier:
            raise BadRequest(f"Composite parameter '{code}' takes no modifier")
        return q.Or(tuple(_composite(param, alt, base) for alt in split_unescaped(value, ",")))
    if param.kind == "reference" and modifier == "identifier":
        return q.Or(tuple(q.Match("token", param.key + reference_kind.IDENTIFIER, token_kind.parse(param, "", alt))
                          for alt in split_unescaped(value, ",")))
    if param.kind == "token" and modifier == "not":
        return q.Not(q.Or(tuple(q.Match("token", param.key, token_kind.parse(param, "", alt))
                                for alt in split_unescaped(value, ","))))
    if param.kind == "token" and modifier == "of-type":
        return q.Or(tuple(q.Match("token", param.key + token_kind.OF_TYPE, token_kind.parse(param, modifier, alt))
                          for alt in split_unescaped(value, ",")))
    return q.Or(tuple(q.Match(param.kind, param.key, _parse_value(param, modifier, alt, base))
                      for alt in split_unescaped(value, ",")))


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
        keys = tuple((component_param(param.resource_type, d).kind, f"{param.key}#{i}")
                     for i, (d, _e) in enumerate(param.components))
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


def _chain(rtype: str, head: str, rest: str, value: str, base: str, depth: int):
    """subject:Patient.name=x (search.html#chaining): a reference parameter, an optional target type, the rest."""
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
            raise BadRequest(f"No target type of '{code}' has the parameter '{rest.split('.')[0]}'")
    chains = tuple(q.Chain(param.key, t, parse_clause(t, rest, value, base, depth + 1)) for t in targets)
    return chains[0] if len(chains) == 1 else q.Or(chains)


def _chain_target_ok(target: str, rest: str) -> bool:
    code = rest.split(".")[0].split(":")[0]
    return code in ("_id", "_has", "_list") or lookup(target, code) is not None or code.startswith("_has")


def _has(rtype: str, name: str, value: str, base: str, depth: int):
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
    return q.Has(source, ref.key, parse_clause(source, rest, value, base, depth + 1))
