"""Rules the JSON schema cannot express, checked in one typed walk.

* null only inside the arrays of a repeating primitive and its `_x`
  extension array (http://hl7.org/fhir/R4/json.html#null);
* no empty objects or arrays (json.html: objects and arrays are never empty)
  and no empty strings (datatypes.html: the primitive regexes need a character);
* required elements (min >= 1), where `_x` alone counts for a primitive `x`
  (json.html#primitive);
* at most one JSON name per choice element x[x] (formats.html#choice);
* dates that exist ("Dates SHALL be valid dates", datatypes.html#date);
* integers written without a fraction: JSON 2.0 is a valid Draft-6 integer but
  not the lexical form of a FHIR integer (datatypes.html#integer);
* the narrative's XHTML (Narrative.div) by txt-1, the invariant of the base Narrative type
  (narrative.html#xhtml: no scripts, event handlers, forms, frames, objects or javascript: links), on
  every resource whatever profile it claims: a script stored here runs in every viewer that displays
  the narrative. txt-2 (some content) is left to profile validation: official examples (EventDefinition
  example, the zika Questionnaire) carry empty narratives;
* contained / Bundle.entry.resource / Parameters.parameter.resource: a known
  resourceType, then the same rules; their locations are returned so that
  the fast engine can check each one against its own type.
"""
from __future__ import annotations

import calendar
import re

from fhirserver.errors import Issue

from .profile import narrative
from .schema import Model

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATE_TYPES = frozenset(("date", "dateTime", "instant"))
_INT_TYPES = frozenset(("integer", "positiveInt", "unsignedInt"))


class TooMany(Exception):
    """Raised once `limit` issues are collected."""


class Walker:
    def __init__(self, model: Model, limit: int):
        self.m = model
        self.limit = limit
        self.issues: list[Issue] = []
        self.nested: list[tuple[str, dict, str]] = []   # (type, resource, path)

    def add(self, path: str, code: str, text: str) -> None:
        self.issues.append(Issue(diagnostics=text, code=code, expression=(path,)))
        if len(self.issues) >= self.limit:
            raise TooMany

    def resource(self, res: dict, rtype: str, path: str) -> None:
        self.obj(res, rtype, path)

    def obj(self, obj: dict, dname: str, path: str) -> None:
        props = self.m.props[dname]
        for key, val in obj.items():
            spec = props.get(key)
            if spec is None:
                continue                     # unknown element: the schema reports it
            target, is_array = spec
            kpath = f"{path}.{key}"
            if not is_array:
                self.value(val, target, kpath, key, False)
            elif isinstance(val, list):
                if not val:
                    self.add(kpath, "structure", f"Empty array for '{key}': leave the element out instead")
                    continue
                # [null, "x"] is allowed where the `_x` twin carries the extensions.
                nulls = key[0] == "_" or ("_" + key) in obj
                for i, item in enumerate(val):
                    self.value(item, target, f"{kpath}[{i}]", key, nulls)
            elif val is None:
                self.value(val, target, kpath, key, False)
        for element, names in self.m.required.get(dname, {}).items():
            if not any(n in obj or ("_" + n) in obj for n in names):
                self.add(f"{path}.{element.removesuffix('[x]')}", "required",
                         f"Missing required element '{element}'")
        for element, names in self.m.choices.get(dname, {}).items():
            found = [n for n in names if n in obj or ("_" + n) in obj]
            if len(found) > 1:
                self.add(f"{path}.{element.removesuffix('[x]')}", "structure",
                         f"Only one form of '{element}' is allowed, found: {', '.join(found)}")

    def value(self, val, target: str, path: str, key: str, null_ok: bool) -> None:
        if val is None:
            if not null_ok:
                self.add(path, "structure", f"Null value for '{key}': FHIR JSON does not allow null; "
                                            "leave the element out instead")
        elif isinstance(val, dict):
            if not val:
                self.add(path, "structure", f"Empty object for '{key}': leave the element out instead")
            elif target == "ResourceList":
                self.contained(val, path)
            elif target in self.m.props:
                self.obj(val, target, path)
        elif isinstance(val, str):
            if not val:
                self.add(path, "value", f"Empty string for '{key}': leave the element out instead")
            elif target in _DATE_TYPES:
                self.date(val, target, path)
            elif target == "xhtml":
                self.xhtml(val, path)
        elif isinstance(val, float) and target in _INT_TYPES:
            self.add(path, "value", f"Invalid {target} {val!r} for '{key}': write a whole number "
                                    "without a decimal point or exponent")

    def contained(self, res: dict, path: str) -> None:
        rtype = res.get("resourceType")
        if rtype is None:
            self.add(f"{path}.resourceType", "required", "Missing required element 'resourceType'")
        elif rtype not in self.m.resource_types:
            self.add(f"{path}.resourceType", "invalid", f"Unknown resource type {rtype!r}")
        else:
            self.nested.append((rtype, res, path))
            self.obj(res, rtype, path)

    def xhtml(self, div: str, path: str) -> None:
        if not narrative.allowed(div):
            self.add(path, "invariant", "txt-1: the narrative must be one XHTML <div> "
                     "(xmlns=\"http://www.w3.org/1999/xhtml\") holding only basic HTML formatting: no scripts, "
                     "event handler attributes, forms, frames, objects, style sheets or javascript: links")

    def date(self, val: str, ptype: str, path: str) -> None:
        match = _DATE.match(val)
        if match:
            year, month, day = (int(g) for g in match.groups())
            if 1 <= month <= 12 and 1 <= day <= 31 and day > calendar.monthrange(year, month)[1]:
                self.add(path, "value", f"Invalid {ptype} '{val}': {year:04d}-{month:02d} has no day {day}")
