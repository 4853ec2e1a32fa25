"""Search parameters are data: every one comes from the official R4 SearchParameter
Bundle (profiles/search-parameters.json) or from Med-Port's own few
(profiles/medport-search-parameters.json: `_custodian` on every type, the provisions of a
Consent); none is written by hand per resource.

Parameters the server cannot support are listed with the reason in
profiles/search-unsupported.json; they are left out of the CapabilityStatement
and rejected as unknown.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ..definitions import load_json, resource_types
from .fhirpath import compile_expression

KINDS = ("string", "token", "date", "number", "quantity", "reference", "uri", "composite", "special")

# Handled by the query engine itself rather than by an index (search.html#all).
ENGINE_PARAMS = {"_id", "_list", "_has"}


@dataclass(frozen=True)
class SearchParam:
    resource_type: str
    code: str
    kind: str                       # string | token | date | ... (SearchParameter.type)
    url: str
    expression: str | None
    targets: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()   # composite: (definition url, expression)
    definition: dict = field(default=None, repr=False, compare=False, hash=False)

    @property
    def key(self) -> str:
        """Unique name of this parameter's index rows: 'Observation.code'."""
        return f"{self.resource_type}.{self.code}"

    def evaluate(self, resource: dict):
        return compile_expression(self.expression, self.resource_type)(resource) if self.expression else []


@functools.lru_cache(maxsize=1)
def unsupported() -> dict[str, str]:
    """{SearchParameter url: reason} of parameters this server does not support."""
    return {row["url"]: row["reason"] for row in load_json("search-unsupported.json")["parameters"]}


MEDPORT_PARAMETERS = "medport-search-parameters.json"


@functools.lru_cache(maxsize=1)
def _by_url() -> dict[str, dict]:
    official = load_json("search-parameters.json")["entry"]
    own = load_json(MEDPORT_PARAMETERS)["entry"]      # Med-Port's own (custodian, consent provisions)
    return {e["resource"]["url"]: e["resource"] for e in official + own}


@functools.lru_cache(maxsize=1)
def all_params() -> dict[str, dict[str, SearchParam]]:
    """{resource type: {code: SearchParam}} for every supported parameter."""
    skip = unsupported()
    out: dict[str, dict[str, SearchParam]] = {t: {} for t in resource_types()}
    for sp in _by_url().values():
        if sp["url"] in skip:
            continue
        for base in sp.get("base", ()):
            if base == "Resource":
                targets = resource_types()
            elif base == "DomainResource":
                targets = resource_types() - {"Bundle", "Binary", "Parameters"}
            else:
                targets = (base,) if base in out else ()
            for rtype in targets:
                out[rtype][sp["code"]] = SearchParam(
                    rtype, sp["code"], sp["type"], sp["url"], sp.get("expression"),
                    tuple(sp.get("target", ())),
                    tuple((c["definition"], c["expression"]) for c in sp.get("component", ())),
                    sp)
    return out


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return all_params().get(resource_type, {})


def lookup(resource_type: str, code: str) -> SearchParam | None:
    return params_for(resource_type).get(code)


def component_param(resource_type: str, definition_url: str) -> SearchParam:
    """The parameter a composite component refers to, evaluated relative to the composite's element."""
    sp = _by_url()[definition_url]
    return SearchParam(resource_type, sp["code"], sp["type"], sp["url"], sp.get("expression"),
                       tuple(sp.get("target", ())))


@functools.lru_cache(maxsize=None)
def indexed_params(resource_type: str) -> tuple[SearchParam, ...]:
    """Parameters whose values are extracted at write time (all but the engine's own)."""
    return tuple(p for code, p in sorted(params_for(resource_type).items())
                 if code not in ENGINE_PARAMS and p.expression)
