"""Patient/[id]/$immunization-status: the patient's forecast as far as the caller can see, and storing
it (docs/immunization.md, "Who sees what").

Everything is read through the request's repository: the Patient (the operation checked it is
visible: else 404, as a read) and the completed Immunizations in the patient's compartment that
the caller may search. Immunizations outside the caller's view are not counted: the forecast never
reveals that a dose exists, when it was given or who gave it to anyone who could not search for that
Immunization (docs/immunization.md gives the reasons). A patient, and a proxy acting for them, see
their whole record, so their forecast counts every dose; a hospital without the patient's consent
counts the doses it holds.

Storing (persist) writes one ImmunizationRecommendation per patient and holder (the writer's
custodian organisation, or none for the patient's own and the server's) through the ordinary write
path: the request's transaction and common.store_new_version (scopes, admission, custody, Provenance).
"""
from __future__ import annotations

import datetime

from .. import jsonio
from ..errors import BadRequest, TooCostly, Unprocessable
from ..governance import custodian
from ..interactions.common import current_or_raise, new_id, prepare, store_new_version
from ..search.parse import parse_search
from . import forecast, recommendation, schedule

CLAIM_KIND = "immunization-forecast"     # (holder, patient) -> the stored forecast's id
PAGE = 200
MAX_IMMUNIZATIONS = 2000      # completed Immunizations one forecast reads (a lifetime has far fewer)


def status(ctx, patient_id: str, as_of: datetime.date, schedule_id: str | None = None,
           conditions: frozenset[str] = frozenset()) -> dict:
    """The ImmunizationRecommendation (not stored) for the patient as of that day."""
    plan = schedule.get(schedule_id)
    if conditions - plan.conditions():
        raise BadRequest(f"Unknown condition(s) {', '.join(sorted(conditions - plan.conditions()))} for the "
                         f"{plan.id} schedule; known: {', '.join(sorted(plan.conditions())) or 'none'}")
    patient = jsonio.loads_stored(current_or_raise(ctx.repo.read("Patient", patient_id), "Patient", patient_id).body)
    birth = birth_date(patient)
    if as_of < birth:
        raise Unprocessable(f"The date {as_of.isoformat()} is before the patient's birth date {birth.isoformat()}")
    try:
        found = forecast.forecast(plan, birth, visible_doses(ctx, patient_id), as_of, conditions)
    except (OverflowError, ValueError):      # a dose's age or interval lands past 9999-12-31
        raise Unprocessable(f"Patient/{patient_id}'s birth date {birth.isoformat()} or doses are too far in the "
                            "future to forecast: a scheduled date falls after the year 9999") from None
    return recommendation.resource(patient_id, plan, found, as_of)


def persist(ctx, patient_id: str, resource: dict) -> dict:
    """Create or update the stored forecast of this patient held by the writer; the stored version.
    Its id is bound to (holder, patient) by a store claim in the same transaction (claims are unique
    and never released: storage/base.py), so two concurrent first stores cannot make two resources;
    the write itself is the request's, admitted by its rights like any update."""
    holder = custodian.of_writer(ctx.access, ctx.settings.default_custodian)
    prepared = prepare(ctx, "ImmunizationRecommendation", resource)
    with ctx.repo.transaction() as tx:
        fresh = new_id()
        rid = tx.claim(CLAIM_KIND, f"{holder or '-'}|Patient/{patient_id}", fresh)
        if rid == fresh:                      # the first one: a create
            store_new_version(tx, prepared, rid, "POST", None)
            return prepared.resource
        # the id was claimed for this holder and patient: read as it is, then judged like an update
        # (outside the reach: 404); a deleted one is written again (admission judges the new content)
        current = tx.read("ImmunizationRecommendation", rid, None)
        if current is not None and not current.deleted:
            current = tx.read("ImmunizationRecommendation", rid, "update")
        store_new_version(tx, prepared, rid, "PUT", current)
    return prepared.resource


def birth_date(patient: dict) -> datetime.date:
    """Patient.birthDate to the day; 422 without one (a forecast counts ages in days)."""
    text = patient.get("birthDate")
    if not isinstance(text, str) or len(text) != 10:
        raise Unprocessable(f"Patient/{patient.get('id')} has no full birthDate (YYYY-MM-DD): an immunization "
                            "forecast counts ages from it")
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise Unprocessable(f"Patient/{patient.get('id')} has an invalid birthDate {text!r}") from None


def visible_doses(ctx, patient_id: str) -> list[forecast.Given]:
    """The completed, not subpotent Immunizations of the patient the caller may search, with the day
    given (occurrenceDateTime to the day at least; a year or an occurrenceString cannot be placed)."""
    parsed = parse_search("Immunization", [("patient", f"Patient/{patient_id}"), ("status", "completed"),
                                           ("_sort", "date")], base=ctx.base)
    out, cursor, read = [], None, 0
    while True:
        page = ctx.repo.search("Immunization", parsed.query, sort=parsed.results.sort, limit=PAGE, cursor=cursor)
        read += len(page.items)
        if read > MAX_IMMUNIZATIONS:
            raise TooCostly(f"More than {MAX_IMMUNIZATIONS} Immunizations: the forecast is not computed")
        for version in page.items:
            given = _given(jsonio.loads_stored(version.body))
            if given is not None:
                out.append(given)
        cursor = page.next_cursor
        if cursor is None:
            return out


def _given(immunization: dict) -> forecast.Given | None:
    when = immunization.get("occurrenceDateTime")
    if immunization.get("isSubpotent") is True or not isinstance(when, str) or len(when) < 10:
        return None
    try:
        day = datetime.date.fromisoformat(when[:10])
    except ValueError:
        return None
    codings = (immunization.get("vaccineCode") or {}).get("coding") or ()
    return forecast.Given(immunization["id"], day, tuple(c for c in codings if isinstance(c, dict)))
