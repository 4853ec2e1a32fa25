"""India's ABDM guide (ndhm.in 2.0.1, the whole package as published: tests/data/abdm/ndhm.in-2.0.1.tgz)
installs with `medport ig install`, and every example it publishes conforms to the profiles it claims."""
from __future__ import annotations

import json
import os
import tarfile

import pytest

from fhirserver import create_app
from fhirserver.conformance import install, package
from fhirserver.validation import write_policy
from tests.conftest import make_settings

TGZ = os.path.join(os.path.dirname(__file__), "..", "data", "abdm", "ndhm.in-2.0.1.tgz")


def examples() -> list[tuple[str, dict]]:
    with tarfile.open(TGZ) as tar:
        return [(m.name.rsplit("/", 1)[-1], json.load(tar.extractfile(m))) for m in tar.getmembers()
                if m.isfile() and "/examples/" in m.name and m.name.endswith(".json")]


@pytest.fixture(scope="module")
def abdm(tmp_path_factory):
    ctx = create_app(make_settings(tmp_path_factory.mktemp("abdm"))).config["MEDPORT"]
    counts = install.install(ctx, package.read(TGZ))
    assert counts["StructureDefinition"] == 37 and counts["ValueSet"] == 19
    return ctx


def test_the_package_holds_its_examples():
    found = examples()
    unclaimed = [name for name, r in found if not (r.get("meta") or {}).get("profile")]
    assert len(found) == 69 and unclaimed == ["ImmunizationRecommendation-example-01.json"]


@pytest.mark.parametrize("name, example", examples(), ids=[n for n, _ in examples()])
def test_every_example_conforms_to_what_it_claims(abdm, name, example):
    claims = write_policy.claimed(example)
    outcome = write_policy.evaluate(abdm, example, [(c, True) for c in claims])
    errors = [f"{f.path}: {f.message}" for f in outcome.findings if f.severity == "error"]
    assert outcome.checked == tuple(dict.fromkeys(claims)) and not errors, errors


def test_a_broken_example_is_caught_by_its_abdm_rule(abdm):
    name, report = next((n, r) for n, r in examples() if n == "DiagnosticReport-Lab-example-01.json")
    broken = {k: v for k, v in report.items() if k != "code"}
    outcome = write_policy.evaluate(abdm, broken, [(c, True) for c in write_policy.claimed(report)])
    assert any(f.severity == "error" and f.path.startswith("DiagnosticReport") for f in outcome.findings)
