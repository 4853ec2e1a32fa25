"""Who oversees the audit log: a regulator (user role or regulator client), an administrator, or anyone
when authorization is off. They read its checkpoints, proofs and entries (routes.py) and get the signed
checkpoint with an export of AuditEvents (export.py bulk_extension); others see only the AuditEvents
their access admits (docs/audit.md, "Endpoints")."""
from __future__ import annotations


def oversees(access) -> bool:
    return access.grants is None or access.regulator or access.claims.get("role") == "admin"
