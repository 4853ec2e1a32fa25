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

    @classmethod
    def of(cls, checked, findings) -> "ProfileOutcome":
        findings = tuple(findings)
        return cls(tuple(checked), findings, not any(f.severity == "error" for f in findings))

    def errors(self) -> tuple:
        return tuple(f for f in self.findings if f.severity == "error")

    def issues(self) -> list:
        """The findings as OperationOutcome issues (errors first)."""
        order = {"error": 0, "warning": 1, "information": 2}
        return [f.issue() for f in sorted(self.findings, key=lambda f: order.get(f.severity, 3))]
