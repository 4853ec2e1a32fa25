"""The R4 JSON schema (profiles/fhir.schema.json), loaded once and adapted.

http://hl7.org/fhir/R4/json.html#schema says the schema is not a complete
validator; these adaptations make it stricter or fix it, and keep the two
engines (jsonschema, fastjsonschema) in agreement:

* Every complex definition gets "type": "object" (the published schema has
  none, so `"meta": "x"` or `"name": {...}` for an array would pass).
* Choice elements (valueString, ...) are written inline in the published schema;
  they become $refs to the primitive definitions so every primitive rule
  lives in one place.
* Patterns end in \\Z, not $: Python's `$` also matches before a final "\\n",
  which fastjsonschema silently rewrites and jsonschema does not.
* DEVIATION: string and markdown accept any Unicode except control characters
  below U+0020 other than TAB, CR, LF (http://hl7.org/fhir/R4/datatypes.html#string).
  The published pattern ^[ \\r\\n\\t\\S]+$ also rejects other whitespace such as
  U+00A0, which the official example DiagnosticReport-gingival-mass uses.
* integer / positiveInt / unsignedInt are JSON integers within 32 bits
  (datatypes.html#integer); the published schema says "number" with a pattern
  that a number never meets, so 1.5 passed as an integer.
* base64Binary keeps only its alphabet: the published choice-element pattern
  (\\s*(...){4}\\s*)+ backtracks exponentially on hostile input.
* null is let through by the schema everywhere: `walk` decides where it is
  allowed (http://hl7.org/fhir/R4/json.html#null) and reports it once.
* "required" lists are dropped: `walk` checks min cardinality from
  profiles/required-elements.json, accepting `_x` for a primitive `x`.
* ResourceList (a oneOf over all resources, very slow) is replaced by a
  dispatch on resourceType (`fhirResource`, see precise.py) or, for the fast
  path, an opaque object whose content `walk` hands back for separate checks.
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import NamedTuple

from ..definitions import PROFILES_DIR

PROFILES = Path(PROFILES_DIR)

# Control characters other than TAB, LF, CR are refused in strings.
STRING_PATTERN = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]+\\Z"
STRING_MAX = 1024 * 1024  # "Strings SHALL NOT exceed 1MB" (datatypes.html#string)
INT32 = {"minimum": -2147483648, "maximum": 2147483647}
NUMERIC = {
    "integer": INT32,
    "positiveInt": {"minimum": 1, "maximum": INT32["maximum"]},
    "unsignedInt": {"minimum": 0, "maximum": INT32["maximum"]},
}


class Model(NamedTuple):
    definitions: dict          # adapted definitions, ResourceList = dispatch keyword
    fast_definitions: dict     # same, ResourceList = opaque object
    resource_types: frozenset
    props: dict                # definition -> {json name: (target definition, is_array)}
    required: dict             # definition -> {element: [json names]}
    choices: dict              # definition -> {element[x]: [json names]}


_lock = threading.Lock()
_model: Model | None = None


def model() -> Model:
    """The process-wide model, built on first use (thread-safe)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = _build()
    return _model


def _load(name: str) -> dict:
    data = (PROFILES / name).read_bytes()
    try:
        import orjson
        return orjson.loads(data)
    except ImportError:  # pragma: no cover
        return json.loads(data)


def _target(prop: dict) -> str | None:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _adapt_primitive(name: str, d: dict) -> dict:
    out = {"fhirPrimitive": name}
    if name in NUMERIC:
        out.update(type=["integer", "null"], **NUMERIC[name])
    elif name == "decimal":
        out["type"] = ["number", "null"]
    elif name == "boolean":
        out["type"] = ["boolean", "null"]
    else:
        out["type"] = ["string", "null"]
        if name in ("string", "markdown"):
            out.update(pattern=STRING_PATTERN, maxLength=STRING_MAX)
        elif name == "base64Binary":
            out["pattern"] = "^[A-Za-z0-9+/=\\s]+\\Z"
        elif "pattern" in d:
            out["pattern"] = re.sub(r"(?<!\\)\$$", r"\\Z", d["pattern"])
    return out


def _build() -> Model:
    schema = _load("fhir.schema.json")
    rules = _load("required-elements.json")
    src = schema["definitions"]
    resource_types = frozenset(schema["discriminator"]["mapping"])
    primitives = frozenset(n for n, d in src.items() if "properties" not in d and n != "ResourceList")
    # Longest type name first, so valueDateTime is dateTime, not time.
    by_suffix = sorted(primitives, key=len, reverse=True)

    defs: dict = {}
    props: dict = {}
    for name, d in src.items():
        if name in primitives:
            defs[name] = _adapt_primitive(name, d)
            continue
        if name == "ResourceList":
            continue
        new_props, model_props = {}, {}
        for pname, p in d["properties"].items():
            p = {k: v for k, v in p.items() if k != "description"}
            if "pattern" in p or ("type" in p and p["type"] != "array"):   # inline primitive
                prim = next(t for t in by_suffix if pname.endswith(t[0].upper() + t[1:]))
                p = {"$ref": "#/definitions/" + prim}
            elif "enum" in p:
                p["enum"] = [*p["enum"], None]
            elif "const" in p:               # resourceType; fastjsonschema mishandles const
                p = {"enum": [p["const"]]}
            elif "enum" in p.get("items", {}):
                p["items"] = {"enum": [*p["items"]["enum"], None]}
            if p.get("type") == "array":
                p["type"] = ["array", "null"]
            new_props[pname] = p
            target = _target(p) or "code"
            model_props[pname] = (target, "items" in p)
        defs[name] = {"type": ["object", "null"], "properties": new_props, "additionalProperties": False}
        props[name] = model_props

    fast_defs = dict(defs, ResourceList={"type": ["object", "null"]})
    defs["ResourceList"] = {"type": ["object", "null"], "fhirResource": True}
    return Model(defs, fast_defs, resource_types, props, rules["required"], rules["choices"])
