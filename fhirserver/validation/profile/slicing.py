"""Which slice an item of a sliced element belongs to (profiling.html#slicing).

Each slice gets a Matcher, built on first use: one test per discriminator of the slicing.
  value / pattern  the value at the discriminator path (`system`, `coding.code`, `url`, `$this`,
                   `extension('url').value`) equals the slice's fixed value there, or contains its
                   pattern; a required binding there instead makes membership of that value set the
                   test; an array path matches when any of its values does;
  exists           the path has a value when the slice requires one (min >= 1), none when max = 0;
  type             the item's type (a choice element's JSON suffix, a resource's resourceType) is
                   one of the slice's types;
  profile          the value conforms to the slice's type profile (validated without errors).
An extension slice whose url child is not in the snapshot is identified by its type profile (the
extension's canonical URL). A discriminator whose expected value cannot be found in the slice's
definition matches nothing.
"""
from __future__ import annotations

import re

from .values import contains, equal

_SEGMENT = re.compile(r"(?:[^.']|'[^']*')+")
_EXT = re.compile(r"extension\('([^']*)'\)")
_OF_TYPE = re.compile(r"ofType\((\w+)\)")


def segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in _SEGMENT.findall(path or "$this") if s != "$this")


def values_at(item, segs: tuple[str, ...], tcode: str | None) -> list | None:
    """The values at a discriminator path in the instance; None when the path cannot be followed."""
    cur = [item]
    for seg in segs:
        out = []
        m = _EXT.fullmatch(seg)
        if m:
            for c in cur:
                if isinstance(c, dict):
                    out.extend(e for e in c.get("extension") or () if isinstance(e, dict) and e.get("url") == m[1])
        elif _OF_TYPE.fullmatch(seg):
            out = cur
        elif "(" in seg:               # resolve() and other functions: not followed
            return None
        else:
            for c in cur:
                if not isinstance(c, dict):
                    continue
                v = c.get(seg)
                if v is None:          # a choice element named without its type
                    v = next((c[k] for k in c if k.startswith(seg) and k[len(seg):len(seg) + 1].isupper()), None)
                if isinstance(v, list):
                    out.extend(v)
                elif v is not None:
                    out.append(v)
        cur = out
    return cur


def definition_at(walker, node, segs: tuple[str, ...]):
    """The element definition at a path below a slice: the slice's own children, else those of its
    type profile or type."""
    for seg in segs:
        m = _EXT.fullmatch(seg)
        src = node if node.kids else walker.children_source(node, node.types[0] if node.types else None)
        if src is None:
            return None
        if m:
            ext = src.kids.get("extension")
            if ext is None:
                return None
            node = next((s for s in ext[0].slices
                         if m[1] in s.profiles.get("Extension", ()) or _fixed_url(walker, s) == m[1]), None)
        elif _OF_TYPE.fullmatch(seg):
            continue
        else:
            hit = src.kids.get(seg) or next((v for k, v in src.kids.items()
                                             if v[0].name == seg + "[x]"), None)
            node = hit[0] if hit else None
        if node is None:
            return None
    return node


def _fixed_url(walker, node) -> str | None:
    url = definition_at(walker, node, ("url",)) if node.kids else None
    if url is not None and url.fixed is not None:
        return url.fixed
    profiles = node.profiles.get("Extension")
    return profiles[0].partition("|")[0] if profiles else None


class Matcher:
    __slots__ = ("tests",)

    def __init__(self, tests: list):
        self.tests = tests

    def __call__(self, walker, item, tcode) -> bool:
        return all(t(walker, item, tcode) for t in self.tests)


def _never(w, item, tcode) -> bool:
    return False


def build(walker, sliced, slice_node) -> Matcher:
    discs = sliced.slicing[0] if sliced.slicing else (("value", "url"),)
    tests = []
    for kind, path in discs:
        segs = segments(path)
        tests.append(_test(walker, slice_node, kind, segs))
    return Matcher(tests)


def _test(walker, slice_node, kind: str, segs: tuple[str, ...]):
    if kind in ("value", "pattern"):
        if segs == ("url",) and not slice_node.kids and "Extension" in slice_node.types:
            url = _fixed_url(walker, slice_node)
            if url is None:
                return _never
            return lambda w, item, tcode: isinstance(item, dict) and item.get("url") == url
        d = definition_at(walker, slice_node, segs)
        if d is None:
            return _never
        if d.fixed is not None:
            fixed = d.fixed
            return lambda w, item, tcode: any(equal(v, fixed) for v in values_at(item, segs, tcode) or ())
        if d.pattern is not None:
            pattern = d.pattern
            return lambda w, item, tcode: any(contains(v, pattern) for v in values_at(item, segs, tcode) or ())
        if d.binding and d.binding[0] == "required":
            vs = d.binding[1]
            return lambda w, item, tcode: any(w.in_value_set(vs, v) for v in values_at(item, segs, tcode) or ())
        return _never
    if kind == "exists":
        d = definition_at(walker, slice_node, segs)
        if d is None:
            return _never
        want = d.min >= 1
        if not want and d.max != 0:
            return lambda w, item, tcode: True
        return lambda w, item, tcode: bool(values_at(item, segs, tcode)) == want
    if kind == "type":
        d = definition_at(walker, slice_node, segs) if segs else slice_node
        if d is None or not d.types:
            return _never
        allowed = d.allowed

        def of_type(w, item, tcode):
            if not segs:
                found = [item.get("resourceType") if isinstance(item, dict) and "resourceType" in item else tcode]
            else:
                found = [v.get("resourceType") for v in values_at(item, segs, tcode) or () if isinstance(v, dict)]
            return bool(found) and all(t in allowed for t in found)
        return of_type
    if kind == "profile":
        d = definition_at(walker, slice_node, segs) if segs else slice_node
        profiles = [p for ps in (d.profiles.values() if d else ()) for p in ps]
        if not profiles:
            return _never
        return lambda w, item, tcode: any(
            all(w.conforms(v, p) for p in profiles) for v in values_at(item, segs, tcode) or ())
    return _never


def matcher(walker, sliced, slice_node) -> Matcher:
    m = slice_node.matcher
    if m is None:
        m = slice_node.matcher = build(walker, sliced, slice_node)
    return m
