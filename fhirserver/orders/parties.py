"""Who writes an order record, as the order workflow sees it (docs/orders.md, "Who may do what"):

- the server: no token (the CLI, `medport load`, authorization off, the server's own follow-up writes),
  the exchange's own tools (a token with no organisation and no patient) and administrators;
- an organisation: a hospital, lab or pharmacy token (claim `organization`); it is the PLACER of the
  Tasks and requests it holds (governance/custodian.py) and the OWNER of the Tasks whose Task.owner
  names it;
- a patient: a patient's own token, or a family proxy acting for the patient (governance/proxy.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..governance import addressed, custodian
from ..search.kinds.reference_kind import split_reference

SERVER, ORGANIZATION, PATIENT = "server", "organization", "patient"


@dataclass(frozen=True)
class Party:
    kind: str
    organization: str | None = None     # 'Organization/<id>'
    patient: str | None = None          # the Patient id a patient token acts for

    @property
    def server(self) -> bool:
        return self.kind == SERVER

    def holds(self, record: dict | None) -> bool:
        """Whether this organisation is the record's custodian (the server holds everything)."""
        return self.server or (record is not None and self.organization is not None
                               and custodian.of(record) == self.organization)

    def names(self, value) -> bool:
        """Whether a Reference (or a list of them) names this organisation."""
        return self.organization is not None and addressed.names(value, self.organization)


def of(access) -> Party:
    if access.grants is None or access.claims.get("role") == "admin":
        return Party(SERVER)
    if access.organization is not None:
        return Party(ORGANIZATION, organization=access.organization)
    if access.patient is not None:
        return Party(PATIENT, patient=access.patient)
    return Party(SERVER)


refs = addressed.refs     # the literal references of a Reference or a list of them


def local(reference: str | None, base: str) -> tuple[str, str] | None:
    """('Type', 'id') of a local relative or absolute reference, else None (as the index reads it)."""
    if not isinstance(reference, str):
        return None
    rtype, rid, _ = split_reference(reference, base.rstrip("/"))
    return (rtype, rid) if rtype is not None else None
