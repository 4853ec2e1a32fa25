"""A Binary follows its securityContext (binary.html#security: "the Binary resource is accessed according
to the access rules of the resource in securityContext"): whoever may read the DiagnosticReport a PDF
belongs to may read the PDF, a patient included; nobody else. As a query node: a Binary whose
`security-context` (profiles/medport-search-parameters.json) is a resource of one of CONTEXTS that the
caller may read - a guarded Chain, so the store applies the caller's own guard to the context, whatever
that guard is (a patient's compartment, a hospital's custody, addressing and consents)."""
from __future__ import annotations

from ..search import query as q
from ..search.kinds.reference_kind import RefCond

KEY = "Binary.security-context"
CONTEXTS = ("DiagnosticReport", "DocumentReference", "MedicationDispense", "Task")


def readable_context(patient: str | None = None):
    """patient: a patient's own token (Patient id): her own files (securityContext her Patient) too,
    matched on the reference itself, so that a version judged alone (history: Access.versions) still
    shows. Not for a hospital: reading a patient's demographics must not open every file filed
    against her; such a Binary stays with its custodian. (A version is judged alone, without the
    store, so a context reached through a chain shows in searches and reads, not in history.)"""
    chains = tuple(q.Chain(KEY, rtype, q.MATCH_ALL) for rtype in CONTEXTS)
    own = (q.Match("reference", KEY, RefCond("Patient", patient)),) if patient else ()
    return q.Or(own + chains)
