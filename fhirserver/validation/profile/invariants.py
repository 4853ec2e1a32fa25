"""FHIRPath invariants: ElementDefinition.constraint.expression, evaluated on one element.

    check = compile_invariant("us-core-6", "family.exists() or given.exists()")
    check(focus, resource, base=None, root=None) -> True | False | None

* focus: the element the constraint sits on, as JSON: an object (complex element, resource), a primitive's
  value, or for a primitive without a value its `_name` object (id, extension).
* resource: %resource, the resource holding the focus (a contained or Bundle entry resource for their own
  elements); root: %rootResource when it differs (the container of a contained resource).
* base: the focus's type or element path ("Extension", "Observation.component", "dateTime"), needed only
  where the expression names a choice element (`value` for valueQuantity) or asks for a type (`as`, `is`).
  A resource focus needs none (its resourceType says it); without one an element is read as a plain
  Element (fhirpathpy's children() cannot walk a node of no type).

True: the constraint holds; False: it is violated; None: it could not be evaluated (the expression uses a
function the engine lacks: conformsTo, memberOf, resolve ...; or the engine failed on this data). None is
never a pass or a failure: the caller reports it as information.

An expression's value is read as: one boolean is that boolean; an empty result is no violation (the
constraint's subject is absent: ref-1 on a Reference without `reference`, vs-1 on an effectivePeriod, where
the official expressions yield empty); anything else holds (as the HL7 Java engine reads a non-boolean).

Engine: fhirpathpy with the R4 model (choice types, type tests), compiled once per expression, with the
environment of http://hl7.org/fhir/R4/fhirpath.html#vars (%resource, %rootResource, %context, %ucum) and the
FHIR functions of fhirpath.html#functions that fhirpathpy lacks and this module can answer exactly:
hasValue() and htmlChecks() (narrative.py). trace() output is dropped.
The invariants on every element or every resource (ele-1, ext-1, dom-2 ... dom-6, txt-1, txt-2) and the
US Core vital-signs ones are answered in plain Python (core_invariants.py) when their expression is the
official one; tests/validation/profile/test_invariants.py proves each equal to fhirpathpy on every element
of the official R4 examples.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from fhirpathpy.parser import CommonTokenStream, ErrorListener, FHIRPathLexer, FHIRPathParser, InputStream, Token

from . import budget, narrative

budget.install()        # every fhirpathpy step checks the validation's time budget (budget.py)
Invariant = Callable[..., "bool | None"]
MODEL = models["r4"]


def _is_primitive(value) -> bool:
    return value is not None and not isinstance(value, (dict, list))


def _has_value(inputs):
    """hasValue(): a single FHIR primitive that has a value (not only extensions), fhirpath.html#functions."""
    return [len(inputs) == 1 and _is_primitive(inputs[0])]


def _html_checks(inputs):
    """htmlChecks() on Narrative.div: the XHTML rules of narrative.html#xhtml (see narrative.py)."""
    return [len(inputs) == 1 and isinstance(inputs[0], str) and narrative.valid(inputs[0])]


_OPTIONS = {"userInvocationTable": {"hasValue": {"fn": _has_value, "arity": {0: []}},
                                    "htmlChecks": {"fn": _html_checks, "arity": {0: []}}},
            "traceFn": lambda label, value: None}


def truth(result: list) -> bool:
    """An expression's value read as the constraint's outcome: only a single false is a violation."""
    return not (len(result) == 1 and result[0] is False)


class _Refuse(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):
        raise SyntaxError(msg)


def well_formed(expression: str) -> bool:
    """Whether the whole text is one FHIRPath expression (fhirpathpy's own parse recovers from errors
    silently and would evaluate what it could read)."""
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Refuse())
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(_Refuse())
    try:
        parser.expression()
    except SyntaxError:
        return False
    return tokens.LA(1) == Token.EOF


class FhirPathInvariant:
    """An expression evaluated by fhirpathpy (compiled once)."""

    __slots__ = ("expression", "_compiled")

    def __init__(self, expression: str):
        self.expression = expression
        self._compiled = None       # not a well-formed expression: never evaluated
        if isinstance(expression, str) and well_formed(expression):
            try:
                self._compiled = fhirpathpy.compile(expression, MODEL, _OPTIONS)
            except Exception:
                self._compiled = None

    def __call__(self, focus, resource, base: str | None = None, root=None) -> bool | None:
        if self._compiled is None:
            return None
        node = focus if _is_resource(focus) else ResourceNode.create_node(focus, base or "Element")
        env = {"resource": resource, "rootResource": resource if root is None else root}
        try:
            return truth(self._compiled(node, env))
        except Exception:           # "Not implemented: conformsTo", or the engine failed on this data
            return None


def _is_resource(focus) -> bool:
    return isinstance(focus, dict) and "resourceType" in focus


@functools.lru_cache(maxsize=8192)
def fhirpath_invariant(expression: str) -> FhirPathInvariant:
    """The expression evaluated by fhirpathpy alone (what the native checks are proven against)."""
    return FhirPathInvariant(expression)


@functools.lru_cache(maxsize=8192)
def compile_invariant(key: str, expression: str) -> Invariant:
    """The check of one constraint: native Python for the official core expressions, else fhirpathpy."""
    from .core_invariants import NATIVE
    native = NATIVE.get((key, expression))
    return native if native is not None else fhirpath_invariant(expression)
