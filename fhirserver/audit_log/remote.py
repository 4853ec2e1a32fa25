"""`medport audit verify --from-url URL`: a regulator verifies a running server's audit log from outside,
over HTTP alone (no store access; docs/audit.md, "`medport audit verify`"):

1. `GET [base]/$audit-checkpoint`: the latest signed checkpoint, checked with the verifier keys a mirror
   keeps (`medport audit public-key`); without keys the signature cannot be checked, and the caller
   must say so (the CLI refuses unless --trust-server-key);
2. `GET [base]/$audit-entries?start=&end=` page by page: the entries [0, S) of the checkpoint's tree
   (S its size; the log goes on growing, the verifier's own reads included);
3. `GET [base]/AuditEvent?_id=a,b,...`: the AuditEvents the entries name, in searches of at most
   ID_QUERY characters of ids (gunicorn refuses request lines past 8190), each named by the row it was
   read from (fullUrl, not the body's own `id`: a body moved to another row is seen as such). An
   AuditEvent is never updated, so the current version is the logged one; the body's meta.versionId says
   which it is. (Not the AuditEvent history: under access control, on MongoDB, a type history spanning
   more than 10,000 resources is refused.) The server audits these searches like any other: one
   AuditEvent per patient the page names, each carrying the query. A search the server fails (5xx: a
   store broken behind its back) is retried id by id, so the entry it fails on is named;
4. each entry's leaf recomputed from the served AuditEvent exactly as the log computes it
   (log.canonical of the JSON: the server serves the stored body as it is, meta included, and the
   json module parses a resource inside the Bundle to the same value as on its own), then the roots
   at S and at the size of a checkpoint held outside (--checkpoint), recomputed from the leaves and
   compared with the signed ones.

The report uses the local verify's vocabulary (verify.py): changed entry, deleted entry, swapped
entries, truncated tail, bad checkpoint. An AuditEvent written behind the server's back and never logged
(entry inserted in the middle) is not served in a way a search finds: only the local verify sees it.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Callable

from . import checkpoint as cp
from . import log as audit_log
from . import merkle
from .export import check_signed, parse_verifier_key
from .verify import Problem, Report, first_changed

FHIR_JSON = "application/fhir+json"
PAGE = 1000                     # $audit-entries answers at most 1000 entries; the largest _count
ID_QUERY = 6000                 # characters of ids in one `_id` search URL

# get(url, headers) -> (HTTP status, body bytes)
Get = Callable[[str, dict], "tuple[int, bytes]"]


class RemoteError(RuntimeError):
    """The server could not be asked (unreachable, refused the token, no checkpoint yet): exit 2."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class RemoteReport(Report):
    note: str = ""              # appended to the OK line: what the checkpoint was checked against


def http_get(timeout: float = 120.0) -> Get:
    """The getter of the CLI: requests (an install requirement of the server)."""
    import requests
    session = requests.Session()

    def get(url: str, headers: dict) -> tuple[int, bytes]:
        try:
            r = session.get(url, headers=headers, timeout=timeout)
        except requests.RequestException as e:
            raise RemoteError(f"GET {url}: {e}") from None
        return r.status_code, r.content
    return get


class _Client:
    def __init__(self, base: str, get: Get, token: str | None):
        self.base = base.rstrip("/")
        self._get = get
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def fetch(self, path: str, accept: str = FHIR_JSON) -> bytes:
        url = self.base + path
        status, body = self._get(url, {**self.headers, "Accept": accept})
        if status != 200:
            raise RemoteError(f"GET {url} answered {status}{_diagnostics(body)}", status)
        return body

    def json(self, path: str) -> dict:
        body = self.fetch(path)
        try:
            return json.loads(body)
        except ValueError:
            raise RemoteError(f"GET {self.base + path} did not answer JSON") from None


def _diagnostics(body: bytes) -> str:
    try:
        issue = json.loads(body)["issue"][0]
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        return f": {text}" if text else ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""


def parse_unsigned(text: str) -> cp.Checkpoint:
    """The checkpoint's origin, size and root, its signature NOT checked (--trust-server-key)."""
    body, sep, _signatures = text.partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) < 3 or not lines[1].isascii() or not lines[1].isdigit():
        raise ValueError("not a checkpoint (origin, tree size, root hash, blank line, signatures)")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        raise ValueError("the root hash is not base64") from None
    if len(root) != 32:
        raise ValueError("the root hash is not 32 bytes")
    return cp.Checkpoint(lines[0], int(lines[1]), root)


def _signer(text: str, keys: list[str]) -> str:
    """The verifier key (name+id) that signed this checkpoint."""
    for line in keys:
        name, public = parse_verifier_key(line)
        try:
            cp.verify(text, public, name)
            return line.strip().rsplit("+", 1)[0]
        except ValueError:
            continue
    return "?"


def _check(text: str, keys: list[str] | None) -> cp.Checkpoint:
    return parse_unsigned(text) if keys is None else check_signed(text, keys)


# ---- the entries and the AuditEvents as served ------------------------------------------------------------
def _entries(client: _Client, start: int, end: int | None) -> tuple[int, list[audit_log.Entry], Problem | None]:
    """(the log's current size, its entries [start, end) as served, a gap in them if any)."""
    out: list[audit_log.Entry] = []
    size = None
    at = start
    while True:
        stop = at + PAGE if end is None else min(at + PAGE, end)
        if size is not None:
            stop = min(stop, size)
        if size is not None and at >= stop:
            break
        answer = client.json(f"/$audit-entries?start={at}&end={stop}")
        params = answer.get("parameter", [])
        size = next(p["valueInteger"] for p in params if p["name"] == "size")
        page = [_entry(p) for p in params if p["name"] == "entry"]
        for e in page:
            if e.index != at:
                return size, out, Problem(min(e.index, at), "deleted entry" if e.index > at else
                                          "entry inserted in the middle",
                                          f"the server's entries jump from index {at - 1} to {e.index}")
            out.append(e)
            at += 1
        if not page:
            break
    return size or 0, out, None


def _entry(p: dict) -> audit_log.Entry:
    part = {x["name"]: x for x in p["part"]}
    ref = part["auditEvent"]["valueReference"]["reference"]          # AuditEvent/<id>/_history/<v>
    _type, id_, _h, version = ref.split("/")
    return audit_log.Entry(part["index"]["valueInteger"], id_, int(version),
                           base64.b64decode(part["leafHash"]["valueBase64Binary"]), part["recorded"]["valueInstant"])


def _leaf(resource: dict) -> bytes:
    """log.leaf_of of the stored body, from the served resource: json.loads of the Bundle gives the
    resource the same value as json.loads of its stored body, and canonical() is a function of it."""
    return merkle.leaf_hash(json.dumps(resource, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False).encode("utf-8"))


def _row_id(entry: dict) -> str:
    """The id of the row the server read (fullUrl), not the body's own `id`."""
    return entry["fullUrl"].rstrip("/").rsplit("/", 1)[-1]


def _by_id(client: _Client, ids: list[str]) -> dict[str, tuple[str | None, bytes]]:
    """The AuditEvents as served, by `_id` searches (each URL under ID_QUERY chars: gunicorn's request
    line limit is 8190): id -> (meta.versionId, leaf)."""
    out: dict[str, tuple[str | None, bytes]] = {}
    chunk: list[str] = []
    length = 0

    def flush():
        try:
            bundles = [client.json(f"/AuditEvent?_id={','.join(chunk)}&_count={len(chunk)}")]
        except RemoteError as e:
            if (e.status or 0) < 500:
                raise
            bundles = []
            for one in chunk:               # find the AuditEvent the server fails on: it is not served
                try:
                    bundles.append(client.json(f"/AuditEvent?_id={one}"))
                except RemoteError as e1:
                    if (e1.status or 0) < 500:
                        raise
        for entry in (e for bundle in bundles for e in bundle.get("entry", ())):
            resource = entry.get("resource")
            if resource is not None and entry.get("search", {}).get("mode", "match") == "match":
                out[_row_id(entry)] = ((resource.get("meta") or {}).get("versionId"), _leaf(resource))
        chunk.clear()

    for id_ in dict.fromkeys(ids):
        if chunk and (length + len(id_) + 1 > ID_QUERY or len(chunk) >= PAGE):
            flush()
            length = 0
        chunk.append(id_)
        length += len(id_) + 1
    if chunk:
        flush()
    return out


# ---- verify ----------------------------------------------------------------------------------------------
def verify_remote(base: str, get: Get, keys: list[str] | None, external: str | None = None,
                  token: str | None = None, grace_s: float = audit_log.GRACE_S) -> RemoteReport:
    """Verify the log of the server at `base` up to its latest checkpoint; keys None: signatures unchecked.
    RemoteError when the server cannot be asked."""
    started = time.monotonic()
    report = RemoteReport()
    problems = report.problems
    client = _Client(base, get, token)

    text = client.fetch("/$audit-checkpoint", accept="text/plain").decode("utf-8")
    try:
        signed = _check(text, keys)
    except ValueError as e:
        problems.append(Problem(0, "bad checkpoint", f"the server's latest checkpoint: {e}"))
        return report
    held = None
    if external is not None:
        try:
            held = _check(external, keys)
        except ValueError as e:
            problems.append(Problem(0, "bad checkpoint", f"checkpoint held outside: {e}"))
            return report
    report.note = (f" against {base}'s checkpoint of {signed.size} entries signed by {_signer(text, keys)}"
                   if keys is not None else
                   f" against {base}'s checkpoint of {signed.size} entries; its signature was NOT checked "
                   "(no --public-key: this shows only that the server agrees with itself)")

    size = signed.size
    current, entries, gap = _entries(client, 0, size)
    report.size = size
    if current < size:
        problems.append(Problem(current, "truncated tail",
                                f"the log has {current} entries; the server's latest checkpoint has {size}"))
    if held is not None and held.size > size:
        problems.append(Problem(size, "truncated tail", f"the server's latest checkpoint has {size} entries; "
                                                        f"the checkpoint held outside has {held.size}"))
    if gap is not None:
        problems.append(gap)
    elif len(entries) < min(size, current):
        problems.append(Problem(len(entries), "deleted entry",
                                f"the server serves {len(entries)} entries of the {min(size, current)} it counts"))

    served = _by_id(client, [e.id for e in entries])
    where_leaf: dict[bytes, int] = {}
    for e in entries:
        where_leaf.setdefault(e.leaf, e.index)
    for e in entries:
        ref = f"AuditEvent/{e.id}/_history/{e.version}"
        found = served.get(e.id)
        if found is None:
            problems.append(Problem(e.index, "deleted entry", f"{ref} is not served"))
            break
        version, leaf = found
        if leaf != e.leaf:
            j = where_leaf.get(leaf)
            if j is not None and j != e.index:
                problems.append(Problem(e.index, "swapped entries",
                                        f"AuditEvent/{e.id} holds the content logged at index {j}"))
            else:
                problems.append(Problem(e.index, "changed entry", f"{ref} as served no longer hashes to its leaf"
                                        + (f" (it is served as version {version}: an AuditEvent is never updated)"
                                           if version != str(e.version) else "")))
            break

    # the roots: the latest checkpoint's, and the one held outside (recomputed, not a server's proof)
    leaves = [e.leaf for e in entries]
    claimed = [(size, signed.root, "server's latest checkpoint")]
    if held is not None:
        claimed.append((held.size, held.root, "checkpoint held outside"))
    claimed = [c for c in claimed if c[0] <= len(leaves)]     # the others: truncated tail, reported above
    changed = first_changed(leaves, claimed)
    if changed is not None:
        problems.append(changed)
    report.seconds = time.monotonic() - started
    return report


def read_keys(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line.strip()]


def from_url(args, external: str | None) -> RemoteReport | int:
    """The CLI's `verify --from-url`: the report, or an exit code (2) after an error message."""
    import os
    import sys
    token = args.token or os.environ.get("MEDPORT_TOKEN") or None
    if not args.public_key and not args.trust_server_key:
        print("error: --from-url needs --public-key FILE (the verifier keys `medport audit public-key` prints, "
              "kept from the log's operator): without them the checkpoint's signature cannot be checked. "
              "--trust-server-key verifies without checking it (the server is then trusted to sign its own log).",
              file=sys.stderr)
        return 2
    try:
        keys = read_keys(args.public_key) if args.public_key else None
        for line in keys or ():
            parse_verifier_key(line)
    except (OSError, ValueError) as e:
        print(f"error: --public-key: {e}", file=sys.stderr)
        return 2
    try:
        return verify_remote(args.from_url, http_get(), keys, external, token)
    except RemoteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
