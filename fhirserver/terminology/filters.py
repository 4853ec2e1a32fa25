"""ValueSet.compose.include.filter over one compiled code system
(http://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.compose.include.filter, filter-operator):
is-a, descendent-of, is-not-a, generalizes on the hierarchy; =, in, not-in, regex, exists on a property.

A regex comes from a ValueSet a client may send ($expand valueSet=...). A pattern that could backtrack
exponentially (a quantified group holding a quantifier or an alternation, a back-reference) or a long
one is refused at once, and it is only matched against short values. No structural rule catches every
costly pattern (`.*.*.*.*.*.*!` holds no group and backtracks polynomially), so matching is done by the
`regex` module, which takes a timeout and releases the GIL while it matches: the regex filters one
question evaluates (an expansion or a membership test, imports included: regex_budget()) may spend
REGEX_BUDGET seconds in all (past it: 400 too-costly) and never stall other requests."""
from __future__ import annotations

import contextlib
import contextvars
import time

import regex as re

from ..errors import BadRequest, TooCostly
from .codesystem import CodeIndex

MAX_PATTERN = 200            # characters of a regex filter
MAX_SUBJECT = 256            # characters of a value a regex is matched against (longer never match)
REGEX_BUDGET = 1.0           # seconds the regex filters of one question may spend matching, over all concepts
HIERARCHY_OPS = frozenset({"is-a", "descendent-of", "is-not-a", "generalizes"})
OPS = HIERARCHY_OPS | {"=", "regex", "in", "not-in", "exists"}


def _ambiguous(pattern: str) -> bool:
    """Does a quantified group (at any depth) hold a quantifier or an alternation?"""
    stack = [False]                 # per open group: has it a quantifier or "|" inside
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < n and (pattern[i + 1].isdigit() and pattern[i + 1] != "0"):
                return True         # a back-reference
            i += 2
            continue
        if ch == "[":               # a class: skip to its closing bracket
            j = i + 1 + (pattern[i + 1:i + 2] == "^")
            j += pattern[j:j + 1] == "]"
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if ch == "(":
            if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
                return True         # look-arounds, named groups, inline flags
            stack.append(False)
            i += 3 if pattern.startswith("(?:", i) else 1
            continue
        elif ch == ")" and len(stack) > 1:
            inner = stack.pop()
            quantified = i + 1 < n and pattern[i + 1] in "*+?{"
            if inner and quantified:
                return True
            stack[-1] = stack[-1] or inner or quantified
        elif ch in "*+?{|":
            stack[-1] = True
        i += 1
    return False


def safe_regex(pattern) -> re.Pattern:
    """The compiled pattern, or 400 when it is too long, malformed or may backtrack without bound."""
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
        raise BadRequest(f"A regex filter must be a string of at most {MAX_PATTERN} characters")
    if _ambiguous(pattern):
        raise BadRequest("A regex filter may not quantify a group holding a quantifier or an alternation, "
                         "nor use back-references or look-arounds (they can take exponential time)")
    try:
        return re.compile(pattern)
    except (re.error, ValueError, OverflowError) as e:
        raise BadRequest(f"A regex filter does not compile: {e}") from None


def check(f: dict) -> tuple[str, str, str]:
    """(property, op, value) of a well-formed filter, or 400."""
    prop, op, value = (f.get("property"), f.get("op"), f.get("value")) if isinstance(f, dict) else (None,) * 3
    if not isinstance(prop, str) or op not in OPS or not isinstance(value, str):
        raise BadRequest(f"A ValueSet filter needs property, value and an op of {sorted(OPS)}: {f!r}")
    if op == "regex":
        safe_regex(value)
    return prop, op, value


_SPENT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("regex_spent", default=None)


@contextlib.contextmanager
def regex_budget():
    """One question's regex time budget (nested uses share the outer one)."""
    if _SPENT.get() is not None:
        yield
        return
    token = _SPENT.set([0.0])
    try:
        yield
    finally:
        _SPENT.reset(token)


def select(index: CodeIndex, f: dict) -> frozenset[str]:
    """The codes of the system the filter selects (regex filters within the current regex_budget())."""
    prop, op, value = check(f)
    if op in HIERARCHY_OPS:
        if op == "generalizes":
            return index.ancestors(value)
        below = index.descendants(value)
        if op == "is-a":
            return below
        if op == "descendent-of":
            own = index.find(value)
            return below - {own}
        return frozenset(index.concepts) - below                 # is-not-a
    codes = index.concepts
    if op == "exists":
        want = value == "true"
        return frozenset(c for c in codes if bool(index.prop(c, prop)) == want)
    if op == "regex":
        return _regex_select(index, prop, safe_regex(value), _SPENT.get() or [0.0])
    wanted = {v.strip() for v in value.split(",")} if op in ("in", "not-in") else {value}
    hit = frozenset(c for c in codes if wanted & set(index.prop(c, prop)))
    return frozenset(codes) - hit if op == "not-in" else hit


def _regex_select(index: CodeIndex, prop: str, rx, spent: list[float]) -> frozenset[str]:
    """The codes whose property fully matches, within what is left of REGEX_BUDGET (else TooCostly)."""
    start = time.monotonic()
    deadline = start + REGEX_BUDGET - spent[0]
    out = []
    try:
        _regex_walk(index, prop, rx, deadline, out)
    finally:
        spent[0] += time.monotonic() - start
    return frozenset(out)


def _regex_walk(index: CodeIndex, prop: str, rx, deadline: float, out: list) -> None:
    for c in index.concepts:
        for v in index.prop(c, prop):
            if not isinstance(v, str) or len(v) > MAX_SUBJECT:
                continue
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                if rx.fullmatch(v, timeout=left, concurrent=True):
                    out.append(c)
                    break
            except TimeoutError:
                raise TooCostly(f"The regex filters of this value set take more than {REGEX_BUDGET} s to "
                                f"evaluate ({rx.pattern!r}): use simpler patterns") from None
