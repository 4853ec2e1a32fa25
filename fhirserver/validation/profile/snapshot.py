"""Snapshot generation: a profile's differential applied over its base definition's snapshot.

    sd = generate(differential_sd, resolve)     # a copy of the StructureDefinition with snapshot.element

resolve(rtype, canonical) -> dict | None is conformance.definitions(store).resolve or any callable.
Rules (http://hl7.org/fhir/R4/profiling.html#snapshot, elementdefinition.html#id, #slicing):
* the snapshot starts as the base snapshot (generated first when the base has only a differential);
* each differential element names its target by id ("Patient.identifier:uhid.system"; derived from path and
  sliceName when absent) and constrains it: min, max, type, fixed[x], pattern[x], binding, mustSupport,
  isModifier, maxLength, minValue[x]/maxValue[x] and slicing replace the base's; constraints are added
  (a key already present is kept once; a new one gets the profile's url as source);
* a slice ("Patient.identifier:uhid") is a copy of the sliced element and of the children the snapshot
  already has for it, placed after the sliced element's children and earlier slices; slicing an
  extension element without saying how gets the default (value discriminator on url, open);
* a child of an element whose children are not in the snapshot yet (Patient.identifier:uhid.system)
  makes that element's children appear first: from its type's own snapshot (type.profile when given, else
  the core type) or from its contentReference;
* a choice element renamed to one type (Observation.valueQuantity) is the [x] element limited to that type.
Only what validation reads is carried (the base snapshots shipped are reduced the same way, build_core.py).
"""
from __future__ import annotations

import copy

from .types import CORE

_REPLACED = ("min", "max", "type", "binding", "mustSupport", "isModifier", "maxLength", "slicing")
_VALUE_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")
EXTENSION_SLICING = {"discriminator": [{"type": "value", "path": "url"}], "ordered": False, "rules": "open"}


class SnapshotError(ValueError):
    """The differential cannot be applied (an element matches nothing in the base, a base is unknown)."""


def generate(sd: dict, resolve, _depth: int = 0) -> dict:
    if _depth > 20:
        raise SnapshotError(f"{sd.get('url')}: base definitions nest too deep")
    base = resolve("StructureDefinition", sd.get("baseDefinition") or "")
    if base is None:
        raise SnapshotError(f"{sd.get('url')}: base definition {sd.get('baseDefinition')} is not known")
    if not (base.get("snapshot") or {}).get("element"):
        base = generate(base, resolve, _depth + 1)
    builder = _Builder(copy.deepcopy(base["snapshot"]["element"]), resolve, sd.get("url") or "")
    for diff, target in zip(sd["differential"]["element"], _ids(sd["differential"]["element"]), strict=True):
        builder.apply(target, diff)
    out = dict(sd)
    out["snapshot"] = {"element": builder.elements}
    return out


def _ids(elements: list[dict]) -> list[str]:
    """Each differential element's id: as given, else its path with the slice names of its ancestors."""
    out, seen = [], {}               # path -> id of the last element seen with that path
    for e in elements:
        if e.get("id"):
            ident = e["id"]
        else:
            path = e["path"]
            parent, _, name = path.rpartition(".")
            ident = (seen.get(parent, parent) + "." + name) if parent else path
            if e.get("sliceName"):
                ident += ":" + e["sliceName"]
        seen[e["path"]] = ident
        out.append(ident)
    return out


def _split(ident: str) -> list[str]:
    """Id segments ("Patient", "identifier:uhid", "system"): slice names hold no dots (eld-16)."""
    return ident.split(".")


class _Builder:
    def __init__(self, elements: list[dict], resolve, url: str):
        self.elements = elements
        self.resolve = resolve
        self.url = url

    def index(self, ident: str) -> int | None:
        return next((i for i, e in enumerate(self.elements) if e.get("id") == ident), None)

    def apply(self, ident: str, diff: dict) -> None:
        i = self.index(ident)
        if i is None:
            i = self.make(ident, diff)
        self.merge(self.elements[i], diff)

    def end_of(self, ident: str) -> int:
        """The index after the element, its children and its slices."""
        i = self.index(ident)
        j = i + 1
        while j < len(self.elements):
            other = self.elements[j]["id"]
            if not (other.startswith(ident + ".") or other.startswith(ident + ":")):
                break
            j += 1
        return j

    def make(self, ident: str, diff: dict) -> int:
        segments = _split(ident)
        if len(segments) < 2:
            raise SnapshotError(f"{self.url}: {ident} is not in the base")
        parent = ".".join(segments[:-1])
        last = segments[-1]
        if ":" in last:
            return self.slice(parent, last, diff)
        if self.index(parent) is None:
            self.make(parent, {})
        self.expand(parent)
        i = self.index(ident)
        if i is None:
            i = self.rename(parent, last, ident)
        return i

    def slice(self, parent: str, last: str, diff: dict) -> int:
        name, _, slice_name = last.partition(":")
        sliced = f"{parent}.{name}" if parent else name
        if self.index(sliced) is None:
            self.make(sliced, {})
        k = self.index(sliced)
        base = self.elements[k]
        if name in ("extension", "modifierExtension") and not base.get("slicing") and not diff.get("slicing"):
            base["slicing"] = copy.deepcopy(EXTENSION_SLICING)
        ident = f"{sliced}:{slice_name}"
        new = [{**copy.deepcopy({k2: v for k2, v in base.items() if k2 != "slicing"}), "id": ident,
                "sliceName": slice_name}]
        for e in self.elements[k + 1:self.end_of(sliced)]:
            if e["id"].startswith(sliced + "."):        # the sliced element's own children, not other slices'
                new.append({**copy.deepcopy(e), "id": ident + e["id"][len(sliced):]})
        at = self.end_of(sliced)
        self.elements[at:at] = new
        return at

    def expand(self, ident: str) -> None:
        """Put the element's children in the snapshot (from its type or contentReference) if missing."""
        i = self.index(ident)
        element = self.elements[i]
        if i + 1 < len(self.elements) and self.elements[i + 1]["id"].startswith(ident + "."):
            return
        children, root_id, root_path = self.children_source(element)
        new = []
        for e in children:
            copied = copy.deepcopy(e)
            copied["id"] = ident + e["id"][len(root_id):]
            copied["path"] = element["path"] + e["path"][len(root_path):]
            new.append(copied)
        self.elements[i + 1:i + 1] = new

    def children_source(self, element: dict) -> tuple[list[dict], str, str]:
        ref = element.get("contentReference")
        if ref:
            target = ref.split("#", 1)[1]
            k = next((j for j, e in enumerate(self.elements) if e.get("id") == target), None)
            if k is None:
                raise SnapshotError(f"{self.url}: contentReference {ref} names nothing")
            end = self.end_of(target)
            return [e for e in self.elements[k + 1:end] if e["id"].startswith(target + ".")], target, target
        types = element.get("type") or []
        if len(types) != 1:
            raise SnapshotError(f"{self.url}: {element['id']} has {len(types)} types; constrain one to go into it")
        canonical = (types[0].get("profile") or [CORE + types[0]["code"]])[0]
        sd = self.resolve("StructureDefinition", canonical)
        if sd is not None and not (sd.get("snapshot") or {}).get("element"):
            sd = generate(sd, self.resolve)
        if sd is None:
            raise SnapshotError(f"{self.url}: the type {canonical} of {element['id']} is not known")
        snap = sd["snapshot"]["element"]
        return snap[1:], snap[0]["id"], snap[0]["path"]

    def rename(self, parent: str, last: str, ident: str) -> int:
        """Observation.valueQuantity: the choice element value[x] limited to Quantity."""
        for i, e in enumerate(self.elements):
            eid = e["id"]
            if not (eid.startswith(parent + ".") and eid.endswith("[x]") and "." not in eid[len(parent) + 1:]):
                continue
            stem = eid[len(parent) + 1:-3]
            suffix = last[len(stem):]
            if not last.startswith(stem) or not suffix:
                continue
            types = [t for t in e.get("type") or () if t["code"].lower() == suffix.lower()]
            if types:
                e["id"], e["path"], e["type"] = ident, e["path"][:-len(stem) - 3] + last, types
                return i
        raise SnapshotError(f"{self.url}: {ident} is not in the base")

    def merge(self, target: dict, diff: dict) -> None:
        for key in _REPLACED:
            if key in diff:
                target[key] = copy.deepcopy(diff[key])
        for key, value in diff.items():
            if key.startswith(_VALUE_PREFIXES):
                target[key] = copy.deepcopy(value)
        if "binding" in diff:
            target["binding"] = {k: diff["binding"][k] for k in ("strength", "valueSet") if k in diff["binding"]}
        if "type" in diff:
            target["type"] = [{k: v for k, v in t.items() if k in ("code", "profile", "targetProfile", "extension")}
                              for t in diff["type"]]
        keys = {c.get("key") for c in target.get("constraint") or ()}
        for c in diff.get("constraint") or ():
            if c.get("key") not in keys:
                kept = {k: c[k] for k in ("key", "severity", "expression", "human", "source", "extension") if k in c}
                kept.setdefault("source", self.url)
                target.setdefault("constraint", []).append(kept)
                keys.add(c.get("key"))
