"""What a new user installs is enough to run the server: every third-party module that fhirserver/
imports at module level comes from a distribution named in install_requires (not only from the test
extras, which `make test` installs first and so would hide the gap), and a non-editable install
carries the definitions in profiles/ as package data."""
from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_level_imports(path: Path) -> set[str]:
    """Top-level names imported by the module's own statements (not inside functions)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        for stmt in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(stmt, ast.Import):
                names |= {a.name.split(".")[0] for a in stmt.names}
            elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
                names.add(stmt.module.split(".")[0])
    return names


def install_requires() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [ln.strip() for ln in cfg["options"]["install_requires"].splitlines()]
    return {_norm(re.split(r"[<>=!~\[; ]", ln, maxsplit=1)[0]) for ln in lines if ln and not ln.startswith("#")}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_an_install_requirement():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    providers = metadata.packages_distributions()
    required = install_requires()
    missing = {}
    for path in (ROOT / "fhirserver").rglob("*.py"):
        for name in module_level_imports(path) - stdlib - {"fhirserver"}:
            dists = {_norm(d) for d in providers.get(name, [])}
            if not dists & required:
                missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported at module level but not in install_requires: {missing}"


def test_the_check_sees_a_test_only_import(tmp_path):
    """The oracle itself: a module importing pytest (a test extra only) is caught."""
    sample = tmp_path / "m.py"
    sample.write_text("import json\nimport pytest\nfrom requests import get\n")
    names = module_level_imports(sample) - set(sys.stdlib_module_names)
    providers = metadata.packages_distributions()
    assert "pytest" in names and not {_norm(d) for d in providers["pytest"]} & install_requires()


def test_an_install_carries_the_definitions(tmp_path):
    """What setuptools puts into the wheel's package tree (build_py, the step a wheel is made of)."""
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    for name in ("search-parameters.json", "fhir.schema.json", "compartmentdefinition-patient.json",
                 "required-elements.json", "summary-elements.json", "search-unsupported.json"):
        assert f"fhirserver/profiles/{name}" in names
    ops = [p.name for p in (ROOT / "profiles" / "operations").glob("*.json")]
    assert ops and all(f"fhirserver/profiles/operations/{o}" in names for o in ops)
    schedules = [p.name for p in (ROOT / "profiles" / "immunization").glob("*.json")]
    assert schedules and all(f"fhirserver/profiles/immunization/{s}" in names for s in schedules)
    definitions = [p.relative_to(ROOT / "profiles").as_posix() for p in (ROOT / "profiles" / "definitions").rglob("*")
                   if p.is_file()]
    assert "definitions/hl7-r4-core.json.gz" in definitions
    assert all(f"fhirserver/profiles/{d}" in names for d in definitions)
    terminology = [p.name for p in (ROOT / "terminology").glob("*") if p.is_file()]
    assert "hl7-r4-valuesets.json.gz" in terminology
    assert all(f"fhirserver/terminology_files/{t}" in names for t in terminology)
