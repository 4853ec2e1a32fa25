"""Validation speed over the 779 official HL7 R4 examples (tests/data/hl7-examples).

    .venv/bin/python bench/bench_validation.py            # about 20 s
    .venv/bin/python bench/bench_validation.py --oneof    # adds the 50 s baseline

Per-resource wall time; "setup" is the one-off cost (schema load, compile,
validator build). Measured 2026-11-29 on the 2-core reference machine,
Python 3.11.7, jsonschema 4.26.0, fastjsonschema 2.22.3:

  approach                                         setup     total   median      p99
  A jsonschema, published ResourceList oneOf           -   39.90 s  0.90 ms   566 ms
  B jsonschema, resourceType dispatch (precise)   0.04 s    2.65 s  0.88 ms    29 ms
  C fastjsonschema, one module per type (139)     7.47 s    0.27 s  0.08 ms   2.2 ms
  D fastjsonschema, all types in one module       1.23 s    0.27 s  0.07 ms   2.4 ms
  E walk.py alone (null/empty/required/choice)         -    0.13 s  0.04 ms   1.2 ms
  F validate(): E + D, B only when rejected       1.26 s    0.41 s  0.11 ms   3.6 ms

(Figures vary by about 30% between runs on this shared machine.)
C and D include the separate checks of contained / Bundle-entry resources,
as validate() does. A (the lead's first measurement: 48 s) rejects
DiagnosticReport-gingival-mass for its U+00A0; B-F use the adapted schema
(fhirserver/validation/schema.py). E and F reject Questionnaire-qs1 (missing
linkId, see tests/validation/test_examples.py), so F's total includes one
B report for it.

Choice: F. fastjsonschema is ~12x faster than jsonschema on valid input but
stops at the first error and names no FHIR path, so it is only the accept
path; a rejected resource is re-run through jsonschema for the full report.
Compiling all types into one module (D) costs 1.2 s once (done lazily, or at
start-up via fhirserver.validation.warm_up()) against 30-80 ms per type for C,
which repeats every data type in each module (7.5 s for the 139 types here).
Generated code is not cached on disk.

Profile validation (fhirserver.validation.profile, docs/validation.md) comes after
it: the 296 Synthea blood-pressure Observations (Blaze's 2021 sample, ../shared/
testdata/synthea/blaze-synthea-2021) against US Core 5.0.1 us-core-blood-pressure,
20 rounds, measured 2026-12-05 on the same machine (goal: profile p50 < 1 ms):

  per resource                                      p50        p95
  structural validate() (F)                       0.07 ms    0.08 ms
  profile check(), shipped terminology            0.12 ms    0.15 ms
  profile check(), terminology=None               0.09 ms    0.11 ms
  both, as a write runs them                      0.20 ms    0.25 ms

Compiling the profile costs ~35 ms once (its FHIRPath invariants included); the
first check compiles the data types it meets (~1 ms). G/H: the 779 official
examples against their base type's definition (cold: value sets expanded and
types compiled on first use; warm: 0.33 ms median, 60-80 ms p99 for the biggest
Bundles, whose StructureDefinition entries carry fhirpathpy-evaluated eld-*
invariants). `--profile-only` runs just these.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fastjsonschema  # noqa: E402
from jsonschema import Draft6Validator  # noqa: E402

from fhirserver.errors import InvalidResource  # noqa: E402
from fhirserver.validation import fast, precise, schema, validate  # noqa: E402
from fhirserver.validation.walk import TooMany, Walker  # noqa: E402

EXAMPLES = ROOT / "tests" / "data" / "hl7-examples"


def load() -> list[dict]:
    files = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "package.json")
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


def run(fn, resources) -> tuple[list[float], int]:
    times, rejected = [], 0
    for res in resources:
        t = time.perf_counter()
        if not fn(res):
            rejected += 1
        times.append(time.perf_counter() - t)
    return times, rejected


def row(label: str, setup: float | None, times: list[float], rejected: int) -> None:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    setup_s = f"{setup:6.2f} s" if setup is not None else "       -"
    print(f"  {label:<46}{setup_s} {sum(times):7.2f} s {statistics.median(times) * 1e3:7.2f} ms"
          f" {p99 * 1e3:7.1f} ms   rejected {rejected}")


def nested_of(res: dict) -> list[tuple[str, dict]]:
    walker = Walker(schema.model(), 10_000)
    try:
        walker.resource(res, res["resourceType"], res["resourceType"])
    except TooMany:
        pass
    return [(res["resourceType"], res)] + [(t, r) for t, r, _ in walker.nested]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oneof", action="store_true", help="also time the published oneOf schema (~50 s)")
    parser.add_argument("--profile-only", action="store_true", help="only the profile validation figures")
    args = parser.parse_args()
    print(__doc__)
    if args.profile_only:
        profile_section()
        return
    resources = load()
    print(f"Now, {len(resources)} examples:\n  {'approach':<46}   setup     total   median      p99")

    if args.oneof:
        published = json.loads((ROOT / "profiles" / "fhir.schema.json").read_text(encoding="utf-8"))
        cache: dict = {}

        def a(res):
            rt = res["resourceType"]
            if rt not in cache:
                cache[rt] = Draft6Validator({"$ref": "#/definitions/" + rt, "definitions": published["definitions"]})
            return cache[rt].is_valid(res)
        row("A jsonschema, published ResourceList oneOf", None, *run(a, resources))

    t = time.perf_counter()
    schema.model()
    setup_model = time.perf_counter() - t

    def b(res):
        return not any(True for _ in precise.schema_issues(res, res["resourceType"], 1))
    t = time.perf_counter()
    for rt in {r["resourceType"] for r in resources}:
        precise.validator_for(rt)
    row("B jsonschema, resourceType dispatch (precise)", setup_model + time.perf_counter() - t, *run(b, resources))

    work = [nested_of(r) for r in resources]
    fast_defs = schema.model().fast_definitions
    per_type: dict = {}
    t = time.perf_counter()
    for rt in sorted({rt for items in work for rt, _ in items}):
        per_type[rt] = fastjsonschema.compile(
            {"$schema": "http://json-schema.org/draft-06/schema#", "definitions": fast_defs,
             "$ref": "#/definitions/" + rt}, detailed_exceptions=False)
    setup_c = time.perf_counter() - t

    def c(items):
        try:
            for rt, res in items:
                per_type[rt](res)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True
    row(f"C fastjsonschema, one module per type ({len(per_type)})", setup_c, *run(c, work))

    t = time.perf_counter()
    fast.checks()
    setup_d = time.perf_counter() - t
    row("D fastjsonschema, all types in one module", setup_d,
        *run(lambda items: not any(fast.first_error(rt, res) for rt, res in items), work))

    def e(res):
        walker = Walker(schema.model(), 51)
        try:
            walker.resource(res, res["resourceType"], res["resourceType"])
        except TooMany:
            pass
        return not walker.issues
    row("E walk.py alone (null/empty/required/choice)", None, *run(e, resources))

    def f(res):
        try:
            validate(res)
        except InvalidResource:
            return False
        return True
    row("F validate(): E + D, B only when rejected", setup_model + setup_d, *run(f, resources))
    profile_section()


SYNTHEA = (Path("/work/shared/testdata/synthea/blaze-synthea-2021"), ROOT / "tests" / "data" / "synthea-2021")
BP_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure"
BP_CODE = "85354-9"


def blood_pressures() -> list[dict]:
    """Synthea's blood-pressure Observations (Blaze's 2021 sample; the test copy when ../shared is absent)."""
    folder = next(d for d in SYNTHEA if d.is_dir())
    out = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for entry in doc.get("entry") or ():
            res = entry.get("resource") or {}
            if res.get("resourceType") == "Observation" and \
                    any(c.get("code") == BP_CODE for c in (res.get("code") or {}).get("coding") or ()):
                out.append(res)
    return out


def percentiles(label: str, setup: float | None, times: list[float]) -> None:
    times = sorted(times)
    p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]
    setup_s = f"{setup * 1e3:7.1f} ms" if setup is not None else "         -"
    print(f"  {label:<58}{setup_s} {p50 * 1e3:8.3f} ms {p95 * 1e3:8.3f} ms")


def profile_section(rounds: int = 20) -> None:
    """Profile validation (fhirserver.validation.profile) of Synthea blood pressures against US Core 5.0.1
    us-core-blood-pressure, beside the structural validation of the same resources. Goal: < 1 ms p50."""
    from fhirserver.conformance import definitions
    from fhirserver.terminology import for_store
    from fhirserver.validation.profile import check
    from fhirserver.validation.profile.compile import compiled

    observations = blood_pressures()
    defs = definitions(None)
    t = time.perf_counter()
    tx = for_store(None)
    sd = defs.resolve("StructureDefinition", BP_PROFILE)
    setup_defs = time.perf_counter() - t
    t = time.perf_counter()
    compiled(sd)
    setup_compile = time.perf_counter() - t
    t = time.perf_counter()
    first = check(observations[0], sd, resolve=defs.resolve, terminology=tx)
    first_check = time.perf_counter() - t
    assert not any(f.severity == "error" for f in first), first
    validate(observations[0])

    def timed(fn) -> list[float]:
        times = []
        for _ in range(rounds):
            for obs in observations:
                t0 = time.perf_counter()
                fn(obs)
                times.append(time.perf_counter() - t0)
        return times

    structural = timed(validate)
    with_tx = timed(lambda obs: check(obs, sd, resolve=defs.resolve, terminology=tx))
    without_tx = timed(lambda obs: check(obs, sd, resolve=defs.resolve, terminology=None))
    both = timed(lambda obs: (validate(obs), check(obs, sd, resolve=defs.resolve, terminology=tx)))
    print(f"\nProfile validation: {len(observations)} Synthea blood pressures x {rounds} rounds against\n"
          f"{BP_PROFILE} (goal: profile p50 < 1 ms)\n"
          f"  {'':<58}     setup       p50         p95")
    percentiles("structural validate() (F above)", None, structural)
    percentiles("profile check(), shipped terminology", setup_compile + first_check, with_tx)
    percentiles("profile check(), bindings not checked (terminology=None)", None, without_tx)
    percentiles("both, as a write runs them", None, both)
    print(f"  (setup: compiling the profile {setup_compile * 1e3:.1f} ms, first check {first_check * 1e3:.1f} ms "
          f"(compiles the data types, warms the value sets); loading definitions {setup_defs * 1e3:.0f} ms)")

    resources = load()
    t = time.perf_counter()
    base = {}
    for res in resources:
        rtype = res["resourceType"]
        if rtype not in base:
            base[rtype] = defs.resolve("StructureDefinition", "http://hl7.org/fhir/StructureDefinition/" + rtype)
            compiled(base[rtype])
    setup_base = time.perf_counter() - t
    print(f"\nProfile validation of the {len(resources)} official examples against their base type's definition"
          f"\n  {'approach':<46}   setup     total   median      p99")

    def g(res):
        return not any(f.severity == "error" for f in check(res, base[res["resourceType"]], resolve=defs.resolve,
                                                            terminology=tx))
    cold = run(g, resources)
    row("G profile check() vs core definition, cold", setup_base, *cold)
    row("H the same again, warm", None, *run(g, resources))


if __name__ == "__main__":
    main()
