"""Verification as this server does it: its own issuer key set, optionally other issuers' key sets
given by file (offline, no network fetch), and the UHID's check digit on the card's Patient."""
from __future__ import annotations

from ..uhid import number
from . import revocation
from .issuer_keys import IssuerKeys
from .verify import Verdict, verify


def verify_card(ctx, card: str, other_issuers: dict[str, dict] | None = None) -> Verdict:
    """other_issuers: {issuer URL: JWKS} trusted besides this server. This server signs with the low s
    only (jws.py), so its cards must carry it; other issuers' signers need not normalise s."""
    other_issuers = other_issuers or {}
    own = ctx.base

    def keys_for(iss: str) -> dict | None:
        return IssuerKeys(ctx.store).jwks() if iss == own else other_issuers.get(iss)
    def own_revocations(_kid: str, claims: dict) -> list[str]:
        return revocation.problems(ctx.store, claims) if claims.get("iss") == own else []
    return verify(card, keys_for, trusted_issuers={own, *other_issuers},
                  check_bundle=uhid_problems(ctx.uhid_system), check_claims=own_revocations,
                  high_s_issuers={iss for iss in other_issuers if iss != own})


def uhid_problems(system: str):
    def check(bundle: dict) -> list[str]:
        problems, found = [], 0
        for patient in _patients(bundle):
            for ident in patient.get("identifier") or ():
                if isinstance(ident, dict) and (ident.get("system") == system
                                                or str(ident.get("system", "")).endswith("/sid/uhid")):
                    found += 1
                    try:
                        number.canonical(ident.get("value"))
                    except number.InvalidUhid as e:
                        problems.append(f"The UHID on the card is wrong: {e}")
        if not found:
            problems.append("The card carries no UHID")
        return problems
    return check


def summary(verdict: Verdict) -> dict:
    """The verdict as a FHIR Parameters resource (the answer of $verify-health-card)."""
    out = [{"name": "valid", "valueBoolean": verdict.valid}]
    if verdict.issuer:
        out.append({"name": "issuer", "valueString": verdict.issuer})
    patient = next(iter(_patients(verdict.bundle or {})), None) if verdict.valid else None
    if patient is not None:     # what an invalid card claims is not shown: it is not evidence of anything
        name = (patient.get("name") or [{}])[0]
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
        if text:
            out.append({"name": "name", "valueString": text})
        if patient.get("birthDate"):
            out.append({"name": "birthDate", "valueString": patient["birthDate"]})
        for ident in patient.get("identifier") or ():
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                out.append({"name": "uhid", "valueString": ident["value"]})
    out += [{"name": "problem", "valueString": p} for p in verdict.problems]
    if verdict.valid and verdict.bundle:
        out.append({"name": "bundle", "resource": verdict.bundle})
    return {"resourceType": "Parameters", "parameter": out}


def _patients(bundle: dict) -> list[dict]:
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    return [e["resource"] for e in entries or () if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == "Patient"]
