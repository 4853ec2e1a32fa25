"""Typed errors, turned into an OperationOutcome in exactly one place.

Every layer raises a FhirError subclass; fhirserver.resources.errorhandlers
renders it (http://hl7.org/fhir/R4/operationoutcome.html). Each issue carries a
severity, an issue-type code from http://hl7.org/fhir/issue-type and, where
known, the FHIRPath `expression` of the offending element.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    diagnostics: str
    code: str = "processing"
    severity: str = "error"
    expression: tuple[str, ...] = field(default_factory=tuple)
    details: dict | None = None         # a CodeableConcept, for machine-readable detail

    def to_json(self) -> dict:
        out = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.details:
            out["details"] = self.details
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


class FhirError(Exception):
    """Base: an HTTP status plus OperationOutcome issues."""

    status = 500
    code = "exception"

    def __init__(self, diagnostics: str = "", *, issues: list[Issue] | None = None,
                 expression: tuple[str, ...] = (), headers: dict | None = None):
        super().__init__(diagnostics or (issues[0].diagnostics if issues else self.__class__.__name__))
        self.issues = issues or [Issue(diagnostics or self.__class__.__name__, self.code, "error", tuple(expression))]
        self.headers = headers or {}

    def outcome(self) -> dict:
        return operation_outcome(self.issues)


class BadRequest(FhirError):
    status, code = 400, "invalid"


class InvalidResource(FhirError):
    """The resource breaks the R4 structure (http://hl7.org/fhir/R4/http.html#create: 400)."""
    status, code = 400, "structure"


class Unprocessable(FhirError):
    """Well-formed but violates a business rule or profile (422)."""
    status, code = 422, "business-rule"


class Unauthorized(FhirError):
    status, code = 401, "login"


class Forbidden(FhirError):
    status, code = 403, "forbidden"


class NotFound(FhirError):
    status, code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class NotAcceptable(FhirError):
    status, code = 406, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class Gone(FhirError):
    status, code = 410, "deleted"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class PayloadTooLarge(FhirError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(FhirError):
    status, code = 415, "not-supported"


class RangeNotSatisfiable(FhirError):
    status, code = 416, "invalid"


class TooManyRequests(FhirError):
    status, code = 429, "throttled"


class ServiceUnavailable(FhirError):
    status, code = 503, "transient"


class TooCostly(BadRequest):
    """A search past the server's cost limits (http://hl7.org/fhir/R4/search.html#errors)."""
    code = "too-costly"


class SearchTimedOut(ServiceUnavailable):
    """A search the store stopped at its time limit (carries Retry-After)."""
    code = "too-costly"


class VersionConflict(PreconditionFailed):
    """A write's expected version is not the current one (optimistic locking)."""


class StoreUnavailable(ServiceUnavailable):
    def __init__(self, diagnostics: str = "", **kw):
        kw.setdefault("headers", {"Retry-After": "1"})
        super().__init__(diagnostics, **kw)


class StoreRetry(StoreUnavailable):
    """A transient conflict in the store (a write conflict between concurrent transactions, an
    election): nothing was written, and the whole request may simply run again (resources/retry.py);
    503 with Retry-After once the retries are spent. Any store may raise it."""


class NestedUnitOfWork(FhirError):
    """A second store transaction opened while this thread's first is still open: a programming error,
    raised at once (waiting would deadlock on the writer lock). Join the open unit (Store.unit()) instead."""
    status, code = 500, "exception"
