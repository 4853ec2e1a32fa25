"""Recording a version's quality facts in the write's own store transaction (docs/data-quality.md,
"Counters"): called by the one write path (interactions/common.py store_new_version, store_delete), as
provenance and subscription events are, so a write that rolls back leaves no trace in the counters and
one that commits always moves them.

"Lacks a UHID-bearing subject" follows the Patients: when a Patient starts or stops bearing a UHID (it
is created, deleted or brought back, in any order within a transaction Bundle), the records that refer
to it (Transaction.quality_referrers) are judged again in the same transaction.
"""
from __future__ import annotations

import weakref

from ..storage.base import Version
from ..uhid.identifier import CONFIG_KIND
from . import facts as f


def note(tx, version: Version, resource: dict | None, rows: dict | None, outcome, uhid_system: str | None) -> None:
    """resource/rows: the stored content and its index rows (None for a delete); outcome: the write's
    ProfileOutcome or None; uhid_system: the store's UHID system, None to read it from the store."""
    if not f.tracked(version.type):
        return
    bearing = _bearing(tx)
    if resource is None or version.deleted:
        row = None
    else:
        system = uhid_system if uhid_system is not None else pinned_uhid_system(tx.store)
        row = f.facts(resource, version.version, rows or {}, outcome, system, bearing, _known(tx))
    was = bool((tx.quality_row(version.type, version.id) or {}).get("uhid")) if version.type == "Patient" else False
    tx.put_quality_row(version.type, version.id, row)
    if version.type == "Patient" and was != bool(row and row.get("uhid")):
        recheck_referrers(tx, version.id)


def recheck_referrers(tx, patient_id: str) -> None:
    """Judge again whether each record referring to this Patient lacks a UHID-bearing subject."""
    bearing = _bearing(tx)
    for rtype, id, row in tx.quality_referrers(patient_id):
        lacks = not any(bearing(p) for p in row.get("subjects", ()))
        dims = [d for d in row["dims"] if d[0] != f.NO_UHID] + ([[f.NO_UHID, ""]] if lacks else [])
        if dims != row["dims"]:
            tx.put_quality_row(rtype, id, {**row, "dims": dims})


MAX_LOOKUPS = 8      # code systems of one record looked up among the stored CodeSystems (under the write lock)


def _known(tx):
    """known(system): the exchange defines this code system: one the shipped definitions name
    (conformance/catalogue.code_systems), or a CodeSystem the server or an administrator stored
    (conformance/trust.py), at most MAX_LOOKUPS systems of a record looked up. The lookups go through the
    store's Definitions (conformance/definitions.py), which keeps each answer for DEFINITIONS_TTL and
    forgets them when this process writes a definition (a CodeSystem earlier in the same Bundle too):
    searching the store for every record's unknown systems under the writer lock was 14% of ingest."""
    from ..conformance import catalogue
    from ..conformance.definitions import definitions
    known_systems, resolve = catalogue.code_systems(), definitions(tx.store).resolve
    looked: dict[str, bool] = {}

    def known(system: str) -> bool:
        if system in known_systems:
            return True
        if system not in looked:
            if len(looked) >= MAX_LOOKUPS or "|" in system:     # a canonical's |version is no system's
                return False
            looked[system] = resolve("CodeSystem", system) is not None
        return looked[system]
    return known


def _bearing(tx):
    """bearing(patient_id): the Patient is current and carries a UHID, from its own facts row."""
    return lambda pid: bool((tx.quality_row("Patient", pid) or {}).get("uhid"))


# store -> its pinned UHID system (uhid/identifier.py pins it once and for good)
_SYSTEMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def pinned_uhid_system(store) -> str:
    """The store's UHID system for a Patient written without a UHID plan (the server's own writes, a
    rebuild); "" before one is pinned (no Patient then bears a UHID)."""
    system = _SYSTEMS.get(store)
    if system is None:
        record = store.get_record(CONFIG_KIND, "uhid-system")
        if record is None:
            return ""
        system = _SYSTEMS[store] = record["system"]
    return system
