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
    args = parser.parse_args()
    print(__doc__)
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


if __name__ == "__main__":
    main()
