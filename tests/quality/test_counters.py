"""The quality counters equal a from-scratch recount after random sequences of creates, updates,
deletes and failed transactions, on both stores (docs/data-quality.md, "Counters").

A model of what committed (each record's profile outcome) is kept beside the store; after every step
the counters (Store.quality_counts) are compared with a recount made here, independently of
fhirserver/quality, from the current resources the store holds."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from fhirserver import jsonio
from fhirserver.governance import custodian
from fhirserver.interactions.common import new_id, prepare, store_delete, store_new_version, store_server_written
from fhirserver.search import query as q
from fhirserver.search.extract import extract
from fhirserver.uhid.identifier import V2_0203
from fhirserver.validation.profile.outcome import ProfileOutcome

ORGS = ["Organization/a", "Organization/b", None]
SYSTEMS = ["http://loinc.org", "http://snomed.info/sct", "urn:oid:1.2.3", 'x"><script>alert(1)</script>']
RULES = [("binding", "http://hl7.org/fhir/ValueSet/observation-status"), ("invariant", "obs-6"),
         ("cardinality", "Observation.code"), ("invariant", "ele-1")]
UCUM, LAB = "http://unitsofmeasure.org", "http://lab.test/ids"


@dataclass(frozen=True)
class F:
    """A finding as facts read it (validation/profile Finding: severity, rule, key)."""
    severity: str
    rule: str
    key: str


class Boom(Exception):
    pass


def random_outcome(rnd: random.Random):
    kind = rnd.choice(["none", "unchecked", "ok", "bad"])
    if kind == "none":
        return None
    if kind == "unchecked":
        return ProfileOutcome((), ())
    findings = [F("warning", *rnd.choice(RULES))]
    if kind == "bad":
        findings += [F("error", *r) for r in rnd.sample(RULES, rnd.randint(1, 3))]
    return ProfileOutcome.of(("http://example.org/StructureDefinition/p",), findings)


class Run:
    def __init__(self, ctx, seed: int):
        self.ctx, self.rnd = ctx, random.Random(seed)
        self.outcomes: dict[tuple[str, str], object] = {}       # committed profile outcome per record
        self.patients: list[str] = []
        self.observations: list[str] = []

    # ---- writes ------------------------------------------------------------------------------
    def body(self, rtype: str) -> dict:
        rnd = self.rnd
        if rtype == "Patient":
            return {"resourceType": "Patient", "name": [{"family": rnd.choice(["Sharma", "Kumar"])}],
                    "identifier": [{"system": LAB, "value": str(rnd.randint(1, 99))}]}
        codings = [{"system": s, "code": str(rnd.randint(1, 9))} for s in rnd.sample(SYSTEMS, rnd.randint(0, 3))]
        subject = rnd.choice(["patient", "patient", "missing", "unknown", "group"])
        obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x", **({"coding": codings} if codings else {})},
               "valueQuantity": {"value": 1, "unit": "g", "system": UCUM, "code": "g"},
               "identifier": [{"system": LAB, "value": "1"}]}
        if subject == "patient" and self.patients:
            obs["subject"] = {"reference": f"Patient/{rnd.choice(self.patients)}"}
        elif subject == "unknown":
            obs["subject"] = {"reference": "Patient/nobody"}
        elif subject == "group":
            obs["subject"] = {"reference": "Group/g1"}
        return obs

    def write(self, tx, rtype: str, id: str | None, pending: dict) -> None:
        current = tx.read(rtype, id) if id else None
        if rtype == "Patient" and self.rnd.random() < 0.15 and current is None:     # no UHID: the server's own
            body = {"resourceType": "Patient", "name": [{"family": "Nouhid"}]}
            v = store_server_written(tx, self.ctx.base, body)
            pending[("Patient", v.id)] = None
            return
        body = self.body(rtype)
        if rtype == "Patient" and current is not None and not current.deleted:      # a UHID is kept for good
            held = jsonio.loads_stored(current.body).get("identifier", ())
            body["identifier"] += [i for i in held if i.get("system") == self.ctx.uhid_system]
        p = prepare(self.ctx, rtype, body)
        custodian.stamp(p.resource, self.rnd.choice(ORGS))
        p.rows, p.keeps_custodian = extract(p.resource, self.ctx.base), False
        p.profile_outcome = random_outcome(self.rnd)
        v = store_new_version(tx, p, id or new_id(), "PUT" if current else "POST", current)
        pending[(rtype, v.id)] = p.profile_outcome

    def delete(self, tx, rtype: str, id: str, pending: dict) -> None:
        current = tx.read(rtype, id)
        if current is not None and not current.deleted:
            store_delete(self.ctx, tx, current)
            pending[(rtype, id)] = "deleted"

    def step(self) -> None:
        rnd, ctx = self.rnd, self.ctx
        fails = rnd.random() < 0.25
        pending: dict = {}
        try:
            with ctx.store.transaction() as tx:
                for _ in range(rnd.randint(1, 4)):
                    rtype = rnd.choice(["Patient", "Observation", "Observation"])
                    known = self.patients if rtype == "Patient" else self.observations
                    action = rnd.choice(["create", "update", "delete"]) if known else "create"
                    if action == "delete":
                        self.delete(tx, rtype, rnd.choice(known), pending)
                    else:
                        self.write(tx, rtype, rnd.choice(known) if action == "update" else None, pending)
                if fails:
                    raise Boom()
        except Boom:
            return
        for (rtype, id), outcome in pending.items():
            known = self.patients if rtype == "Patient" else self.observations
            if id not in known:
                known.append(id)
            self.outcomes[(rtype, id)] = outcome

    # ---- the recount -------------------------------------------------------------------------
    def recount(self) -> Counter:
        store = self.ctx.store
        current = {}
        for rtype in ("Patient", "Observation"):
            for v in store.search(rtype, q.MATCH_ALL, limit=10000).items:
                current[(rtype, v.id)] = jsonio.loads_stored(v.body)
        uhid = {id for (rtype, id), r in current.items() if rtype == "Patient"
                and any(i.get("system") == self.ctx.uhid_system for i in r.get("identifier", ()))}
        want: Counter = Counter()
        for (rtype, id), r in current.items():
            group = (custodian.of(r) or "", rtype)
            outcome = self.outcomes[(rtype, id)]
            want[(*group, "total", "")] += 1
            errors = {f"{f.rule}:{f.key}" for f in outcome.findings if f.severity == "error"} if outcome else set()
            state = "unchecked" if not outcome or not outcome.checked else "not-conforming" if errors else "conforms"
            want[(*group, "conformance", state)] += 1
            for key in errors:
                want[(*group, "rule", key)] += 1
            codings = list((r.get("code") or {}).get("coding", ()))         # an Observation's code
            codings += [c for i in r.get("identifier", ()) for c in (i.get("type") or {}).get("coding", ())]  # the UHID's
            # systems the exchange does not define count as one "other" (the first two ship; no CodeSystem is stored)
            for system in {c["system"] if c["system"] in SYSTEMS[:2] + [V2_0203] else "other" for c in codings}:
                want[(*group, "system", system)] += 1
            if rtype == "Patient":
                lacks = id not in uhid
            else:
                ref = (r.get("subject") or {}).get("reference", "")
                lacks = ref.removeprefix("Patient/") not in uhid or not ref.startswith("Patient/")
            if lacks:
                want[(*group, "no-uhid-subject", "")] += 1
        return want


def counters(store) -> Counter:
    return Counter({row[:4]: row[4] for row in store.quality_counts() if row[1] in ("Patient", "Observation")})


@pytest.mark.parametrize("seed", range(4))
def test_counters_equal_a_recount_after_random_writes(ctx, seed):
    run = Run(ctx, seed)
    for i in range(40):
        run.step()
        assert counters(ctx.store) == run.recount(), f"step {i}"
    assert run.observations and run.patients


def test_a_patient_written_after_its_record_in_one_transaction_is_its_uhid_bearing_subject(ctx):
    """Bundle order: the Observation first, its Patient later in the same transaction; then the Patient's
    deletion leaves the Observation without a UHID-bearing subject."""
    pid, oid = new_id(), new_id()
    with ctx.store.transaction() as tx:
        obs = prepare(ctx, "Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                           "subject": {"reference": f"Patient/{pid}"}})
        store_new_version(tx, obs, oid, "POST", None)
        assert ["no-uhid-subject", ""] in tx.quality_row("Observation", oid)["dims"]
        store_new_version(tx, prepare(ctx, "Patient", {"resourceType": "Patient"}), pid, "PUT", None)
        assert ["no-uhid-subject", ""] not in tx.quality_row("Observation", oid)["dims"]
    assert [r for r in ctx.store.quality_counts() if r[2] == "no-uhid-subject"] == []
    with ctx.store.transaction() as tx:
        store_delete(ctx, tx, tx.read("Patient", pid))
    assert [r for r in ctx.store.quality_counts() if r[2] == "no-uhid-subject"] == [
        ("", "Observation", "no-uhid-subject", "", 1)]
