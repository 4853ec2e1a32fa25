"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a Parameters resource of operations
(add, insert, delete, replace, move) applied to a resource's JSON.

`compile_parameters` checks the shape of the Parameters (400 when malformed) and `FhirpathPatch.apply`
turns a document into the patched document (422 when an operation cannot be applied), so that
interactions/patch.py runs it through the same lock-free path, with the same limits, as JSON Patch.

Paths are FHIRPath, evaluated with fhirpathpy. Its results are copies, so every object of the document
is first tagged with a private key that says where it lives; a path whose last step is an element name
(`Patient.contact[0].gender`, `Patient.name.where(use='official').given`) is evaluated up to its parent
objects and the last step taken here, so that primitives are found too. Whether an element repeats
(a JSON array) comes from the official R4 JSON schema.
"""
from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass

from ..definitions import load_json
from ..errors import BadRequest, Issue, Unprocessable

OPERATION_TYPES = ("add", "insert", "delete", "replace", "move")
MAX_PATH_LENGTH = 1000
_TAG = "\u0000medport-loc"          # never a FHIR element name
_NAME_STEP = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\[(\d+)\])?$")


@dataclass(frozen=True)
class Operation:
    n: int
    type: str
    path: str
    name: str | None = None
    value: object = None          # a JSON value, or _Anonymous parts
    has_value: bool = False
    index: int | None = None
    source: int | None = None
    destination: int | None = None


@dataclass(frozen=True)
class _Anonymous:
    """A value given as parts (fhirpatch.html: "anonymous types", e.g. a BackboneElement)."""
    parts: tuple                  # ((name, value), ...)


@dataclass
class FhirpathPatch:
    operations: list[Operation]

    def __len__(self):
        return len(self.operations)

    def apply(self, doc: dict, max_depth: int) -> dict:
        """The patched document (a new one). 422 when an operation cannot be applied."""
        doc = copy.deepcopy(doc)
        limit = max(max_depth, _depth(doc))     # a stored resource is never made to fail for its own depth
        for op in self.operations:
            _apply_one(doc, op)
        _prune(doc)
        depth = _depth(doc)
        if depth > limit:
            message = f"The patched resource would nest {depth} levels deep; at most {limit} are accepted"
            raise Unprocessable(message, issues=[Issue(message, "too-costly")])
        return doc


def is_parameters(body) -> bool:
    return isinstance(body, dict) and body.get("resourceType") == "Parameters"


def compile_parameters(parameters: dict, max_operations: int) -> FhirpathPatch:
    """The operations of a FHIRPath Patch Parameters resource, checked for shape (400 otherwise)."""
    from ..errors import PayloadTooLarge
    if not is_parameters(parameters):
        raise BadRequest("A FHIRPath Patch is a Parameters resource")
    params = parameters.get("parameter") or []
    if not isinstance(params, list):
        raise BadRequest("Parameters.parameter must be an array")
    if len(params) > max_operations:
        raise PayloadTooLarge(f"A FHIRPath Patch may have at most {max_operations} operations; this one has "
                              f"{len(params)}")
    return FhirpathPatch([_operation(n, p) for n, p in enumerate(params)])


def _operation(n: int, p) -> Operation:
    where = f"FHIRPath Patch operation {n}"
    if not isinstance(p, dict) or p.get("name") != "operation":
        raise BadRequest(f"{where}: every parameter of a FHIRPath Patch is named 'operation'")
    parts = p.get("part")
    if not isinstance(parts, list) or not all(isinstance(x, dict) for x in parts):
        raise BadRequest(f"{where}: needs its parts (type, path, ...)")
    fields: dict = {}
    for part in parts:
        name = part.get("name")
        if name not in ("type", "path", "name", "value", "index", "source", "destination"):
            raise BadRequest(f"{where}: unknown part {name!r}")
        if name in fields:
            raise BadRequest(f"{where}: part {name!r} is repeated")
        fields[name] = _part_value(part, where) if name == "value" else _primitive(part, name, where)
    kind = fields.get("type")
    if kind not in OPERATION_TYPES:
        raise BadRequest(f"{where}: type must be one of {', '.join(OPERATION_TYPES)}, not {kind!r}")
    path = fields.get("path")
    if not isinstance(path, str) or not path.strip():
        raise BadRequest(f"{where}: needs a path")
    if len(path) > MAX_PATH_LENGTH:
        raise BadRequest(f"{where}: the path is longer than {MAX_PATH_LENGTH} characters")
    needed = {"add": ("name", "value"), "insert": ("value", "index"), "replace": ("value",),
              "move": ("source", "destination"), "delete": ()}[kind]
    missing = [f for f in needed if f not in fields]
    if missing:
        raise BadRequest(f"{where}: {kind} needs {' and '.join(missing)}")
    for f in ("index", "source", "destination"):
        if f in fields and (not isinstance(fields[f], int) or isinstance(fields[f], bool) or fields[f] < 0):
            raise BadRequest(f"{where}: {f} must be a non-negative integer")
    if "name" in fields and not (isinstance(fields["name"], str) and _NAME_STEP.match(fields["name"])
                                 and "[" not in fields["name"]):
        raise BadRequest(f"{where}: name must be an element name")
    return Operation(n, kind, path.strip(), fields.get("name"), fields.get("value"), "value" in fields,
                     fields.get("index"), fields.get("source"), fields.get("destination"))


def _primitive(part: dict, name: str, where: str):
    values = [v for k, v in part.items() if k.startswith("value")]
    if len(values) != 1:
        raise BadRequest(f"{where}: part {name!r} needs one value[x]")
    return values[0]


def _part_value(part: dict, where: str):
    """value[x], a resource, or parts (an anonymous type), each part a name and a value."""
    values = [v for k, v in part.items() if k.startswith("value")]
    if "resource" in part:
        values.append(part["resource"])
    sub = part.get("part")
    if sub is not None:
        if values or not isinstance(sub, list) or not all(isinstance(x, dict) for x in sub):
            raise BadRequest(f"{where}: a value is value[x] or parts, not both")
        out = []
        for s in sub:
            if not isinstance(s.get("name"), str) or not _NAME_STEP.match(s["name"]) or "[" in s["name"]:
                raise BadRequest(f"{where}: every part of an anonymous value needs an element name")
            out.append((s["name"], _part_value(s, where)))
        return _Anonymous(tuple(out))
    if len(values) != 1:
        raise BadRequest(f"{where}: the value part needs one value[x], a resource or parts")
    return values[0]


# ---- the R4 JSON schema: which elements repeat, and of what type -------------------------------

@functools.lru_cache(maxsize=1)
def _definitions() -> dict:
    return load_json("fhir.schema.json")["definitions"]


def _property(type_name: str | None, name: str) -> tuple[bool | None, str | None]:
    """(whether `name` repeats in `type_name`, its type); (None, None) when unknown."""
    prop = (_definitions().get(type_name or "", {}).get("properties") or {}).get(name)
    if prop is None:
        return None, None
    ref = (prop.get("items") or prop).get("$ref", "")
    return prop.get("type") == "array", ref.rsplit("/", 1)[-1] or None


# ---- locating elements ------------------------------------------------------------------------

@dataclass
class _Loc:
    container: object         # dict or list holding the element; None for the root
    key: object               # its key (str) or index (int)
    type: str | None          # the element's type (schema definition name), when known

    def get(self):
        return self.container[self.key]


class _Document:
    """The document, and a tagged copy to evaluate FHIRPath on (each object tagged with its number)."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.places: list[_Loc] = []
        self.tagged = self._tag(doc, _Loc(None, None, doc.get("resourceType")))

    def _tag(self, node, loc: _Loc):
        if isinstance(node, dict):
            if isinstance(node.get("resourceType"), str):
                loc = _Loc(loc.container, loc.key, node["resourceType"])
            number = len(self.places)
            self.places.append(loc)
            out = {_TAG: number}
            for k, v in node.items():
                many, t = _property(loc.type, k)
                if isinstance(v, list):
                    out[k] = [self._tag(x, _Loc(v, i, t)) for i, x in enumerate(v)]
                else:
                    out[k] = self._tag(v, _Loc(node, k, t))
            return out
        return node

    def element(self, loc: _Loc):
        return self.doc if loc.container is None else loc.get()

    def evaluate(self, expression: str, where: str) -> list:
        from fhirpathpy import evaluate
        from fhirpathpy.models import models
        try:
            return evaluate(self.tagged, expression, {}, models["r4"])
        except Exception as e:      # a path fhirpathpy cannot parse or evaluate
            raise BadRequest(f"{where}: cannot evaluate the path {expression!r}: {e}") from None

    def objects(self, expression: str, where: str) -> list[_Loc]:
        """The places of the objects a path selects (a path that selects primitives here is refused)."""
        out = []
        for r in self.evaluate(expression, where):
            if not isinstance(r, dict) or _TAG not in r:
                raise Unprocessable(f"{where}: {expression!r} does not select elements of the resource")
            out.append(self.places[r[_TAG]])
        return out

    def locate(self, path: str, where: str) -> list[_Loc]:
        """Every element the path selects, objects and primitives alike."""
        parent, step = _split_last(path)
        m = _NAME_STEP.match(step) if parent else None
        if m is None:
            return self.objects(path, where)
        name, index = m.group(1), m.group(2)
        out = []
        for loc in self.objects(parent, where):
            owner = self.element(loc)
            key = _key(owner, name)
            if key is None:
                continue
            many, t = _property(loc.type, key)
            value = owner[key]
            if isinstance(value, list):
                picks = range(len(value)) if index is None else [int(index)] if int(index) < len(value) else []
                out += [_Loc(value, i, t) for i in picks]
            elif index is None or index == "0":
                out.append(_Loc(owner, key, t))
        return out

    def collection(self, path: str, where: str) -> tuple[dict, str, str | None]:
        """insert and move: the one object holding the list the path names, the list's key, its type."""
        parent, step = _split_last(path)
        m = _NAME_STEP.match(step) if parent else None
        if m is None or m.group(2) is not None:
            raise Unprocessable(f"{where}: {path!r} must name a list element (e.g. Patient.identifier)")
        owners = self.objects(parent, where)
        if len(owners) != 1:
            raise Unprocessable(f"{where}: {parent!r} selects {len(owners)} elements, not one")
        owner = self.element(owners[0])
        key = _key(owner, m.group(1)) or m.group(1)
        many, t = _property(owners[0].type, key)
        if many is False or (key in owner and not isinstance(owner[key], list)):
            raise Unprocessable(f"{where}: {path!r} is not a list")
        return owner, key, t


def _key(owner: dict, name: str) -> str | None:
    """The JSON key of element `name` in an object (a choice element: value -> valueQuantity)."""
    if name in owner:
        return name
    return next((k for k in owner if k.startswith(name) and k[len(name):len(name) + 1].isupper()), None)


def _split_last(path: str) -> tuple[str, str]:
    """('Patient.contact[0]', 'gender') for 'Patient.contact[0].gender': the last top-level step."""
    depth, quote, last = 0, None, -1
    for i, c in enumerate(path):
        if quote:
            if c == "\\":
                continue
            if c == quote:
                quote = None
        elif c in "'`\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "." and depth == 0:
            last = i
    return (path[:last].strip(), path[last + 1:].strip()) if last >= 0 else ("", path.strip())


# ---- the operations ---------------------------------------------------------------------------

def _apply_one(doc: dict, op: Operation) -> None:
    where = f"FHIRPath Patch operation {op.n} ({op.type} at {op.path})"
    d = _Document(doc)
    if op.type in ("insert", "move"):
        owner, key, t = d.collection(op.path, where)
        items = owner.setdefault(key, [])
        if op.type == "insert":
            if op.index > len(items):
                raise Unprocessable(f"{where}: index {op.index} is past the end of the list ({len(items)})")
            items.insert(op.index, _json(op.value, t, where))
        else:
            if op.source >= len(items) or op.destination >= len(items):
                raise Unprocessable(f"{where}: source {op.source} and destination {op.destination} must be "
                                    f"within the list ({len(items)} items)")
            items.insert(op.destination, items.pop(op.source))
        return
    found = d.locate(op.path, where)
    if op.type == "delete":
        if len(found) > 1:
            raise Unprocessable(f"{where}: the path selects {len(found)} elements; delete takes one")
        if found:
            _remove(doc, found[0], where)
        return
    if len(found) != 1:
        what = "No content found" if not found else f"{len(found)} elements found"
        raise Unprocessable(f"{what} at {op.path} when {'adding' if op.type == 'add' else 'replacing'} "
                            f"(operation {op.n})")
    loc = found[0]
    if op.type == "replace":
        if loc.container is None:
            raise Unprocessable(f"{where}: the whole resource cannot be replaced by a patch")
        loc.container[loc.key] = _json(op.value, loc.type, where)
        return
    owner = d.element(loc)                       # add
    if not isinstance(owner, dict):
        raise Unprocessable(f"{where}: {op.path!r} is a primitive value; add needs an element to add to")
    many, t = _property(loc.type, op.name)
    value = _json(op.value, t, where)
    if many or isinstance(owner.get(op.name), list):
        owner.setdefault(op.name, []).append(value)
    elif op.name in owner:
        raise Unprocessable(f"{where}: {op.name} already has a value and does not repeat (use replace)")
    else:
        owner[op.name] = value


def _remove(doc: dict, loc: _Loc, where: str) -> None:
    if loc.container is None:
        raise Unprocessable(f"{where}: the whole resource cannot be deleted by a patch")
    if isinstance(loc.container, list):
        del loc.container[loc.key]
    else:
        del loc.container[loc.key]
        loc.container.pop(f"_{loc.key}", None)        # the primitive's id and extensions go with it


def _json(value, type_name: str | None, where: str):
    """A patch value as the JSON of the element (an anonymous value built part by part)."""
    if not isinstance(value, _Anonymous):
        return copy.deepcopy(value)
    out: dict = {}
    for name, v in value.parts:
        many, t = _property(type_name, name)
        item = _json(v, t, where)
        if many or isinstance(out.get(name), list):
            out.setdefault(name, []).append(item)
        elif name in out:
            raise Unprocessable(f"{where}: {name} is given twice in an anonymous value and does not repeat")
        else:
            out[name] = item
    return out


def _prune(node) -> bool:
    """Drop the objects and arrays a delete left empty (json.html: no empty objects or arrays);
    True when `node` itself is now empty."""
    if isinstance(node, dict):
        for k in [k for k, v in node.items() if _prune(v)]:
            del node[k]
        return not node
    if isinstance(node, list):
        node[:] = [x for x in node if not _prune(x)]
        return not node
    return False


def _depth(node) -> int:
    deepest, stack = 0, [(node, 0)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, (dict, list)):
            deepest = max(deepest, d + 1)
            stack.extend((v, d + 1) for v in (n.values() if isinstance(n, dict) else n))
    return deepest
