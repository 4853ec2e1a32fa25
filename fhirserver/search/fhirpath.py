"""Evaluate SearchParameter expressions (http://hl7.org/fhir/R4/searchparameter.html).

Nearly every R4 search expression is a union of simple paths with casts
(`as`, `ofType`) and filters (`where(resolve() is Patient)`, `where(system='x')`).
Those compile here to plain Python closures over the JSON, which is many times
faster than a general FHIRPath engine and also knows `resolve()` (which
fhirpathpy lacks) for the type test on references. Anything else falls back to
fhirpathpy, compiled once.

An evaluator returns a list of (value, type) where type is the FHIR type name
when the path tells it (a choice element such as valueQuantity, or a cast),
else None.
"""
from __future__ import annotations

import functools
import re

from ..definitions import load_json

_TOKEN = re.compile(r"\s*(\(|\)|\||\.|\[\d+\]|'(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*|=|!=)")


class Unsupported(Exception):
    """The expression is outside the fast subset."""


def _tokens(expr: str) -> list[str]:
    pos, out = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise Unsupported(expr)
        out.append(m.group(1))
        pos = m.end()
    return out


class _Parser:
    """union := path ('|' path)* ; path := ['('] Type steps [as Type] [')'] steps"""

    def __init__(self, tokens: list[str], root_type: str):
        self.t, self.i, self.root = tokens, 0, root_type

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else None

    def take(self, expected=None):
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise Unsupported(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def union(self):
        paths = [self.path()]
        while self.peek() == "|":
            self.take("|")
            paths.append(self.path())
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()!r}")
        return paths

    def path(self):
        steps = []
        if self.peek() == "(":
            self.take("(")
            steps += self.path_body()
            if self.peek() == "as":
                self.take("as")
                steps.append(("cast", self.take()))
            self.take(")")
        else:
            steps += self.path_body()
        steps += self.steps()
        return steps

    def path_body(self):
        head = self.take()
        if head != self.root and head not in ("Resource", "DomainResource"):
            raise Unsupported(f"path for {head}, not {self.root}")
        return self.steps()

    def steps(self):
        steps = []
        while self.peek() == "." or (self.peek() or "").startswith("["):
            if self.peek().startswith("["):
                steps.append(("index", int(self.take()[1:-1])))
                continue
            self.take(".")
            name = self.take()
            if self.peek() == "(":
                steps.append(self.function(name))
            else:
                steps.append(("child", name))
        return steps

    def function(self, name):
        self.take("(")
        if name in ("as", "ofType"):
            step = ("cast", self.take())
        elif name == "where" and self.peek() == "resolve":
            self.take("resolve"), self.take("("), self.take(")"), self.take("is")
            step = ("resolves_to", self.take())
        elif name == "where" and self.peek(1) == "=":
            field = self.take()
            self.take("=")
            literal = self.take()
            if not literal.startswith("'"):
                raise Unsupported(literal)
            step = ("where_eq", field, literal[1:-1].replace("\\'", "'"))
        else:
            raise Unsupported(name)
        self.take(")")
        return step


@functools.lru_cache(maxsize=1)
def _choice_names() -> dict[str, tuple[tuple[str, str], ...]]:
    """{'value': (('valueQuantity', 'Quantity'), ...)} for every R4 choice element name[x]
    (profiles/required-elements.json), so an absent element is known absent without scanning keys."""
    out: dict[str, set] = {}
    for per_type in load_json("required-elements.json")["choices"].values():
        for base, names in per_type.items():
            stem = base[:-3]
            out.setdefault(stem, set()).update((n, n[len(stem):]) for n in names)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _children(item, name: str):
    """Child `name` of a JSON object, expanding arrays and choice elements (name[x])."""
    value, typ = item
    if not isinstance(value, dict):
        return []
    if name in value:
        found = value[name]
        return [(v, None) for v in found] if isinstance(found, list) else [(found, None)]
    out = []
    for key, t in _choice_names().get(name, ()):   # choice element: valueQuantity, effectiveDateTime, ...
        found = value.get(key)
        if found is not None:
            out += [(v, t) for v in found] if isinstance(found, list) else [(found, t)]
    return out


def _cast_ok(typ, wanted: str, value) -> bool:
    if typ is not None:
        return typ.lower() == wanted.lower()
    return True   # a non-choice element: its declared type is what the expression says


def _ref_type(ref: dict, root: dict) -> str | None:
    """The resource type a Reference points at (for `resolve() is T`)."""
    target = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(target, str):
        return ref.get("type") if isinstance(ref, dict) else None
    if target.startswith("#"):
        for c in root.get("contained") or ():
            if isinstance(c, dict) and c.get("id") == target[1:]:
                return c.get("resourceType")
        return None
    parts = target.split("?")[0].split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 else ref.get("type")


def _apply(steps, root: dict):
    items = [(root, None)]
    for step in steps:
        kind = step[0]
        if kind == "child":
            items = [c for it in items for c in _children(it, step[1])]
        elif kind == "cast":
            wanted = step[1]
            items = [(v, t or wanted) for v, t in items if _cast_ok(t, wanted, v)]
        elif kind == "resolves_to":
            items = [it for it in items if _ref_type(it[0], root) == step[1]]
        elif kind == "where_eq":
            items = [it for it in items if isinstance(it[0], dict) and it[0].get(step[1]) == step[2]]
        elif kind == "index":
            items = items[step[1]:step[1] + 1]
    return items


def _plain_path(steps):
    """A faster walker for a path of plain element names (no function, no choice element: most search
    parameters), with _apply's results: every value reached, arrays expanded, each typed None."""
    names = [step[1] for step in steps if step[0] == "child"]
    if len(names) != len(steps):
        return None
    choices = _choice_names()
    stems = [tuple(key for key, _t in choices.get(n, ())) for n in names]   # name[x] keys, if a choice stem

    def walk(resource: dict):
        items = [resource]
        for name, stem in zip(names, stems, strict=True):
            reached = []
            for value in items:
                if isinstance(value, dict):
                    if name in value:
                        found = value[name]
                        if isinstance(found, list):
                            reached.extend(found)
                        else:
                            reached.append(found)
                    elif stem and any(key in value for key in stem):   # a name[x] element: typed values
                        return _apply(steps, resource)
            if not reached:
                return []
            items = reached
        return [(v, None) for v in items]
    return walk


@functools.lru_cache(maxsize=None)
def compile_expression(expression: str, resource_type: str):
    """A function resource -> [(value, type or None)] for this type's part of the expression."""
    # a part that starts with an element name is relative to the resource (InsurancePlan.name is 'name | alias')
    parts = [p.strip() for p in split_union(expression)]
    parts = [f"{resource_type}.{p}" if re.match(r"^[a-z]", p) else p for p in parts]
    mine = [p for p in parts if _starts_with_type(p, resource_type)]
    try:
        compiled = [_Parser(_tokens(p), resource_type).union() for p in mine]
        paths = [steps for union in compiled for steps in union]
        runs = [_plain_path(steps) or functools.partial(_apply, steps) for steps in paths]
        if len(runs) == 1:
            return runs[0]
        return lambda resource: [it for run in runs for it in run(resource)]
    except Unsupported:
        return _fhirpathpy(" | ".join(mine) or expression)


def _starts_with_type(part: str, rtype: str) -> bool:
    head = re.match(r"^\(*\s*([A-Za-z]+)", part)
    return bool(head) and head.group(1) in (rtype, "Resource", "DomainResource")


def split_union(expression: str) -> list[str]:
    """Split on top-level '|' (not inside parentheses or strings)."""
    depth, quote, cur, out = 0, False, [], []
    for ch in expression:
        if ch == "'" :
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "|" and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _fhirpathpy(expression: str):
    from fhirpathpy import compile as fp_compile
    from fhirpathpy.models import models
    fn = fp_compile(expression, model=models["r4"])

    def evaluate(resource):
        try:
            return [(v, None) for v in fn(resource)]
        except Exception:   # an expression the engine cannot evaluate on this resource yields nothing
            return []
    return evaluate


def path_steps(expression: str, resource_type: str) -> list | None:
    """The step lists this type's part of a union expression runs, as compile_expression compiles
    them; None when a part is outside the fast subset (it would run through fhirpathpy)."""
    parts = [p.strip() for p in split_union(expression)]
    parts = [f"{resource_type}.{p}" if re.match(r"^[a-z]", p) else p for p in parts]
    try:
        return [steps for p in parts if _starts_with_type(p, resource_type)
                for steps in _Parser(_tokens(p), resource_type).union()]
    except Unsupported:
        return None


def is_choice(name: str) -> bool:
    """Whether `name` is the stem of a choice element (value for valueQuantity, ...)."""
    return name in _choice_names()


def first_keys(expression: str, resource_type: str) -> tuple[str, ...] | None:
    """The top-level JSON keys of a resource one of which must be present for this type's part of the
    expression to give any value (a choice stem counts with each of its typed keys); None when that
    cannot be told from the expression."""
    paths = path_steps(expression, resource_type)
    if paths is None:
        return None
    keys: list[str] = []
    for steps in paths:
        if not steps or steps[0][0] != "child":
            return None
        name = steps[0][1]
        keys += [name] + [key for key, _t in _choice_names().get(name, ())]
    return tuple(dict.fromkeys(keys))
