"""The profile rule of every write (create, update, patch, conditional, Bundle entries: all pass
interactions.common.prepare): a resource is checked against each profile it claims in meta.profile that
the server knows (profile.html#profile-usage: claims are assertions a server may check) and against the
profile required of its type (MEDPORT_REQUIRED_PROFILES), whatever it claims.

MEDPORT_PROFILE_VALIDATION: reject (an error finding is a 422 naming path and key; nothing is stored),
warn (stored; the findings travel with the write) or off. A claimed profile the server does not know is
a warning, never a rejection: the official examples and Synthea claim profiles this server does not ship.
A required profile the server does not know is an error (the requirement cannot be met).

A claim without a version is judged by the version the server holds (store-held first, then shipped:
one US Core release, 5.0.1), as a canonical without a version means (references.html#canonical).
Cheap when nothing is claimed or required: no lookup at all.
"""
from __future__ import annotations

import functools

from ..errors import Unprocessable
from .profile.budget import budget
from .profile.outcome import ProfileOutcome

MODES = ("reject", "warn", "off")


@functools.lru_cache(maxsize=16)
def required_profiles(setting: str) -> dict[str, tuple[str, ...]]:
    """"Type=canonical,Type=canonical" -> {type: (canonical, ...)}; a bad entry is a configuration error."""
    out: dict[str, list[str]] = {}
    for item in (setting or "").split(","):
        item = item.strip()
        if not item:
            continue
        rtype, sep, canonical = item.partition("=")
        if not sep or not rtype.strip() or not canonical.strip():
            raise ValueError(f"MEDPORT_REQUIRED_PROFILES: {item!r} is not Type=canonical")
        out.setdefault(rtype.strip(), []).append(canonical.strip())
    return {k: tuple(v) for k, v in out.items()}


def check_settings(settings) -> None:
    """Refuse, at start-up, settings every write would trip on: an unknown mode, a malformed list, or a
    profile required of a type the server writes itself (its audit trail and Provenance: refusing those
    would refuse every request)."""
    from ..smart_auth.admission import SERVER_WRITTEN
    try:
        mode_of(settings)
        required = required_profiles(settings.required_profiles)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if settings.shipped_definitions not in ("served", "internal"):
        raise SystemExit("MEDPORT_SHIPPED_DEFINITIONS must be served or internal, "
                         f"not {settings.shipped_definitions!r}")
    written = sorted(set(required) & SERVER_WRITTEN)
    if written:
        raise SystemExit(f"MEDPORT_REQUIRED_PROFILES: {', '.join(written)} is written by the server itself "
                         "(the audit trail, Provenance); no profile may be required of it")


def mode_of(settings) -> str:
    mode = settings.profile_validation
    if mode not in MODES:
        raise ValueError(f"MEDPORT_PROFILE_VALIDATION must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def claimed(resource: dict) -> list[str]:
    profiles = (resource.get("meta") or {}).get("profile") or ()
    return [p for p in profiles if isinstance(p, str) and p]


def judge(ctx, rtype: str, resource: dict) -> ProfileOutcome | None:
    """The write's ProfileOutcome (None: nothing claimed nor required, or validation off); under reject
    an error finding raises Unprocessable."""
    mode = mode_of(ctx.settings)
    if mode == "off":
        return None
    claims = claimed(resource)
    required = required_profiles(ctx.settings.required_profiles).get(rtype, ())
    if not claims and not required:
        return None
    outcome = evaluate(ctx, resource, [(c, False) for c in claims] + [(c, True) for c in required])
    if mode == "reject" and not outcome.conforms:
        raise Unprocessable(f"The {rtype} does not conform to {', '.join(outcome.checked) or 'its profiles'}",
                            issues=outcome.issues())
    return outcome


def evaluate(ctx, resource: dict, profiles: list[tuple[str, bool]]) -> ProfileOutcome:
    """Check resource against each (canonical, must_resolve) with the server's definitions and terminology
    (ServerContext.definitions, .terminology): an unknown profile is an error when it must resolve, else a
    warning."""
    from .profile import MAX_CLAIMS, Finding, check
    defs, terminology = ctx.definitions, ctx.terminology
    rtype = resource.get("resourceType")
    checked, findings, failed = [], [], []
    required = {c for c, must in profiles if must}      # a profile both claimed and required must resolve
    profiles = list(dict.fromkeys((c, must or c in required) for c, must in profiles))
    claims = [c for c, must in profiles if not must]
    if len(claims) > MAX_CLAIMS:         # bounded: each claim is a lookup and a walk
        findings.append(Finding("error", "profile", "meta.profile", f"{rtype}.meta.profile",
                                f"{rtype}.meta.profile: {len(claims)} profiles claimed; at most {MAX_CLAIMS} "
                                "are judged"))
        dropped = set(claims[MAX_CLAIMS:])
        profiles = [(c, must) for c, must in profiles if must or c not in dropped]
    with budget():                      # one time budget for all the profiles (profile/budget.py)
        for canonical, must in profiles:
            sd = defs.resolve("StructureDefinition", canonical)
            where = _location(resource, rtype, canonical)
            if sd is None:
                findings.append(Finding("error" if must else "warning", "profile", canonical, where,
                                        f"The profile {canonical} is not known to this server"
                                        + ("" if must else ": the resource was not checked against it")))
                failed += [canonical] if must else []
                continue
            if sd.get("type") != rtype:
                findings.append(Finding("error", "profile", canonical, where,
                                        f"The profile {canonical} constrains {sd.get('type')}, not {rtype}"))
                failed.append(canonical)
                continue
            checked.append(canonical)
            found = check(resource, sd, resolve=defs.resolve, terminology=terminology)
            failed += [canonical] if any(f.severity == "error" for f in found) else []
            findings.extend(found)
    # a rule two profiles share (a core invariant every profile carries) is reported once
    unique: dict = {}
    for f in findings:
        unique.setdefault((f.severity, f.rule, f.key, f.path), f)
    return ProfileOutcome.of(checked, unique.values(), sorted(required), failed)


def _location(resource: dict, rtype, canonical: str) -> str:
    """Where a profile finding about the profile itself points: the claim in meta.profile, else the resource."""
    claims = (resource.get("meta") or {}).get("profile") or ()
    i = next((i for i, c in enumerate(claims) if c == canonical), None)
    return str(rtype) if i is None else f"{rtype}.meta.profile[{i}]"
