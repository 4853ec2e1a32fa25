"""Accept path: fastjsonschema code for every resource type, compiled once.

The adapted schema is turned into Python by fastjsonschema in one module, so
each data type's check exists once and is shared by all 146 resource types
(about 0.4 s to generate and 0.8 s to compile on the reference machine; see
bench/bench_validation.py). Compiling per type instead costs 30-80 ms per type
and repeats the data types in each. The code stays in memory only: nothing is
cached on disk, so nothing outside the repository is ever executed.

fastjsonschema stops at the first error and its messages name no FHIR path,
so a rejection only sends the resource to precise.py for the full report.
Nested resources (contained, Bundle entries) are opaque objects here; walk.py
returns them and each is checked against its own type.
"""
from __future__ import annotations

import threading

import fastjsonschema

from .schema import model

_lock = threading.Lock()
_checks: dict | None = None


def _compile() -> dict:
    m = model()
    root = {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "definitions": m.fast_definitions,
        "properties": {rt: {"$ref": "#/definitions/" + rt} for rt in sorted(m.resource_types)},
    }
    # detailed_exceptions=False keeps the generated code small (the detailed
    # form embeds the sub-schema text in every raise: 28 MB instead of 5 MB).
    code = fastjsonschema.compile_to_code(root, detailed_exceptions=False)
    namespace: dict = {}
    exec(compile(code, "<fhir-r4-fastjsonschema>", "exec"), namespace)  # noqa: S102 - code generated just now
    # fastjsonschema names the function for "#/definitions/Patient" like this:
    return {rt: namespace["validate___definitions_" + rt.lower()] for rt in m.resource_types}


def checks() -> dict:
    """resourceType -> compiled check function (thread-safe, built once)."""
    global _checks
    if _checks is None:
        with _lock:
            if _checks is None:
                _checks = _compile()
    return _checks


def first_error(rtype: str, resource: dict) -> str | None:
    """None when the resource passes, else fastjsonschema's first message."""
    try:
        checks()[rtype](resource)
    except fastjsonschema.JsonSchemaValueException as exc:
        return exc.message
    return None
