"""`medport load PATH...`: load Bundles (JSON) and NDJSON files through the
transaction and batch interactions, in the order given (directories in name order).

Re-running a load is safe where the data allows: a POST entry without
ifNoneExist gets one from the resource's first identifier, so a resource that
is already there is found instead of created again; a POST entry without an
identifier but with a urn:uuid: fullUrl is stored under that uuid (PUT), so a
second load updates it instead of duplicating it; NDJSON lines with an id
become PUTs.

Provenance (governance/provenance.py): each transaction Bundle (and each chunk of NDJSON_CHUNK NDJSON
lines) is one unit of work, so it gets one Provenance per patient it touches (and one for what is
about no patient), written in that same transaction: the import as a whole, split per patient, at
the cost of a few writes per Bundle rather than one per resource. The agent is the server (Device
"Med-Port"); the entity, role source, names the file. The entries of a batch Bundle are each their
own unit, so each gets its own.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field

from . import jsonio
from .errors import FhirError
from .interactions import batch as batch_i
from .interactions import transaction as transaction_i
from .search.parse_util import escape

NDJSON_CHUNK = 500
_UUID = re.compile(r"^[0-9a-fA-F-]{36}$")


@dataclass
class Report:
    files: int = 0
    resources: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def files_in(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith((".json", ".ndjson")))
        elif os.path.exists(p):
            out.append(p)
        else:
            raise SystemExit(f"medport load: no such file or directory: {p}")
    return out


def make_idempotent(bundle: dict) -> dict:
    """Rewrite POST entries so that loading the same bundle twice stores nothing twice."""
    for e in bundle.get("entry") or []:
        request, resource = e.get("request") or {}, e.get("resource") or {}
        if request.get("method") != "POST" or request.get("ifNoneExist") or not isinstance(resource, dict):
            continue
        ident = next((i for i in resource.get("identifier") or [] if isinstance(i, dict)
                      and i.get("system") and i.get("value")), None) \
            if isinstance(resource.get("identifier"), list) else None
        uuid = (e.get("fullUrl") or "")[len("urn:uuid:"):] if (e.get("fullUrl") or "").startswith("urn:uuid:") else ""
        if ident:
            request["ifNoneExist"] = f"identifier={escape(ident['system'])}|{escape(ident['value'])}"
        elif _UUID.match(uuid):
            request["method"], request["url"] = "PUT", f"{resource.get('resourceType')}/{uuid}"
    return bundle


def _as_bundle(resource_list: list[dict], kind: str = "transaction") -> dict:
    entries = []
    for r in resource_list:
        if r.get("id"):
            entries.append({"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
        else:
            entries.append({"resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def bundles_of(path: str):
    """(bundle, resource count) pairs that one file holds."""
    with open(path, "rb") as f:
        if path.endswith(".ndjson"):
            chunk = []
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        chunk.append(jsonio.loads(line))
                    except FhirError as e:
                        raise ValueError(f"line {n}: {e}") from None
                if len(chunk) >= NDJSON_CHUNK:
                    yield _as_bundle(chunk), len(chunk)
                    chunk = []
            if chunk:
                yield _as_bundle(chunk), len(chunk)
            return
        data = jsonio.loads(f.read(), max_depth=200)
    if not isinstance(data, dict) or "resourceType" not in data:
        raise ValueError("not a FHIR resource or Bundle")
    if data.get("resourceType") != "Bundle":
        yield _as_bundle([data]), 1
    elif data.get("type") in ("transaction", "batch"):
        yield data, len(data.get("entry") or [])
    else:
        resources = [e["resource"] for e in data.get("entry") or [] if isinstance(e.get("resource"), dict)]
        yield _as_bundle(resources, "batch"), len(resources)


def load(ctx, paths: list[str], idempotent: bool = True, out=None) -> Report:
    out = out or sys.stderr
    files = files_in(paths)
    total_bytes = sum(os.path.getsize(f) for f in files) or 1
    report, done_bytes, started = Report(), 0, time.monotonic()
    for path in files:
        try:
            source = {"entity": [{"role": "source", "what": {"display": f"medport load {os.path.basename(path)}"}}]}
            for bundle, n in bundles_of(path):
                _load_one(ctx, bundle, idempotent, source)
                report.resources += n
                _progress(out, report, done_bytes / total_bytes, started)
            report.files += 1
        except FhirError as e:
            report.failures.append((path, "; ".join(i.diagnostics for i in e.issues[:3])))
        except (ValueError, OSError, json.JSONDecodeError) as e:
            report.failures.append((path, str(e)))
        done_bytes += os.path.getsize(path)
        _progress(out, report, done_bytes / total_bytes, started)
    report.seconds = time.monotonic() - started
    if getattr(out, "isatty", lambda: False)():
        out.write("\n")
    return report


def _load_one(ctx, bundle: dict, idempotent: bool, provenance: dict | None = None) -> None:
    if idempotent:
        make_idempotent(bundle)
    if bundle.get("type") == "transaction":
        transaction_i.transaction(ctx, bundle, provenance)
        return
    failed = [r for r in batch_i.batch(ctx, bundle, provenance) if r.error is not None]
    if failed:
        first = failed[0].error
        raise type(first)(f"{len(failed)} batch entries failed, e.g. {first.issues[0].diagnostics}")


def _progress(out, report: Report, fraction: float, started: float) -> None:
    """A progress bar on a terminal (resources, resources/s, ETA); nothing when output is a file."""
    if not getattr(out, "isatty", lambda: False)():
        return
    elapsed = max(time.monotonic() - started, 1e-6)
    rate = report.resources / elapsed
    eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0
    width = 30
    bar = "#" * int(width * fraction) + "-" * (width - int(width * fraction))
    out.write(f"\r[{bar}] {report.resources} resources, {rate:.0f}/s, ETA {eta:.0f}s ")
    out.flush()
