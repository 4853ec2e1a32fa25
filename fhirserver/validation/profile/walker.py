"""Walk one resource against a compiled StructureDefinition (profiling.html, elementdefinition.html).

Per element: cardinality (min/max, per slice too), the type named by a choice element's JSON suffix,
fixed[x] and pattern[x], maxLength, required/extensible bindings (binding.py), Reference targets
against type.targetProfile, and every constraint (the element's and its type's) through the
compiled invariants. Children come from the snapshot when it expands the element, else from the
element's type profile (an extension's definition, SimpleQuantity) or its base type's definition,
resolved on demand. Nested resources (contained, Bundle.entry.resource, Parameters...resource)
are checked against their type profile or base type's definition; an extension no slice claims against
its own definition when the server knows it, and every known extension against its context (context.py).
"""
from __future__ import annotations

from fhirserver.definitions import resource_types

from . import binding, budget, context, slicing
from . import types as T
from .compile import compiled
from .finding import Finding
from .values import contains, equal, out_of_bounds, referenced_type

MAX_FINDINGS = 100
_EXTENSIONS = frozenset(("extension", "modifierExtension"))
_PATH_BASED = frozenset(("BackboneElement", "Element"))   # FHIRPath knows these by element path
MAX_DEPTH = 64          # JSON levels below the resource
MAX_CLAIMS = 50         # meta.profile canonicals judged per resource (a real one claims a few)


class Full(Exception):
    """Raised once MAX_FINDINGS errors are collected (no later error can change the verdict)."""


class Walker:
    def __init__(self, resolve, terminology, limit: int = MAX_FINDINGS, stop_at_error: bool = False):
        self.resolve = resolve if isinstance(resolve, budget.Lookups) else budget.Lookups(resolve)
        self.stop_at_error = stop_at_error
        self.tx = terminology
        self.limit = limit              # errors that end the walk; also the warnings/information kept
        self.errors = self.dropped = 0
        self.findings: list[Finding] = []
        self._seen: set = set()
        self._roots: dict[str, object] = {}       # canonical -> compiled root (or None), this walk
        self._container: dict[int, dict] = {}     # id(contained resource) -> its container (%rootResource)
        self._contexts: dict[str, tuple] = {}     # extension url -> its contexts, this walk
        self._entries: dict[str, object] = {}     # Bundle.entry.fullUrl -> resourceType, of Bundles walked

    # -- findings ------------------------------------------------------------------------------
    def add(self, severity: str, rule: str, key: str, path: str, message: str) -> None:
        sig = (severity, rule, key, path)
        if sig in self._seen:
            return
        self._seen.add(sig)
        if severity == "error":
            self.errors += 1
        elif len(self.findings) - self.errors >= self.limit:
            self.dropped += 1           # warnings and information past the limit: counted, not kept
            return
        self.findings.append(Finding(severity, rule, key, path, message))
        if self.errors >= self.limit or (self.stop_at_error and severity == "error"):
            raise Full

    # -- definitions ---------------------------------------------------------------------------
    def root_of(self, canonical: str):
        """The compiled root element of the StructureDefinition a canonical names, or None."""
        if canonical in self._roots:
            return self._roots[canonical]
        sd = self.resolve("StructureDefinition", canonical)
        root = None
        if sd:
            try:
                root = compiled(sd).root
            except ValueError:
                root = None
        self._roots[canonical] = root
        return root

    def children_source(self, node, tcode):
        return self.typed(node, tcode)[1]

    def typed(self, node, tcode):
        """(constraints, children source, FHIRPath base type) of an element taking type `tcode`; cached
        on the element."""
        info = node.typed.get(tcode)
        if info is None:
            type_root = None
            for p in node.profiles.get(tcode, ()):
                type_root = self.root_of(p)
                if type_root is not None:
                    break
            if type_root is None and tcode and not tcode.startswith(T.SYSTEM_TYPE) \
                    and tcode not in T.RESOURCE_TYPES_ROOT:
                type_root = self.root_of(T.core_url(tcode))
            keys = {c.key for c in node.constraints}
            extra = tuple(c for c in type_root.constraints if c.key not in keys) if type_root else ()
            base = node.path if tcode in _PATH_BASED or not tcode else tcode.rpartition(".")[2]
            info = (node.constraints + extra, node if node.kids else type_root, base)
            if type_root is not None or node.kids or not tcode or T.is_primitive(tcode) \
                    or tcode in T.RESOURCE_TYPES_ROOT:
                node.typed[tcode] = info        # a type not (yet) resolvable is looked up again next time
        return info

    def targets(self, node) -> frozenset | None:
        """Resource types a Reference element may point to; None when any."""
        info = node.typed.get("#targets")
        if info is None:
            names = set()
            for canonical in node.targets.get("Reference", ()):
                name = T.type_of_canonical(canonical)
                if name is None:
                    sd = self.resolve("StructureDefinition", canonical)
                    name = sd.get("type") if sd else None
                if name is None or name in T.RESOURCE_TYPES_ROOT:
                    names = None
                    break
                names.add(name)
            info = node.typed["#targets"] = (frozenset(names) if names else None,)
        return info[0]

    # -- the walk ------------------------------------------------------------------------------
    def resource(self, res: dict, root, path: str, depth: int = 0) -> None:
        if res.get("resourceType") == "Bundle" and isinstance(res.get("entry"), list):
            for e in res["entry"]:        # references to entries by fullUrl (bundle.html#references)
                r = e.get("resource") if isinstance(e, dict) else None
                if isinstance(r, dict) and isinstance(e.get("fullUrl"), str):
                    self._entries.setdefault(e["fullUrl"], r.get("resourceType"))
        for c in root.constraints:
            self.invariant(c, res, res, path, None)
        self.children(res, root, path, res, depth, (root.path, None, root.path, True))

    def children(self, obj: dict, src, path: str, resource: dict, depth: int, where: tuple | None = None) -> None:
        """The elements of one object; `where` locates the object for its extensions' contexts."""
        if depth > MAX_DEPTH:
            self.add("error", "profile", src.id, path, f"{path}: nested more than {MAX_DEPTH} levels deep; "
                                                      "not validated further")
            return
        kids = src.kids
        present = set()
        for key, val in obj.items():
            if key[:1] == "_":
                name = key[1:]
                if name in obj:
                    continue
                ent = kids.get(name)
                if ent is None:
                    continue
                vals, twins = None, val
            else:
                name = key
                ent = kids.get(key)
                if ent is None:
                    continue
                vals, twins = val, obj.get("_" + key)
            child, tcode = ent
            present.add(child)
            if where is not None and name in _EXTENSIONS:
                self.extension_contexts(vals, where, f"{path}.{name}")
            self.element(child, tcode or (child.types[0] if child.types else None), vals, twins,
                         f"{path}.{name}", resource, depth)
        for child in src.required:
            if child not in present:
                name = child.name.removesuffix("[x]")
                self.add("error", "cardinality", child.id, f"{path}.{name}",
                         f"{path}.{name}: minimum cardinality of {child.id} is {child.min}, found 0")

    def element(self, node, tcode, vals, twins, path: str, resource: dict, depth: int) -> None:
        if node.allowed and tcode not in node.allowed:
            self.add("error", "type", node.id, path,
                     f"{path}: type {tcode} is not allowed for {node.id} (allowed: {', '.join(node.types)})")
            return
        if not isinstance(vals, list) and not isinstance(twins, list):
            if node.max == 0:
                self.add("error", "cardinality", node.id, path,
                         f"{path}: maximum cardinality of {node.id} is 0, found 1")
            if node.slicing or node.slices:
                self.sliced(node, tcode, [(vals, twins)], path, False, resource, depth)
            else:
                self.item(vals, twins, node, tcode, path, resource, depth)
            return
        vl = vals if isinstance(vals, list) else ()
        tl = twins if isinstance(twins, list) else ()
        n = max(len(vl), len(tl))
        if node.max is not None and n > node.max:
            self.add("error", "cardinality", node.id, path,
                     f"{path}: maximum cardinality of {node.id} is {node.max}, found {n}")
        if n < node.min:
            self.add("error", "cardinality", node.id, path,
                     f"{path}: minimum cardinality of {node.id} is {node.min}, found {n}")
        items = [(vl[i] if i < len(vl) else None, tl[i] if i < len(tl) else None) for i in range(n)]
        if node.slicing or node.slices:
            self.sliced(node, tcode, items, path, True, resource, depth)
            return
        for i, (v, t) in enumerate(items):
            self.item(v, t, node, tcode, f"{path}[{i}]", resource, depth)

    def sliced(self, node, tcode, items: list, path: str, is_list: bool, resource: dict, depth: int) -> None:
        rules, ordered = (node.slicing[1], node.slicing[2]) if node.slicing else ("open", False)
        slices = node.slices
        which = []
        for v, _t in items:            # items x slices matcher calls: inside the time budget
            budget.check()
            which.append(next((j for j, s in enumerate(slices) if slicing.matcher(self, node, s)(self, v, tcode)),
                              -1))
        for j, s in enumerate(slices):
            n = which.count(j)
            label = f"{path}: slice '{s.slice_name}' ({s.id})"
            if n < s.min:
                self.add("error", "cardinality", s.id, path, f"{label} needs at least {s.min} item(s), found {n}")
            if s.max is not None and n > s.max:
                self.add("error", "cardinality", s.id, path, f"{label} allows at most {s.max} item(s), found {n}")
        last, unmatched_seen = -1, False
        for i, ((v, t), j) in enumerate(zip(items, which, strict=True)):
            ipath = f"{path}[{i}]" if is_list else path
            if j < 0:
                unmatched_seen = True
                if rules == "closed":
                    self.add("error", "slicing", node.id, ipath,
                             f"{ipath}: matches no slice of {node.id}, whose slicing is closed")
                self.item(v, t, node, tcode, ipath, resource, depth)
                continue
            if unmatched_seen and rules == "openAtEnd":
                self.add("error", "slicing", node.id, ipath,
                         f"{ipath}: slice '{slices[j].slice_name}' comes after an item of no slice, but "
                         f"the slicing of {node.id} is openAtEnd")
            if ordered and j < last:
                self.add("error", "slicing", node.id, ipath,
                         f"{ipath}: slice '{slices[j].slice_name}' is out of order (the slicing of "
                         f"{node.id} is ordered)")
            last = max(last, j)
            self.item(v, t, slices[j], tcode, ipath, resource, depth)

    def item(self, val, twin, node, tcode, path: str, resource: dict, depth: int) -> None:
        if val is None:
            if isinstance(twin, dict):
                constraints, src, base = self.typed(node, tcode)
                for c in constraints:
                    self.invariant(c, twin, resource, path, base)
                if src is not None:
                    self.children(twin, src, path, resource, depth + 1, (node.path, node.content_ref, tcode, False))
            return
        if node.fixed is not None and not equal(val, node.fixed):
            self.add("error", "fixed", node.id, path, f"{path}: value must be exactly {_show(node.fixed)} "
                                                      f"(fixed by {node.id})")
        if node.pattern is not None and not contains(val, node.pattern):
            self.add("error", "pattern", node.id, path, f"{path}: value must contain {_show(node.pattern)} "
                                                        f"(pattern of {node.id})")
        if node.bounds is not None:
            outside = out_of_bounds(val, node.bounds)
            if outside:
                self.add("error", "type", node.id, path, f"{path}: {_show(val)} is {outside} of {node.id}")
        if isinstance(val, dict):
            if "resourceType" in val and (tcode in T.RESOURCE_TYPES_ROOT or tcode not in T.COMPLEX):
                if node.name == "contained":
                    self._container[id(val)] = self._container.get(id(resource), resource)
                self.nested(val, path, depth, node.profiles.get(tcode, ()))
                return
            constraints, src, base = self.typed(node, tcode)
            if tcode == "Extension" and not node.profiles and not node.kids:
                ext = self.root_of(val.get("url")) if isinstance(val.get("url"), str) else None
                if ext is not None:
                    keys = {c.key for c in constraints}
                    constraints = constraints + tuple(c for c in ext.constraints if c.key not in keys)
                    src = ext
            if node.binding is not None and self.tx is not None:
                binding.check(self, val, tcode, node, path)
            if tcode == "Reference" and node.targets:
                self.reference(val, node, path, resource)
            for c in constraints:
                self.invariant(c, val, resource, path, base)
            if src is not None:
                self.children(val, src, path, resource, depth + 1, (node.path, node.content_ref, tcode, False))
            return
        constraints, src, base = self.typed(node, tcode)
        if node.binding is not None and self.tx is not None:
            binding.check(self, val, tcode, node, path)
        if node.max_length is not None and isinstance(val, str) and len(val) > node.max_length:
            self.add("error", "type", node.id, path,
                     f"{path}: {len(val)} characters, more than the maxLength {node.max_length} of {node.id}")
        for c in constraints:
            self.invariant(c, val, resource, path, base)
        if isinstance(twin, dict) and src is not None:
            self.children(twin, src, path, resource, depth + 1, (node.path, node.content_ref, tcode, False))

    def nested(self, res: dict, path: str, depth: int, profiles: tuple[str, ...] = ()) -> None:
        """A resource inside a resource: against the element's type profile when it names one the
        server knows for this type, else the core definition of its resourceType; then against each
        profile it claims in meta.profile (an unknown one is information)."""
        rtype = res.get("resourceType")
        root = next((r for r in map(self.root_of, profiles) if r is not None and r.path == rtype), None)
        if root is None and isinstance(rtype, str) and rtype.isalpha():
            root = self.root_of(T.core_url(rtype))
        if root is None:
            self.add("error", "type", "Resource", path, f"{path}: unknown resource type {rtype!r}")
            return
        self.resource(res, root, path, depth + 1)
        claims = (res.get("meta") or {}).get("profile") if isinstance(res.get("meta"), dict) else None
        claims = claims if isinstance(claims, list) else []
        if len(claims) > MAX_CLAIMS:
            self.add("error", "profile", "meta.profile", f"{path}.meta.profile",
                     f"{path}.meta.profile: {len(claims)} profiles claimed; only the first {MAX_CLAIMS} are judged")
        for canonical in claims[:MAX_CLAIMS]:
            claimed = self.root_of(canonical) if isinstance(canonical, str) else None
            if claimed is None:
                self.add("information", "profile", str(canonical), path,
                         f"{path}: claims the profile {canonical}, which is not known here; not checked")
            elif claimed.path != rtype:
                self.add("error", "profile", canonical, path,
                         f"{path}: claims the profile {canonical}, which is for {claimed.path}, not {rtype}")
            elif claimed is not root:
                self.resource(res, claimed, path, depth + 1)

    def extension_contexts(self, vals, where: tuple, path: str) -> None:
        items = vals if isinstance(vals, list) else [vals]
        for i, ext in enumerate(items):
            url = ext.get("url") if isinstance(ext, dict) else None
            if not isinstance(url, str):
                continue
            contexts = self._contexts.get(url)
            if contexts is None:
                sd = self.resolve("StructureDefinition", url)
                contexts = self._contexts[url] = tuple((c.get("type"), c.get("expression"))
                                                       for c in (sd or {}).get("context") or ()
                                                       if isinstance(c, dict))
            if contexts and not context.allowed(contexts, where):
                ipath = f"{path}[{i}]" if isinstance(vals, list) else path
                self.add("error", "profile", url, ipath,
                         f"{ipath}: the extension {url} may not be used on {where[0]} (its contexts: "
                         f"{', '.join(e for _t, e in contexts)})")

    def reference(self, ref: dict, node, path: str, resource: dict) -> None:
        allowed = self.targets(node)
        if allowed is None:
            return
        rtype = referenced_type(ref, resource)
        if rtype is None and self._entries and isinstance(ref.get("reference"), str):
            rtype = self._entries.get(ref["reference"])
        if rtype is not None and rtype not in allowed and rtype in resource_types():
            self.add("error", "type", node.id, path,
                     f"{path}: refers to a {rtype}, but {node.id} may refer only to {', '.join(sorted(allowed))}")

    def invariant(self, c, focus, resource: dict, path: str, base: str | None) -> None:
        budget.check()
        try:
            ok = c.fn(focus, resource, base, self._container.get(id(resource)))
        except RecursionError:
            raise
        except Exception:       # noqa: BLE001 - an engine failure is "could not evaluate", never a pass
            ok = None
        if ok is True:
            return
        if ok is False:
            self.add(c.severity, "invariant", c.key, path, f"{path}: constraint {c.key} failed: {c.human} "
                                                           f"[{c.expression}]")
        else:
            self.add("information", "invariant", c.key, path,
                     f"{path}: constraint {c.key} could not be evaluated, so it was not checked [{c.expression}]")

    # -- helpers for slicing -------------------------------------------------------------------
    def in_value_set(self, vs: str, value) -> bool:
        return binding.member(self, vs, value) is True

    def conforms(self, value, canonical: str) -> bool:
        """Whether a value conforms to a profile (no error found), for profile discriminators."""
        root = self.root_of(canonical)
        if root is None or not isinstance(value, dict):
            return False
        sub = Walker(self.resolve, self.tx, stop_at_error=True)
        sub._roots = self._roots
        try:
            if "resourceType" in value:
                sub.resource(value, root, "$this")
            else:
                for c in root.constraints:
                    sub.invariant(c, value, value, "$this", root.path)
                sub.children(value, root, "$this", value, 0)
        except Full:
            pass
        return not any(f.severity == "error" for f in sub.findings)


def _show(value) -> str:
    import json
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."
