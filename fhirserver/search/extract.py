"""Index rows extracted from a resource at write time (search.html, "index at write time").

For every supported parameter of the resource's type the expression is
evaluated (search/fhirpath.py) and its values normalised by the parameter
type's module (search/kinds). The result maps a kind to rows
(param key, group, *columns); group is 0 except for composite components,
where it numbers the element instance that the components share.
"""
from __future__ import annotations

import functools

from .fhirpath import compile_expression, split_union
from .kinds import kind, reference_kind, token_kind
from .registry import component_param, indexed_params

Rows = dict[str, list[tuple]]


def extract(resource: dict, base: str = "") -> Rows:
    out: Rows = {}
    rtype = resource["resourceType"]
    for param in indexed_params(rtype):
        if param.kind == "composite":
            _composite(param, resource, out)
            continue
        values = param.evaluate(resource)
        if not values:
            continue
        _add(out, param.kind, param.key, 0, _rows(param, values, base))
        if param.kind == "reference":
            _add(out, "token", param.key + reference_kind.IDENTIFIER, 0, reference_kind.identifier_rows(values))
        elif param.kind == "token" and param.code == "identifier":
            _add(out, "token", param.key + token_kind.OF_TYPE, 0, token_kind.of_type_rows(values))
    return out


def _rows(param, values, base):
    if param.kind == "reference":
        return reference_kind.rows(values, param, base)
    return kind(param.kind).rows(values, param)


def _add(out: Rows, kind_name: str, key: str, group: int, rows: list[tuple]) -> None:
    if rows:
        out.setdefault(kind_name, []).extend((key, group) + tuple(r) for r in rows)


def _composite(param, resource: dict, out: Rows) -> None:
    """Each element the composite's expression selects is one group; components are
    evaluated relative to it (searchparameter.html#composite)."""
    elements = param.evaluate(resource)
    for group, (element, _typ) in enumerate(elements, start=1):
        if not isinstance(element, dict):
            continue
        for i, (definition, expression) in enumerate(param.components):
            component = component_param(param.resource_type, definition)
            values = _evaluate_relative(expression, element)
            _add(out, component.kind, f"{param.key}#{i}", group, _rows(component, values, ""))


def _evaluate_relative(expression: str, element: dict):
    """Component expressions are relative paths ('code', 'value.as(Quantity)'): evaluate them
    as paths from the element."""
    return _relative_fn(expression)(element)


@functools.lru_cache(maxsize=None)
def _relative_fn(expression: str):
    return compile_expression(_anchor(expression), "Element")


def _anchor(expression: str) -> str:
    return " | ".join(_anchor_one(p.strip()) for p in split_union(expression))


def _anchor_one(part: str) -> str:
    if part.startswith("("):
        return "(Element." + part[1:]
    return "Element." + part
