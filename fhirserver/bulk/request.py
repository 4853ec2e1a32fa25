"""A kick-off request read and checked (Bulk Data 3.0, export.html#query-parameters).

GET carries the parameters in the query string, POST in a Parameters resource. Every value is
checked here, before a job exists: an unsupported or malformed one is a 400 OperationOutcome.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..definitions import resource_types
from ..errors import BadRequest
from ..interactions.instants import parse_instant
from ..search.parse import parse_search

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
MAX_PATIENTS = 10_000          # `patient` references one kick-off may name
MAX_TYPE_FILTERS = 50


@dataclass
class ExportRequest:
    level: str                                   # system | patient | group
    group: str | None = None
    types: list[str] = field(default_factory=list)           # [] = every type the level covers
    since: str | None = None
    until: str | None = None
    elements: list[str] = field(default_factory=list)
    type_filters: dict[str, list[str]] = field(default_factory=dict)   # type -> query strings
    patients: list[str] = field(default_factory=list)        # ids (POST `patient`)
    output_format: str = "application/fhir+ndjson"
    ignored: list[str] = field(default_factory=list)         # parameters left out (Prefer: handling=lenient)

    def as_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, value: dict) -> "ExportRequest":
        return cls(**value)


def read(level: str, group: str | None, query: list[tuple[str, str]], body: dict | None, base: str,
         terminology=None, lenient: bool = False) -> ExportRequest:
    """The checked request from the query string (GET) or a Parameters body (POST); `terminology` (the
    server's) lets _typeFilter use token :in/:not-in/:below/:above. An unknown or unsupported parameter
    is a 400, or left out and named in `ignored` when the client sent Prefer: handling=lenient
    (export.html#query-parameters: "the server MAY process the request instead of returning an error");
    a malformed value of a supported one is a 400 either way."""
    values = _values(query, body)
    req = ExportRequest(level, group)
    for name, vs in values.items():
        reader = _READERS.get(name)
        try:
            if reader is None:
                raise Unsupported(f"Unknown $export parameter '{name}' (export.html#query-parameters)")
            reader(req, vs, level, base)
        except Unsupported:
            if not lenient:
                raise
            req.ignored.append(name)
    for rtype, filters in req.type_filters.items():
        for qs in filters:
            _check_type_filter(rtype, qs, base, terminology)
    return req


def _values(query, body) -> dict[str, list]:
    values: dict[str, list] = {}
    for name, value in query:
        if name not in ("_format", "_pretty"):
            values.setdefault(name, []).append(value)
    if body is None:
        return values
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("A POST $export carries a Parameters resource (export.html#bulk-data-kick-off-request)")
    params = body.get("parameter", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str)
                                               for p in params):
        raise BadRequest("Parameters.parameter must be a list of objects, each with a name")
    for p in params:
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        values.setdefault(p["name"], []).append(value)
    return values


def _one(name: str, vs: list) -> str:
    if len(vs) != 1 or not isinstance(vs[0], str) or not vs[0]:
        raise BadRequest(f"{name} takes exactly one value")
    return vs[0]


def _output_format(req, vs, _level, _base):
    value = _one("_outputFormat", vs).replace(" ", "+")      # an unencoded '+' in a query string reads as ' '
    if value not in OUTPUT_FORMATS:
        raise BadRequest(f"_outputFormat {value!r} is not supported; use one of {', '.join(OUTPUT_FORMATS)}")
    req.output_format = value


def _since(req, vs, _level, _base):
    req.since = parse_instant(_instant_text("_since", vs), "_since")


def _until(req, vs, _level, _base):
    req.until = parse_instant(_instant_text("_until", vs), "_until")


def _instant_text(name: str, vs: list) -> str:
    """An instant's text; an unencoded '+' of its offset (read as ' ' in a query string) is a '+' again:
    an instant holds no space."""
    return _one(name, vs).replace(" ", "+")


def _type(req, vs, _level, _base):
    for v in vs:
        if not isinstance(v, str):
            raise BadRequest("_type values are strings")
        for t in (s.strip() for s in v.split(",")):
            if t not in resource_types():
                raise BadRequest(f"_type names an unknown resource type: {t!r}")
            if t not in req.types:
                req.types.append(t)


def _elements(req, vs, _level, _base):
    for v in vs:
        if not isinstance(v, str):
            raise BadRequest("_elements values are strings")
        for e in (s.strip() for s in v.split(",")):
            head, _, tail = e.partition(".")
            if not e or (tail and (head not in resource_types() or "." in tail)) or not (tail or head).isidentifier():
                raise BadRequest(f"_elements value {e!r} must be an element name or [type].[element]")
            req.elements.append(e)


def _type_filter(req, vs, _level, base):
    if len(vs) > MAX_TYPE_FILTERS:
        raise BadRequest(f"At most {MAX_TYPE_FILTERS} _typeFilter values")
    queries = [q for v in vs for q in _split_queries(v)]
    if len(queries) > MAX_TYPE_FILTERS:
        raise BadRequest(f"At most {MAX_TYPE_FILTERS} _typeFilter values")
    for v in queries:
        if "?" not in v:
            raise BadRequest("_typeFilter values are [type]?[search parameters]")
        rtype, _, qs = v.partition("?")
        if rtype not in resource_types():
            raise BadRequest(f"_typeFilter names an unknown resource type: {rtype!r}")
        req.type_filters.setdefault(rtype, []).append(qs)


def _split_queries(value) -> list[str]:
    """One _typeFilter value as its queries: a comma-separated list of them, ORed with repeated values
    (export.html#_typefilter-query-parameter: `_typeFilter=MedicationRequest%3Fstatus%3Dactive,
    MedicationRequest%3Fstatus%3Dcompleted`). A comma starts a new query only before `[type]?`; any
    other comma belongs to the query before it (`Observation?status=final,amended`: two values)."""
    if not isinstance(value, str):
        raise BadRequest("_typeFilter values are [type]?[search parameters]")
    queries: list[str] = []
    for piece in value.split(","):
        head, mark, _ = piece.partition("?")
        if not queries or (mark and head in resource_types()):
            queries.append(piece)
        else:
            queries[-1] += "," + piece
    return queries


def _check_type_filter(rtype: str, qs: str, base: str, terminology) -> None:
    parsed = parse_search(rtype, _pairs(qs), base=base, terminology=terminology)   # strict: unknown is a 400
    r = parsed.results
    if r.includes or r.sort or r.summary or r.elements or r.count is not None or r.total or r.cursor:
        raise BadRequest("_typeFilter takes search parameters only: no _include, _sort, _elements, "
                         "_summary, _count or _total (export.html#_typefilter-experimental-query-parameter)")


def _pairs(qs: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl
    try:
        return parse_qsl(qs, keep_blank_values=True, strict_parsing=True, max_num_fields=200)
    except ValueError as e:
        raise BadRequest(f"_typeFilter query cannot be read: {e}") from None


def _patient(req, vs, level, base):
    if level == "system":
        raise BadRequest("patient applies to Patient/$export and Group/[id]/$export only")
    if len(vs) > MAX_PATIENTS:
        raise BadRequest(f"At most {MAX_PATIENTS} patient values")
    for v in vs:
        ref = v.get("reference") if isinstance(v, dict) else None
        if isinstance(ref, str) and base and ref.startswith(base + "/Patient/"):
            ref = ref[len(base) + 1:]               # this server's absolute URL of the Patient
        kind, _, id = ref.partition("/") if isinstance(ref, str) else ("", "", "")
        if kind != "Patient" or not id or "/" in id:
            raise BadRequest("patient values are references of the form Patient/[id] (valueReference, POST only)")
        if id not in req.patients:
            req.patients.append(id)


class Unsupported(BadRequest):
    """A parameter this server does not offer (not a malformed value): ignored under handling=lenient."""


def _unsupported(name: str):
    def reader(_req, vs, _level, _base):
        if any(v not in (None, "", "false", False) for v in vs):
            raise Unsupported(f"{name} is not supported by this server (export.html#query-parameters)")
    return reader


def _allow_partial(_req, vs, _level, _base):
    if any(v not in ("true", "false", True, False) for v in vs):
        raise BadRequest("allowPartialManifests is a boolean")
    # accepted, and every manifest is complete: a server may always answer with one manifest


_READERS = {
    "_outputFormat": _output_format, "_since": _since, "_until": _until, "_type": _type,
    "_elements": _elements, "_typeFilter": _type_filter, "patient": _patient,
    "includeAssociatedData": _unsupported("includeAssociatedData"),
    "organizeOutputBy": _unsupported("organizeOutputBy"),
    "allowPartialManifests": _allow_partial,
}
