"""One CodeSystem compiled for lookups: its concepts by code and its is-a hierarchy
(http://hl7.org/fhir/R4/codesystem.html#hierarchy): nested concept[] and the `parent`/`child`
concept properties (codesystem-concept-properties) both give edges; either spelling is read."""
from __future__ import annotations

from dataclasses import dataclass, field

HIERARCHY_UP, HIERARCHY_DOWN = "parent", "child"
# properties any concept may be filtered on (codesystem-concept-properties and the concept's own elements)
STANDARD_PROPERTIES = frozenset({"concept", "code", "display", "definition", "parent", "child", "status",
                                 "inactive", "notSelectable", "deprecated"})


def property_value(p: dict):
    """A concept property's value as a comparable string (valueCode, valueString, valueBoolean...)."""
    for key, value in p.items():
        if key.startswith("value"):
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, dict):                 # valueCoding
                return value.get("code")
            return str(value)
    return None


@dataclass
class CodeIndex:
    url: str
    version: str | None
    content: str                                          # complete | fragment | example | not-present | supplement
    case_sensitive: bool
    concepts: dict[str, dict] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    resource: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Does every code of the system appear here (so that absence is an answer)?"""
        return self.content == "complete"

    def find(self, code: str) -> str | None:
        """The system's own spelling of a code (case-insensitive systems match any case), or None."""
        if code in self.concepts:
            return code
        if not self.case_sensitive and isinstance(code, str):
            return self._folded().get(code.lower())
        return None

    def _folded(self) -> dict[str, str]:
        folded = self.__dict__.get("_fold")
        if folded is None:
            folded = self.__dict__["_fold"] = {c.lower(): c for c in self.concepts}
        return folded

    def knows(self, name) -> bool:
        """Can filters on this property be evaluated (a declared property or a standard one)?"""
        declared = self.__dict__.get("_declared")
        if declared is None:
            declared = self.__dict__["_declared"] = STANDARD_PROPERTIES | {
                p.get("code") for p in self.resource.get("property") or () if isinstance(p, dict)}
        return name in declared

    def display(self, code: str) -> str | None:
        c = self.concepts.get(code)
        return c.get("display") if c else None

    def prop(self, code: str, name: str):
        """All values of one property of a concept (code/display/definition are properties too)."""
        c = self.concepts.get(code) or {}
        if name in ("code", "display", "definition"):
            return [c.get(name)] if c.get(name) is not None else []
        if name == HIERARCHY_UP:
            return list(self.parents.get(code, ()))
        if name == HIERARCHY_DOWN:
            return list(self.children.get(code, ()))
        return [property_value(p) for p in c.get("property") or () if p.get("code") == name]

    def abstract(self, code: str) -> bool:
        return "true" in self.prop(code, "notSelectable") or "true" in self.prop(code, "abstract")

    def inactive(self, code: str) -> bool:
        return bool({"retired", "deprecated", "inactive"} & set(self.prop(code, "status"))) \
            or "true" in self.prop(code, "inactive")

    def walk(self, start: str, edges: dict[str, list[str]]) -> frozenset[str]:
        """The closure of `start` along the edges (start included); cycles are harmless."""
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def descendants(self, code: str) -> frozenset[str]:
        own = self.find(code)
        return self.walk(own, self.children) if own is not None else frozenset()

    def ancestors(self, code: str) -> frozenset[str]:
        own = self.find(code)
        return self.walk(own, self.parents) if own is not None else frozenset()


def compile_code_system(cs: dict) -> CodeIndex:
    index = CodeIndex(url=cs.get("url") or "", version=cs.get("version"), content=cs.get("content") or "complete",
                      case_sensitive=cs.get("caseSensitive") is not False, resource=cs)
    edges: list[tuple[str, str]] = []                  # (parent, child)

    def visit(concepts, parent):
        for c in concepts or ():
            code = c.get("code") if isinstance(c, dict) else None
            if not isinstance(code, str):
                continue
            index.concepts.setdefault(code, c)
            if parent is not None:
                edges.append((parent, code))
            for p in c.get("property") or ():
                value = property_value(p) if isinstance(p, dict) else None
                if value is None:
                    continue
                if p.get("code") == HIERARCHY_UP:
                    edges.append((value, code))
                elif p.get("code") == HIERARCHY_DOWN:
                    edges.append((code, value))
            visit(c.get("concept"), code)

    visit(cs.get("concept"), None)
    for parent, child in edges:
        if parent == child:
            continue
        kids = index.children.setdefault(parent, [])
        if child not in kids:
            kids.append(child)
            index.parents.setdefault(child, []).append(parent)
    return index
