"""Operation input parameters, checked against the OperationDefinition (operations.html#request):
from the query string (primitive parameters only) or a Parameters resource in the body."""
from __future__ import annotations

from ..errors import BadRequest


def read_parameters(definition: dict, query: list[tuple[str, str]], body: dict | None) -> dict:
    """{name: [values]} for the operation's 'in' parameters; unknown names and broken cardinality -> 400."""
    inputs = {p["name"]: p for p in definition.get("parameter", ()) if p["use"] == "in"}
    values: dict[str, list] = {}
    for name, value in query:
        if name in ("_format", "_pretty"):
            continue
        values.setdefault(name, []).append(value)
    if body is not None and not isinstance(body, dict):
        raise BadRequest("The body of an operation must be a JSON object: a Parameters resource")
    given = body.get("parameter", []) if body is not None and body.get("resourceType") == "Parameters" else []
    if not isinstance(given, list) or not all(isinstance(p, dict) for p in given):
        raise BadRequest("Parameters.parameter must be a list of objects, each with a name")
    if body is not None:
        if body.get("resourceType") != "Parameters":
            if "resource" in inputs:           # e.g. $validate takes the resource itself as the body
                values.setdefault("resource", []).append(body)
            else:
                raise BadRequest("The body of an operation must be a Parameters resource")
        for p in body.get("parameter") or () if body.get("resourceType") == "Parameters" else ():
            value = p.get("resource") if "resource" in p else next(
                (v for k, v in p.items() if k.startswith("value")), p.get("part"))
            values.setdefault(p.get("name"), []).append(value)
    for name, vs in values.items():
        spec = inputs.get(name)
        if spec is None:
            raise BadRequest(f"Unknown parameter '{name}' for operation ${definition['code']}")
        if spec["max"] != "*" and len(vs) > int(spec["max"]):
            raise BadRequest(f"Parameter '{name}' may appear at most {spec['max']} time(s)")
    for name, spec in inputs.items():
        if spec["min"] > len(values.get(name, ())):
            raise BadRequest(f"Parameter '{name}' is required by ${definition['code']}")
    return values


def first(params: dict, name: str, default=None):
    """The first value of a parameter (the definition has checked its cardinality), or the default."""
    return (params.get(name) or [default])[0]


def flag(params: dict, name: str) -> bool:
    """A boolean parameter, from a Parameters body (true) or the query string ("true")."""
    return first(params, name) in (True, "true")
