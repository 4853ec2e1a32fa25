"""Who writes a message: the identities a token lets its holder write as (docs/messages.md, "Senders").

    a patient          Patient/<id> (fhirUser of role patient)
    a family proxy     RelatedPerson/<id>, acting for the patient its token names (governance/proxy.py)
    a hospital         its Organization (claim `organization`) and, for a practitioner, fhirUser

The server's own writes (the CLI, `medport load`, authorization off) have no Writer: they are not
judged by the message rules.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..governance import proxy
from . import refs

PERSONAL = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")


@dataclass(frozen=True)
class Writer:
    own: frozenset[str]            # the references this writer writes as (a sender, a requester)
    organization: str | None       # 'Organization/<id>' of a hospital token
    patient: str | None            # 'Patient/<id>' a patient or proxy acts for

    @property
    def default(self) -> str | None:
        """The sender filled in when a message names none: the person, else the organisation."""
        personal = sorted(r for r in self.own if r.split("/")[0] in PERSONAL)
        return personal[0] if personal else self.organization

    def is_any(self, references) -> bool:
        """Whether one of these references names this writer."""
        return bool(self.own & set(references))

    def is_party(self, references) -> bool:
        """Whether these references name the writer or the patient the writer acts for."""
        return self.is_any(references) or (self.patient is not None and self.patient in references)


def of(access) -> Writer | None:
    """The Writer of a request's rights (None: the server itself)."""
    if access.grants is None:
        return None
    claims = access.claims
    user = refs.local(claims.get("fhirUser"))
    patient = f"Patient/{access.patient}" if access.patient else None
    if claims.get("role") == proxy.ROLE:
        return Writer(frozenset({user} if user and user.startswith("RelatedPerson/") else ()), None, patient)
    if claims.get("role") == "patient":
        return Writer(frozenset({patient} if patient else ()), None, patient)
    own = {r for r in (user, access.organization) if r and not r.startswith(("Patient/", "RelatedPerson/"))}
    return Writer(frozenset(own), access.organization, None)
