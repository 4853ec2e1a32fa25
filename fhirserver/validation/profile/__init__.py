"""Profile validation against StructureDefinitions (issue 20; profiling.html, validation.html).

    from fhirserver.validation.profile import check, Finding
    findings = check(resource, sd, resolve=defs.resolve, terminology=tx)

`sd` is a StructureDefinition with a snapshot (one with a differential only gets it generated once, by
snapshot.py); `resolve(rtype, canonical)` finds the definitions
it refers to (type profiles, extensions, base types of nested resources; conformance.definitions);
`terminology` answers contains() for bindings (None: bindings are not checked). The structural R4
validator (fhirserver.validation.validate) runs first; this one assumes well-formed JSON.

Modules: compile.py (snapshot -> tree of element checks, cached per SD version), walker.py (the walk),
slicing.py (slice discriminators), binding.py, values.py (fixed/pattern, reference types),
finding.py; invariants.py compiles FHIRPath constraints, snapshot.py generates snapshots.
What is and is not checked, against the HL7 Java validator: docs/validation.md.
"""
from __future__ import annotations

from . import budget
from .budget import MAX_LOOKUPS
from .compile import compiled
from .finding import RULE_SYSTEM, Finding
from .walker import MAX_CLAIMS, MAX_FINDINGS, Full, Walker

__all__ = ["check", "Finding", "RULE_SYSTEM", "MAX_FINDINGS", "MAX_CLAIMS"]


def check(resource: dict, sd: dict, *, resolve, terminology) -> list[Finding]:
    """Every way `resource` fails the profile `sd`: errors, warnings and information (a constraint or
    binding that could not be checked). The walk stops at MAX_FINDINGS errors; at most MAX_FINDINGS
    warnings and information are kept (the rest counted in a last information finding)."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    url = sd.get("url") or sd.get("id") or "?"
    if sd.get("type") != rtype:
        return [Finding("error", "profile", url, str(rtype),
                        f"{rtype}: the profile {url} is for {sd.get('type')}, not {rtype}")]
    try:
        comp = compiled(sd, resolve)
    except ValueError as e:
        return [Finding("error", "profile", url, rtype, f"{rtype}: the profile {url} cannot be used: {e}")]
    walker = Walker(resolve, terminology)
    try:
        with budget.budget():
            walker.resource(resource, comp.root, rtype)
    except budget.OverBudget:
        walker.findings.append(Finding("error", "profile", url, rtype,
                                       f"{rtype}: validation against {url} took more than {budget.SECONDS:g} s "
                                       "and was stopped; the rest is not validated"))
    except Full:
        walker.findings.append(Finding("information", "profile", url, rtype,
                                       f"{rtype}: validation stopped after {MAX_FINDINGS} errors; later "
                                       "problems are not listed"))
    except RecursionError:
        walker.findings.append(Finding("error", "profile", url, rtype,
                                       f"{rtype}: nested too deeply to be validated against {url}"))
    if walker.resolve.refused:
        walker.findings.append(Finding("error", "profile", url, rtype,
                                       f"{rtype}: refers to more than {MAX_LOOKUPS} distinct definitions (profiles, "
                                       "extensions, types); the rest were not looked up, so it is not validated "
                                       f"in full against {url}"))
    if walker.dropped:
        walker.findings.append(Finding("information", "profile", url, rtype,
                                       f"{rtype}: {walker.dropped} more warnings and information findings "
                                       "are not listed"))
    return walker.findings
