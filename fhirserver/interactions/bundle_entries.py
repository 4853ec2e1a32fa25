"""Entries of batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction):
what each asks for, checked before anything is written."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from .. import jsonio
from ..definitions import resource_types
from ..errors import BadRequest, FhirError, Issue, MethodNotAllowed, PayloadTooLarge, TooCostly
from ..search.limits import DEFAULT_LIMITS, NodeBudget, SearchLimits
from ..search.parse import parse_search
from ..validation import validate
from .common import ID_RE, Prepared
from .search import lenient

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HISTORY = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/?]+)/_history/(?P<vid>[^/?]+)$")
_HISTORY_LIST = re.compile(r"^(?:(?P<type>[A-Z][A-Za-z]+)/(?:(?P<id>[^/?]+)/)?)?_history$")  # [Type/[id/]]_history


@dataclass
class Entry:
    index: int
    full_url: str | None
    method: str
    url: str
    type: str | None = None
    id: str | None = None
    criteria: str | None = None       # conditional url: Type?criteria
    vid: str | None = None            # GET .../_history/vid
    history: bool = False             # GET [Type/[id/]]_history
    operation: str | None = None      # [Type/[id]/]$name
    resource: dict | None = None
    if_none_exist: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    prepared: Prepared | None = None
    target_id: str | None = None      # the id this entry writes (resolved)
    patched: object | None = None     # PATCH in a transaction: the patch applied before the lock (patch.Patched)
    response: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        """How errors name the entry: its index and fullUrl."""
        return f"Bundle.entry[{self.index}]" + (f" ({self.full_url})" if self.full_url else "")

    def fail(self, error: FhirError) -> FhirError:
        """The same error, its diagnostics prefixed with the entry's name."""
        issues = [Issue(f"{self.where}: {i.diagnostics}", i.code, i.severity,
                        tuple(f"Bundle.entry[{self.index}].resource.{e.split('.', 1)[1]}" if "." in e else e
                              for e in i.expression) or (f"Bundle.entry[{self.index}]",))
                  for i in error.issues]
        out = type(error)(issues=issues, headers=error.headers)
        out.status = error.status
        return out


def raw_entries(bundle, kind: str, max_entries: int) -> list:
    """Bundle.entry, refused with 413 past the configured size."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be an array", expression=("Bundle.entry",))
    if len(entries) > max_entries:
        raise PayloadTooLarge(f"The {kind} has {len(entries)} entries; this server takes at most {max_entries}")
    return entries


def check_shell(bundle: dict, entries: bool = True) -> None:
    """The Bundle itself is R4 (its own elements and, with `entries`, each entry's fullUrl, request...): an
    unknown element or a malformed entry is a 400 for the whole Bundle, as for any resource (nothing is run).
    A batch checks its entries one by one instead (check_entry: each its own 400). The entries' resources
    are checked when they run, so that errors name the entry. request.ifModifiedSince is read as the HTTP
    header is (an HTTP-date or an instant, read.not_modified)."""
    validate({k: [_shell(e) for e in v] if k == "entry" else v for k, v in bundle.items() if entries or k != "entry"})


def check_entry(index: int, raw, kind: str) -> None:
    """One entry of a batch, as check_shell checks those of a transaction; the error names Bundle.entry[index]."""
    try:
        validate({"resourceType": "Bundle", "type": kind, "entry": [_shell(raw)]})
    except FhirError as err:
        where = f"Bundle.entry[{index}]"
        raise type(err)(issues=[Issue(i.diagnostics, i.code, i.severity,
                                      tuple(e.replace("Bundle.entry[0]", where, 1) for e in i.expression))
                                for i in err.issues]) from None


def _shell(entry):
    """The entry as check_shell validates it: without its resource (checked when the entry runs) and
    request.ifModifiedSince (read as the header is)."""
    if not isinstance(entry, dict):
        return entry
    out = {k: v for k, v in entry.items() if k != "resource"}
    if isinstance(out.get("request"), dict) and "ifModifiedSince" in out["request"]:
        out["request"] = {k: v for k, v in out["request"].items() if k != "ifModifiedSince"}
    return out


def parse_bundle(bundle, kind: str, max_entries: int, limits: SearchLimits | None = None,
                 terminology=None) -> list[Entry]:
    """The entries of a transaction Bundle, each checked for shape (not yet for content), and the
    cost of its searches in all (400 past the limit: the transaction would fail as a whole anyway).
    `terminology`: the server's, so that searches with token :in and the like are counted too."""
    out = [parse_entry(i, e) for i, e in enumerate(raw_entries(bundle, kind, max_entries))]
    check_shell(bundle)
    _no_duplicate_full_urls(out)
    _no_duplicate_targets(out)
    over = search_cost(out, limits or DEFAULT_LIMITS, terminology)
    if over:
        raise next(iter(over.values()))
    return out


def is_search(e: Entry) -> bool:
    """A GET/HEAD entry that searches a type ([Type]?criteria)."""
    return e.method in ("GET", "HEAD") and e.type is not None and e.id is None and not e.history \
        and e.vid is None and e.operation is None


def search_cost(entries: list[Entry], limits: SearchLimits, terminology=None) -> dict[int, FhirError]:
    """The search entries past the Bundle's shared node budget (search/limits.py), by entry index,
    each with the error it answers. The budget counts the query-tree nodes of the search entries in
    Bundle order; an entry whose own query is refused is left to fail on its own when it runs."""
    used, over = 0, {}
    for e in entries:
        if not is_search(e):
            continue
        nodes = NodeBudget(limits.max_nodes)
        try:
            parse_search(e.type, parse_qsl(e.criteria or "", keep_blank_values=True), lenient(), "", limits, nodes,
                         terminology)
        except FhirError:
            continue
        if used + nodes.used > limits.max_bundle_nodes:
            over[e.index] = e.fail(TooCostly(
                f"the search entries of this Bundle expand to more than {limits.max_bundle_nodes} query nodes "
                "in all; split the Bundle or narrow its searches"))
        else:
            used += nodes.used
    return over


def _no_duplicate_full_urls(entries: list[Entry]) -> None:
    """bundle.html bdl-7: fullUrl is unique within a Bundle (a reference must name one entry)."""
    seen = {}
    for e in entries:
        if e.full_url:
            if e.full_url in seen:
                raise BadRequest(f"{e.where} repeats the fullUrl of Bundle.entry[{seen[e.full_url]}]")
            seen[e.full_url] = e.index


def parse_entry(index: int, raw) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    request = raw.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str) \
            or not isinstance(request.get("url"), str) or not request["url"]:
        raise BadRequest(f"{where} needs request.method and request.url")
    method = request["method"].upper()
    if method not in METHODS:
        raise BadRequest(f"{where}: unknown method {request['method']!r}")
    for name, value in (("fullUrl", raw.get("fullUrl")), *((f"request.{k}", request.get(k)) for k in
                        ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"))):
        if value is not None and not isinstance(value, str):      # Bundle.entry: these are uri/string
            raise BadRequest(f"{where}: {name} must be a string")
    e = Entry(index, raw.get("fullUrl"), method, request["url"], resource=raw.get("resource"),
              if_none_exist=request.get("ifNoneExist"), if_match=request.get("ifMatch"),
              if_none_match=request.get("ifNoneMatch"), if_modified_since=request.get("ifModifiedSince"))
    _parse_url(e)
    if e.operation is not None:
        return e
    if method in ("POST", "PUT") and not isinstance(e.resource, dict):
        raise BadRequest(f"{e.where}: a {method} entry needs a resource")
    if method in ("POST", "PUT") and e.resource.get("resourceType") != e.type:
        raise BadRequest(f"{e.where}: resource type {e.resource.get('resourceType')!r} does not match url {e.url!r}")
    if method == "PUT" and e.id is not None and e.resource.get("id") not in (None, e.id):
        raise BadRequest(f"{e.where}: resource id {e.resource.get('id')!r} does not match url {e.url!r}")
    return e


def _parse_url(e: Entry) -> None:
    url = e.url.lstrip("/")
    path, _, query = url.partition("?")
    if "://" in path:
        raise BadRequest(f"{e.where}: request.url must be relative to the server base, not {e.url!r}")
    m = _HISTORY.match(path)
    listed = _HISTORY_LIST.match(path)
    if m and e.method in ("GET", "HEAD"):
        e.type, e.id, e.vid, e.criteria = m.group("type"), m.group("id"), m.group("vid"), query or None
    elif listed and e.method in ("GET", "HEAD"):
        e.type, e.id, e.history, e.criteria = listed.group("type"), listed.group("id"), True, query or None
    else:
        parts = path.split("/") if path else []
        if parts and parts[-1].startswith("$"):
            e.operation = parts.pop()[1:]
            if e.method not in ("GET", "POST"):
                raise MethodNotAllowed(f"{e.where}: operations are invoked with GET or POST, not {e.method}")
        if len(parts) > 2 or (parts and parts[0] not in resource_types() and e.method != "GET"):
            raise BadRequest(f"{e.where}: unsupported request.url {e.url!r}")
        e.type = parts[0] if parts else None
        e.id = parts[1] if len(parts) == 2 else None
        e.criteria = query or None
    if e.type is not None and e.type not in resource_types():
        raise BadRequest(f"{e.where}: unknown resource type in {e.url!r}")
    if e.id is not None and not ID_RE.match(e.id):
        raise BadRequest(f"{e.where}: invalid id in {e.url!r}")
    needs_id_or_criteria = e.method in ("PUT", "DELETE", "PATCH")
    if needs_id_or_criteria and e.id is None and e.criteria is None:
        raise BadRequest(f"{e.where}: {e.method} needs Type/id or Type?criteria, not {e.url!r}")
    if e.method == "POST" and e.operation is None and (e.id is not None or e.criteria is not None):
        raise BadRequest(f"{e.where}: POST takes a type url such as 'Patient', not {e.url!r}")


def _no_duplicate_targets(entries: list[Entry], resolved: dict | None = None) -> None:
    """http.html#transaction: two entries may not write the same resource, also once conditional
    urls are resolved (`resolved`: entry index -> id it writes)."""
    seen = {}
    for e in entries:
        target = (resolved or {}).get(e.index) or (e.id if e.method in ("PUT", "DELETE", "PATCH") else None)
        if target is None or e.method in ("GET", "HEAD"):
            continue
        key = (e.type, target)
        if key in seen:
            raise BadRequest(f"{e.where} and Bundle.entry[{seen[key]}] both change {e.type}/{target}")
        seen[key] = e.index


def check_resolved_targets(entries: list[Entry], resolved: dict) -> None:
    _no_duplicate_targets(entries, resolved)


def patch_operations(e: Entry):
    """A PATCH entry carries a JSON Patch as a Binary resource, or a FHIRPath Patch as a Parameters
    resource (http.html#patch, fhirpatch.html)."""
    r = e.resource
    if isinstance(r, dict) and r.get("resourceType") == "Parameters":
        return r
    if not isinstance(r, dict) or r.get("resourceType") != "Binary" \
            or r.get("contentType") != "application/json-patch+json":
        raise BadRequest(f"{e.where}: PATCH entries need a FHIRPath Patch (a Parameters resource) or a JSON "
                         "Patch (a Binary with contentType application/json-patch+json)")
    try:
        return jsonio.loads(base64.b64decode(r.get("data", ""), validate=True))
    except (binascii.Error, ValueError):
        raise BadRequest(f"{e.where}: the JSON Patch is not valid base64") from None
