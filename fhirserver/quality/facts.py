"""The quality facts of one stored version (docs/data-quality.md, "Facts"): what a regulator asks of a
record, computed from its content and the profile outcome of its write, without touching the store.

A facts row is JSON: {"c": custodian ("" when none), "t": type, "v": version,
"dims": [[dimension, key], ...], "subjects": [Patient ids], "uhid": bool (Patients)}. Each [dimension, key]
of "dims" is one counter the record adds 1 to under its (custodian, type):

- total          every current record
- conformance    conforms | not-conforming | unchecked: to the profiles required of its type when
                 MEDPORT_REQUIRED_PROFILES names any, else to the profiles it claims (unchecked: no profile
                 was checked: profile_outcome absent, None or with nothing in `checked`)
- rule           "<rule>:<key>" of each error finding of the profile outcome, once per record:
                 binding:<value set>, invariant:<constraint key>, cardinality:<element id>, ...
- system         each code system its codings use (Coding.system), once per record; a system the exchange
                 does not define (neither shipped nor a trusted stored CodeSystem) counts as OTHER_SYSTEM,
                 so a writer of made-up systems cannot grow the counters (and the answer) without bound
- no-uhid-subject  a record in the Patient compartment (Patient CompartmentDefinition) none of whose
                 patient references reaches a current Patient carrying a UHID; a Patient without a UHID
"""
from __future__ import annotations

import functools

from ..conformance import CONFORMANCE_TYPES
from ..governance import custodian
from ..search.compartment import members
from ..uhid import identifier

TOTAL, CONFORMANCE, RULE, SYSTEM, NO_UHID = "total", "conformance", "rule", "system", "no-uhid-subject"
CONFORMS, NOT_CONFORMING, UNCHECKED = "conforms", "not-conforming", "unchecked"
# the audit trail and the server's own provenance are written by the server about accesses and
# changes, and definitions (StructureDefinition, ValueSet, ...) are the standards records are judged
# by: none is a record a custodian submits, so they carry no facts (and cost their writes nothing)
UNTRACKED = frozenset({"AuditEvent", "Provenance"}) | CONFORMANCE_TYPES
# a pathological record (thousands of code systems or failed rules) keeps a bounded row
MAX_KEYS = 64
OTHER_SYSTEM = "other"          # every code system the exchange does not define


def tracked(rtype: str) -> bool:
    return rtype not in UNTRACKED


def facts(resource: dict, version: int, rows: dict, outcome, uhid_system: str, bearing, known=None) -> dict:
    """The facts row of this content. rows: its search index rows (search/extract.py, as stored);
    outcome: the write's ProfileOutcome (fhirserver/validation/profile/outcome.py) or None;
    bearing(patient_id) -> bool: whether that Patient is current and carries a UHID (answered from the
    Patients' own facts rows, record.py); known(system) -> bool: a code system the exchange defines (None:
    every system is)."""
    rtype = resource["resourceType"]
    dims = [[TOTAL, ""], [CONFORMANCE, conformance(outcome)]]
    dims += [[RULE, k] for k in failing_rules(outcome)]
    systems = code_systems(resource)
    if known is not None:
        systems = sorted({s if known(s) else OTHER_SYSTEM for s in systems})
    dims += [[SYSTEM, s] for s in systems]
    row = {"c": custodian.of(resource) or "", "t": rtype, "v": version, "dims": dims, "subjects": []}
    if rtype == "Patient":
        row["uhid"] = bool(identifier.find(resource, uhid_system)) if uhid_system else False
        if not row["uhid"]:
            dims.append([NO_UHID, ""])
    elif in_compartment(rtype):
        row["subjects"] = patient_subjects(rtype, rows)
        if not any(bearing(pid) for pid in row["subjects"]):
            dims.append([NO_UHID, ""])
    return row


def conformance(outcome) -> str:
    """Conformance to the profiles required of the type when there are any (MEDPORT_REQUIRED_PROFILES),
    else to the profiles the record claims."""
    if outcome is None:
        return UNCHECKED
    if outcome.required:
        return CONFORMS if outcome.meets_required() else NOT_CONFORMING
    if not outcome.checked:
        return UNCHECKED
    return CONFORMS if outcome.conforms else NOT_CONFORMING


def failing_rules(outcome) -> list[str]:
    """"<rule>:<key>" of the outcome's error findings (validation/profile Finding), each once."""
    if outcome is None:
        return []
    keys = dict.fromkeys(f"{f.rule}:{f.key}" for f in outcome.findings if f.severity == "error")
    return list(keys)[:MAX_KEYS]


def code_systems(resource: dict) -> list[str]:
    """The systems of the record's codings, each once (sorted). A Coding is found by shape: an
    object with a string `system` and `code` and no `value` (an Identifier and a Quantity carry a value,
    and a Quantity's system is a unit system, not what a regulator asks about). meta is skipped: its
    tags and security labels are the exchange's own marks, not the record's coded content."""
    found: dict[str, None] = {}
    stack = [v for k, v in resource.items() if k != "meta"]
    while stack and len(found) < MAX_KEYS:
        node = stack.pop()
        if isinstance(node, dict):
            system = node.get("system")
            if isinstance(system, str) and isinstance(node.get("code"), str) and "value" not in node:
                found.setdefault(system)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


def in_compartment(rtype: str) -> bool:
    return rtype in _patient_params()


def patient_subjects(rtype: str, rows: dict) -> list[str]:
    """Ids of the Patients the record's Patient compartment parameters refer to, read from its reference
    index rows (key, group, target type, target id, url): relative references and absolute ones to this
    server, as the compartment search reads them (storage/mongo_layout.partition_key does the same)."""
    keys = {f"{rtype}.{code}" for code in _patient_params()[rtype]}
    return sorted({r[3] for r in rows.get("reference", ()) if r[0] in keys and r[2] == "Patient" and r[3]})


@functools.cache
def _patient_params() -> dict[str, tuple[str, ...]]:
    """{type: Patient compartment parameter codes}, the Patient itself left out (its own UHID counts)."""
    return {t: codes for t, codes in members("Patient").items() if t != "Patient"}
