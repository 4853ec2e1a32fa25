"""jsonschema errors -> OperationOutcome issues a hospital IT person can act on.

Issue codes (http://hl7.org/fhir/R4/valueset-issue-type.html): "structure" for
shape and JSON-type errors, "value" for a bad primitive value, "required" for a
missing element, "invalid" otherwise. Formats quoted are from
http://hl7.org/fhir/R4/datatypes.html#primitive.
"""
from __future__ import annotations

import difflib

from jsonschema import ValidationError

from fhirserver.errors import Issue

FORMAT_HINTS = {
    "date": "expected YYYY, YYYY-MM or YYYY-MM-DD with a real month and day, e.g. 2020-01-31",
    "dateTime": "expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss plus a time zone, "
                "e.g. 2020-01-31T14:30:00+05:30",
    "instant": "expected YYYY-MM-DDThh:mm:ss (optionally .sss) plus a time zone, e.g. 2020-01-31T14:30:00Z",
    "time": "expected hh:mm:ss (24-hour clock), e.g. 14:30:00",
    "code": "a code has no leading or trailing whitespace and only single spaces inside",
    "id": "an id is 1 to 64 characters: letters, digits, '-' and '.'",
    "uri": "a URI must not contain whitespace",
    "url": "a URL must not contain whitespace",
    "canonical": "a canonical URL must not contain whitespace",
    "oid": "expected urn:oid: followed by dotted digits, e.g. urn:oid:1.2.3.4",
    "uuid": "expected urn:uuid: followed by a lower-case UUID",
    "string": "control characters other than tab, carriage return and line feed are not allowed",
    "markdown": "control characters other than tab, carriage return and line feed are not allowed",
    "base64Binary": "expected base64 text (A-Z, a-z, 0-9, '+', '/', '=')",
}
JSON_TYPES = {
    "object": "a JSON object", "array": "a JSON array (this element repeats)", "string": "a JSON string",
    "integer": "a whole number", "number": "a number", "boolean": "true or false",
}


def expression(rtype: str, path) -> str:
    out = [rtype]
    for key in path:
        out.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(out)


def short(value, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string '{short(value)}'"
    if value is None:
        return "null"
    return "an array" if isinstance(value, list) else "an object"


def issues_for(error: ValidationError, rtype: str) -> list[Issue]:
    path = list(error.absolute_path)
    expr = expression(rtype, path)
    name = next((k for k in reversed(path) if isinstance(k, str)), rtype)
    kind, value, inst = error.validator, error.validator_value, error.instance
    ptype = error.schema.get("fhirPrimitive", "value") if isinstance(error.schema, dict) else "value"

    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        out = []
        for key in inst:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                out.append(Issue(f"Unknown element '{key}'{hint}", "structure",
                                 expression=(expression(rtype, [*path, key]),)))
        return out
    if kind == "type":
        wanted = [t for t in ([value] if isinstance(value, str) else value) if t != "null"]
        text = " or ".join(JSON_TYPES.get(t, t) for t in wanted)
        return [Issue(f"Wrong type for '{name}': expected {text}, got {json_type(inst)}", "structure",
                      expression=(expr,))]
    if kind == "pattern":
        hint = FORMAT_HINTS.get(ptype, "it does not have the required format")
        return [Issue(f"Invalid {ptype} '{short(inst)}': {hint}", "value", expression=(expr,))]
    if kind == "enum":
        allowed = ", ".join(str(v) for v in value if v is not None)
        return [Issue(f"Invalid code '{short(inst)}' for '{name}': expected one of {allowed}", "value",
                      expression=(expr,))]
    if kind in ("minimum", "maximum"):
        bound = "at least" if kind == "minimum" else "at most"
        return [Issue(f"Invalid {ptype} {short(inst)} for '{name}': must be {bound} {value}", "value",
                      expression=(expr,))]
    if kind == "maxLength":
        return [Issue(f"Value of '{name}' is too long ({len(inst)} characters; the limit is {value})",
                      "value", expression=(expr,))]
    if kind == "fhirResource":
        return [Issue(error.message, value, expression=(f"{expr}.resourceType",))]
    return [Issue(f"'{name}': {error.message}", "invalid", expression=(expr,))]
