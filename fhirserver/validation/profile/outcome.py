"""What profile validation found about one resource (validation/write_policy.py, $validate): the
profiles it was checked against and the findings (validation/profile Finding). It travels with a write
on interactions.common.Prepared.profile_outcome, where data quality records it (issue 20)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProfileOutcome:
    checked: tuple[str, ...]        # the canonicals checked (claimed ones that resolved, required ones)
    findings: tuple = ()            # Finding (validation/profile), in the order found
    conforms: bool = True           # no finding is an error
    required: tuple[str, ...] = ()  # the profiles required of the type (MEDPORT_REQUIRED_PROFILES)
    failed: tuple[str, ...] = ()    # the profiles with an error: not known, of another type, or not met

    @classmethod
    def of(cls, checked, findings, required=(), failed=()) -> "ProfileOutcome":
        findings = tuple(findings)
        return cls(tuple(checked), findings, not any(f.severity == "error" for f in findings), tuple(required),
                   tuple(failed))

    def meets_required(self) -> bool:
        """Every required profile is met (data quality counts conformance to these when there are any)."""
        return not set(self.required) & set(self.failed)

    def issues(self) -> list:
        """The findings as OperationOutcome issues (errors first)."""
        order = {"error": 0, "warning": 1, "information": 2}
        return [f.issue() for f in sorted(self.findings, key=lambda f: order.get(f.severity, 3))]
