"""Med-Port's own definitions, written into the store at the init step (context.initialize) so that they
are read and searched like any other (GET [base]/StructureDefinition?url=...; conformance.html):
the Med-Port profiles (profiles/definitions/medport/), the Med-Port CodeSystems
(terminology/CodeSystem-medport-*.json) and the Med-Port SearchParameters
(profiles/medport-search-parameters.json, profiles/medport-directory-search-parameters.json).

The profiles are shipped with the template UHID system TEMPLATE_UHID_SYSTEM; the store's pinned system
(uhid/identifier.py) is put in its place. Each definition keeps its id; it is created (also after an
administrator deleted it), or brought up to date when what is stored says something else (an upgrade, a
definition another token wrote before administrators alone could: conformance/trust.py), except when its
current version is an administrator's edit: that one stands, upgrades included, until an administrator
deletes it (docs/conformance.md). Idempotent and cheap: a store already up to date is only read (one read
per definition, no write lock); several processes starting at once write each definition once."""
from __future__ import annotations

import functools
import glob
import os

from .. import jsonio
from ..definitions import PROFILES_DIR
from ..errors import PreconditionFailed, StoreUnavailable
from ..interactions import write_origin
from . import trust
from .catalogue import DEFINITIONS_DIR, TERMINOLOGY_DIR, read_file

TEMPLATE_UHID_SYSTEM = "https://medport.health/fhir/sid/uhid"
SEARCH_PARAMETER_FILES = ("medport-search-parameters.json", "medport-directory-search-parameters.json")


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[dict, ...]:
    """The Med-Port definitions as shipped (read once per process)."""
    files = sorted(glob.glob(os.path.join(DEFINITIONS_DIR, "medport", "*.json*")))
    files += sorted(glob.glob(os.path.join(TERMINOLOGY_DIR, "CodeSystem-medport-*.json*")))
    files += [os.path.join(PROFILES_DIR, name) for name in SEARCH_PARAMETER_FILES]
    out = []
    for path in files:
        for r in read_file(path):
            r = dict(r)
            r.setdefault("id", str(r.get("url", "")).rstrip("/").rsplit("/", 1)[-1])
            r.pop("meta", None)
            out.append(r)
    return tuple(out)


def wanted(uhid_system: str) -> list[dict]:
    """The definitions this store holds: the shipped ones with its UHID system in place of the template."""
    out = []
    for r in _shipped():
        if r["resourceType"] == "StructureDefinition" and uhid_system != TEMPLATE_UHID_SYSTEM:
            r = jsonio.loads(jsonio.dumps(r).decode().replace(TEMPLATE_UHID_SYSTEM, uhid_system))
        out.append(r)
    return out


def keys() -> set[str]:
    """"Type/id" of every definition the init step writes (tests count the server's own resources)."""
    return {f"{r['resourceType']}/{r['id']}" for r in _shipped()}


def ensure(ctx) -> int:
    """Write what is missing or out of date, in one transaction; the number written. Several workers
    starting at once: the first writes, the others find it written (or lose a write conflict)."""
    from ..interactions.common import prepare, store_new_version
    stale = [r for r in wanted(ctx.uhid_system) if _stale(ctx.store.read(r["resourceType"], r["id"]), r)]
    if not stale:
        return 0        # read first: a start-up with nothing to write takes no write lock
    prepared = [(r, prepare(ctx, r["resourceType"], jsonio.loads(jsonio.dumps(r)))) for r in stale]
    written = 0
    try:
        with ctx.store.transaction() as tx:
            for r, p in prepared:
                current = tx.read(r["resourceType"], r["id"])
                if _stale(current, r):
                    store_new_version(tx, p, r["id"], "PUT", current)
                    written += 1
    except (PreconditionFailed, StoreUnavailable):
        return 0        # another worker wrote them at the same moment
    return written


def _stale(current, wanted: dict) -> bool:
    """Whether the init step writes this definition: absent, deleted, or different and not an
    administrator's edit."""
    if current is None or current.deleted:
        return True
    stored = jsonio.loads(current.body)
    if {k: v for k, v in stored.items() if k != "meta"} == wanted:
        return False
    return not _by_administrator(stored)


def _by_administrator(stored: dict) -> bool:
    return trust.trusted(stored) and write_origin.of(stored) is not None      # trusted and written with a token
