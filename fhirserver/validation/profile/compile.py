"""A StructureDefinition's snapshot compiled once into a tree of element checks (profiling.html).

Each ElementDefinition becomes a Node: cardinality, allowed types (a choice element `value[x]` is
reachable under every JSON name `value<Type>`, the allowed ones marked), fixed[x] / pattern[x],
binding, maxLength, compiled constraints, its children by JSON name, and when sliced the slicing
rules and the slices in order. The tree is built from element ids (elementdefinition.html#id):
`Observation.component:systolic.code` is the child `code` of the slice `systolic` of
`Observation.component`. Re-slices (`a:s/t`) are left out. A contentReference element shares the
children and types of the element it names.

Compiled forms are cached per (url, version, meta.versionId or "shipped", meta.lastUpdated), so an SD
is compiled once per process and again only when a new version of it is stored.
"""
from __future__ import annotations

import threading

from . import types as T

_PREFIXES = ("fixed", "pattern")


class Constraint:
    __slots__ = ("key", "severity", "human", "expression", "fn")

    def __init__(self, c: dict, fn):
        self.key = c.get("key") or "?"
        self.severity = "warning" if c.get("severity") == "warning" else "error"
        self.human = c.get("human") or ""
        self.expression = c.get("expression") or ""
        self.fn = fn


class Node:
    """One ElementDefinition of a compiled snapshot."""
    __slots__ = ("id", "path", "min", "max", "types", "allowed", "profiles", "targets", "fixed", "pattern",
                 "binding", "max_length", "bounds", "constraints", "kids", "required", "slicing", "slices",
                 "slice_name", "content_ref", "typed", "matcher", "sd_url")

    def __init__(self, e: dict, sd_url: str):
        self.id = e.get("id") or e.get("path") or ""
        self.path = e.get("path") or self.id
        self.sd_url = sd_url
        self.min = e.get("min") or 0
        mx = e.get("max", "*")
        self.max = None if mx == "*" else int(mx)
        self.slice_name = e.get("sliceName")
        self.types: tuple[str, ...] = ()
        self.profiles: dict[str, tuple[str, ...]] = {}    # type code -> type.profile canonicals
        self.targets: dict[str, tuple[str, ...]] = {}     # Reference -> targetProfile canonicals
        for t in e.get("type") or ():
            code = t.get("code")
            if not code:
                continue
            self.types += (code,)
            if t.get("profile"):
                self.profiles[code] = tuple(t["profile"])
            if t.get("targetProfile"):
                self.targets[code] = tuple(t["targetProfile"])
        self.allowed = frozenset(self.types)
        self.fixed = self.pattern = None
        low = high = None
        for k, v in e.items():
            if k.startswith("fixed"):
                self.fixed = v
            elif k.startswith("pattern"):
                self.pattern = v
            elif k.startswith("minValue"):
                low = v
            elif k.startswith("maxValue"):
                high = v
        self.bounds = (low, high) if low is not None or high is not None else None
        b = e.get("binding") or {}
        strength, vs = b.get("strength"), b.get("valueSet")
        self.binding = (strength, vs) if strength in ("required", "extensible") and vs else None
        self.max_length = e.get("maxLength")
        self.constraints: tuple[Constraint, ...] = ()
        self.kids: dict[str, tuple[Node, str | None]] = {}    # JSON name -> (child, type code of that name)
        self.required: list[Node] = []          # children with min >= 1
        self.slicing = None                     # (discriminators, rules, ordered)
        self.slices: list[Node] = []
        self.content_ref = (e.get("contentReference") or "").rpartition("#")[2] or None
        self.typed: dict = {}                   # type code -> (constraints, children source), filled on use
        self.matcher = None                     # slicing.Matcher of a slice, built on first use
        s = e.get("slicing")
        if s:
            discs = tuple((d.get("type"), d.get("path") or "$this") for d in s.get("discriminator") or ())
            self.slicing = (discs, s.get("rules") or "open", bool(s.get("ordered")))

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    def add_child(self, child: "Node") -> None:
        name = child.name
        if name.endswith("[x]"):
            base = name[:-3]
            for code in T.CHOICE_TYPES:
                self.kids.setdefault(base + T.json_suffix(code), (child, code))
            for code in child.types:    # profiled types outside the usual list
                self.kids[base + T.json_suffix(code)] = (child, code)
        else:
            code = child.types[0] if len(child.types) == 1 else None
            self.kids[name] = (child, code)
        if child.min:
            self.required.append(child)


class Compiled:
    __slots__ = ("url", "type", "root", "by_id")

    def __init__(self, sd: dict, root: Node, by_id: dict[str, Node]):
        self.url = sd.get("url") or ""
        self.type = sd.get("type")
        self.root = root
        self.by_id = by_id


def _invariant_compiler():
    from .invariants import compile_invariant
    return compile_invariant


def compile_sd(sd: dict) -> Compiled:
    """Compile a StructureDefinition with a snapshot; raises ValueError when it has none."""
    elements = (sd.get("snapshot") or {}).get("element") or ()
    if not elements:
        raise ValueError(f"StructureDefinition {sd.get('url')} has no snapshot")
    compile_invariant = _invariant_compiler()
    url = sd.get("url") or ""
    by_id: dict[str, Node] = {}
    by_path: dict[str, Node] = {}
    root = None
    for e in elements:
        node = Node(e, url)
        node.constraints = tuple(Constraint(c, compile_invariant(c.get("key") or "?", c.get("expression")))
                                 for c in e.get("constraint") or () if c.get("expression"))
        if "/" in node.id:              # re-slice: not supported (docs/validation.md)
            continue
        by_id[node.id] = node
        by_path.setdefault(node.path, node)
        head, dot, last = node.id.rpartition(".")
        if root is None:
            root = node
            continue
        name, colon, _slice = last.partition(":")
        if colon:                       # a slice of the element `head.name`
            sliced = by_id.get(f"{head}.{name}" if dot else name)
            if sliced is not None:
                sliced.slices.append(node)
            continue
        parent = by_id.get(head)
        if parent is not None:
            parent.add_child(node)
    if root is None:
        raise ValueError(f"StructureDefinition {url} has an empty snapshot")
    for node in by_id.values():
        if node.content_ref and not node.kids:
            target = by_id.get(node.content_ref) or by_path.get(node.content_ref)
            if target is not None:
                node.kids, node.required, node.types = target.kids, target.required, target.types
                node.allowed = target.allowed
                node.constraints = node.constraints or target.constraints
    return Compiled(sd, root, by_id)


_CACHE: dict[tuple, Compiled] = {}
_LOCK = threading.Lock()
_MAX_CACHED = 4000


def compiled(sd: dict, resolve=None) -> Compiled:
    """The compiled form of this StructureDefinition, compiled at most once per version. One with a
    differential only gets its snapshot generated first (snapshot.py) when `resolve` is given."""
    url = sd.get("url")
    meta = sd.get("meta") or {}
    # a stored version is named by its versionId and lastUpdated: two stores in one process may each hold
    # version 1 of one canonical with different content (the Med-Port Patient profile's UHID system). The
    # compiled tree also keeps what it resolved (type and extension profiles, slice matchers): it is made
    # again when the definitions it was resolved from change (conformance Definitions.generation)
    owner = getattr(resolve, "__self__", None)
    key = (url, sd.get("version"), meta.get("versionId") or "shipped", meta.get("lastUpdated"),
           getattr(owner, "token", None), getattr(owner, "generation", None))
    found = _CACHE.get(key) if url else None
    if found is None:
        if resolve is not None and not (sd.get("snapshot") or {}).get("element") and sd.get("differential"):
            from .snapshot import generate
            sd = generate(sd, resolve)
        found = compile_sd(sd)
        if url:
            with _LOCK:
                if len(_CACHE) >= _MAX_CACHED:
                    _CACHE.clear()
                _CACHE[key] = found
    return found
