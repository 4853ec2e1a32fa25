"""One problem the profile validator found (the Finding contract of issue 20).

A Finding becomes an OperationOutcome issue (operationoutcome.html): the location is a FHIRPath
expression into the instance, details.coding names the rule kind in Med-Port's validation-rule
code system and details.text the key (invariant key, value set canonical or element id).
"""
from __future__ import annotations

from dataclasses import dataclass

from fhirserver.errors import Issue

RULE_SYSTEM = "https://medport.health/fhir/CodeSystem/validation-rule"
RULES = ("cardinality", "type", "fixed", "pattern", "slicing", "binding", "invariant", "profile")

# OperationOutcome.issue.code (IssueType) for each rule kind
_ISSUE_CODE = {"cardinality": "structure", "type": "structure", "fixed": "value", "pattern": "value",
               "slicing": "structure", "binding": "code-invalid", "invariant": "invariant",
               "profile": "structure"}


@dataclass(frozen=True)
class Finding:
    severity: str   # "error" | "warning" | "information"
    rule: str       # one of RULES
    key: str        # invariant key, binding value set canonical, else the element id
    path: str       # FHIRPath location in the instance: "Patient.identifier[0].system"
    message: str    # human text naming the path and the key

    def issue(self) -> Issue:
        code = "informational" if self.severity == "information" else _ISSUE_CODE.get(self.rule, "processing")
        return Issue(self.message, code, self.severity, (self.path,),
                     {"coding": [{"system": RULE_SYSTEM, "code": self.rule}], "text": self.key})
