"""Index rows extracted from a resource at write time (search.html, "index at write time").

For every supported parameter of the resource's type the expression is
evaluated (search/fhirpath.py) and its values normalised by the parameter
type's module (search/kinds). The result maps a kind to rows
(param key, group, *columns).

Composites (searchparameter.html#composite) match when one element instance
satisfies every component, so their rows carry the instance number in `group`.
Most components are exactly another parameter of the type evaluated element by
element (`component-code` of Observation.component is Observation.component.code):
those have no rows of their own, the base parameter's rows carry the element
instance number instead of 0 and the composite reads them (`component_keys`).
Only components that are not a parameter of their own (a narrower expression,
%resource, references) keep rows under `<composite key>#<i>`. `legacy=True`
writes the earlier layout (every component copied under key#i, base rows in
group 0): the ingest benchmark compares the two, tests check they agree.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .fhirpath import compile_expression, first_keys, is_choice, path_steps, split_union
from .kinds import kind, reference_kind, token_kind
from .registry import component_param, indexed_params, params_for

Rows = dict[str, list[tuple]]


def extract(resource: dict, base: str = "", legacy: bool = False) -> Rows:
    out: Rows = {}
    rtype = resource["resourceType"]
    elements: dict[str, list] = {}       # composite key -> its element instances, evaluated once
    for p in _plans(rtype):
        if p.keys is not None:
            for k in p.keys:
                if k in resource:
                    break
            else:
                continue                 # none of the elements its paths start from: no value
        param = p.param
        if p.kind == "composite":
            _composite(param, resource, out, elements, () if legacy else p.shared)
            continue
        if p.owner is None or legacy:
            values = p.run(resource)
            if values:
                _add(out, p.kind, p.key, 0, _rows(param, values, base))
        else:       # numbered by the element instances of the composite that reads these rows
            composite, expression = p.owner
            values = []
            for group, element in enumerate(_elements(composite, resource, elements), start=1):
                found = _evaluate_relative(expression, element) if isinstance(element, dict) else []
                _add(out, p.kind, p.key, group, _rows(param, found, base))
                values += found
        if values:
            extra = extra_rows(p, values)
            if extra is not None:
                _add(out, "token", extra[0], 0, extra[1])
    return out


def extra_rows(p, values) -> tuple[str, list] | None:
    """(key, rows) of the token rows a parameter's values index besides its own: a reference's
    :identifier, an identifier's :of-type; None for other parameters."""
    if p.kind == "reference":
        return p.key + reference_kind.IDENTIFIER, reference_kind.identifier_rows(values)
    if p.kind == "token" and p.param.code == "identifier":
        return p.key + token_kind.OF_TYPE, token_kind.of_type_rows(values)
    return None


@dataclass(frozen=True)
class _Plan:
    """How one parameter of a type is extracted, worked out once per type."""
    param: object
    key: str
    kind: str
    run: object                      # resource -> [(value, type)]
    keys: tuple[str, ...] | None     # top-level keys one of which a resource needs for a value (None: any)
    owner: tuple | None              # (composite, relative expression) numbering its rows, if any
    shared: tuple[int, ...]          # a composite: the components read from base rows


@functools.lru_cache(maxsize=None)
def _plans(rtype: str) -> tuple[_Plan, ...]:
    layout = composite_layout(rtype)
    return tuple(_Plan(p, p.key, p.kind, compile_expression(p.expression, rtype),
                       first_keys(p.expression, rtype), layout.grouped_by.get(p.key),
                       layout.shared.get(p.key, ())) for p in indexed_params(rtype))


def _rows(param, values, base):
    if param.kind == "reference":
        return reference_kind.rows(values, param, base)
    return kind(param.kind).rows(values, param)


def _add(out: Rows, kind_name: str, key: str, group: int, rows: list[tuple]) -> None:
    if rows:
        out.setdefault(kind_name, []).extend((key, group) + tuple(r) for r in rows)


def _elements(param, resource: dict, cache: dict) -> list:
    found = cache.get(param.key)
    if found is None:
        found = cache[param.key] = [element for element, _typ in param.evaluate(resource)]
    return found


def _composite(param, resource: dict, out: Rows, cache: dict, shared: tuple[int, ...]) -> None:
    """Each element the composite's expression selects is one group; components are
    evaluated relative to it (searchparameter.html#composite). Components in `shared` are read
    from their base parameter's rows (numbered the same way), not copied."""
    if len(shared) == len(param.components):
        return
    for group, element in enumerate(_elements(param, resource, cache), start=1):
        if not isinstance(element, dict):
            continue
        for i, (definition, expression) in enumerate(param.components):
            if i in shared:
                continue
            component = component_param(param.resource_type, definition)
            values = _evaluate_relative(expression, element)
            _add(out, component.kind, f"{param.key}#{i}", group, _rows(component, values, ""))


# ---- which components are their base parameter's rows --------------------------------------------

@dataclass
class CompositeLayout:
    """Per resource type: `keys` maps a composite key to the index key of each component (the base
    parameter's key, or `<composite>#<i>` when the component keeps rows of its own); `shared` to the
    component numbers read from base rows; `grouped_by` maps a base key to (the composite whose
    element instances number its rows, the component's relative expression)."""
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    shared: dict[str, tuple[int, ...]] = field(default_factory=dict)
    grouped_by: dict[str, tuple] = field(default_factory=dict)

    def readers(self, base_key: str) -> list[tuple[str, int]]:
        """(composite key, component number) of every composite that reads `base_key`'s rows."""
        return [(ckey, i) for ckey, keys in self.keys.items() for i, k in enumerate(keys) if k == base_key]


@functools.lru_cache(maxsize=None)
def composite_layout(rtype: str) -> CompositeLayout:
    layout = CompositeLayout()
    element_steps: dict[str, list] = {}      # base key -> the element steps that number its rows
    indexed = {p.key for p in indexed_params(rtype)}
    for param in indexed_params(rtype):
        if param.kind != "composite":
            continue
        keys, shared = [], []
        elements = _element_steps(param)
        for i, (definition, expression) in enumerate(param.components):
            base = _base_param(rtype, definition)
            ok = (elements is not None and base is not None and base.key in indexed
                  and element_steps.get(base.key, elements) == elements
                  and _same_values(base, elements, expression))
            if ok:
                element_steps[base.key] = elements
                layout.grouped_by.setdefault(base.key, (param, expression))
                keys.append(base.key)
                shared.append(i)
            else:
                keys.append(f"{param.key}#{i}")
        layout.keys[param.key] = tuple(keys)
        layout.shared[param.key] = tuple(shared)
    return layout


@functools.lru_cache(maxsize=None)
def readers(base_key: str) -> tuple[tuple[str, int], ...]:
    """(composite key, component number) of every composite whose component is `base_key`'s rows."""
    return tuple(composite_layout(base_key.split(".", 1)[0]).readers(base_key))


def component_keys(composite_key: str) -> tuple[str, ...]:
    """The index key each component of a composite is read from (its rows share group numbers)."""
    return composite_layout(composite_key.split(".", 1)[0]).keys[composite_key]


def _base_param(rtype: str, definition: str):
    component = component_param(rtype, definition)
    base = params_for(rtype).get(component.code)
    if base is None or base.url != definition or base.kind != component.kind or base.kind == "reference":
        return None      # references: the base parameter's rows depend on the server's base URL
    return base


def _element_steps(param) -> list | None:
    """The composite's element paths, if they are plain element names (no choice, cast or filter):
    then a path from an element continues the path to it."""
    steps = path_steps(param.expression, param.resource_type)
    if steps is None or any(s[0] != "child" or is_choice(s[1]) for path in steps for s in path):
        return None
    return steps


def _same_values(base, elements: list, expression: str) -> bool:
    """Whether the base parameter's expression is exactly the component's, continued from every
    element path: then its values are the components' values of every element, together."""
    own = path_steps(base.expression, base.resource_type)
    relative = path_steps(_anchor(expression), "Element")
    if own is None or relative is None:
        return False
    if any(s[0] in ("resolves_to", "index") for path in own + relative for s in path):
        return False       # steps that look at the root or at positions: not element by element
    no_rows = getattr(kind(base.kind), "NO_ROWS", ())
    own = [p for p in own if not (p and p[-1][0] == "cast" and p[-1][1].lower() in no_rows)]
    joined = sorted(_normal(e + r) for e in elements for r in relative)
    return joined == sorted(_normal(p) for p in own)


def _normal(steps) -> tuple:
    return tuple((s[0], s[1].lower()) + tuple(s[2:]) if s[0] == "cast" else tuple(s) for s in steps)


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
