"""The forecast: per series of a schedule, which dose comes next and when (docs/immunization.md).
Pure: a birth date, the doses given (completed Immunizations) and an as-of date in, one Forecast per
series out. The evaluation follows the shape of the CDC's Clinical Decision Support for
Immunization (CDSi) logic, simplified:

1. Doses given after the as-of date are not known yet at that date and are left out.
2. Each series' doses given are taken in date order and matched to the schedule's doses in turn. A
   scheduled dose whose maximum age had passed on the day a vaccine was given is skipped (OPV-0 is
   not given after 15 days: a first OPV at 6 weeks is OPV-1). A vaccine given before the dose's
   minimum age, or sooner than the minimum interval after the previous valid dose, is not valid: it
   is not counted (no grace period) and the same dose stays next. Extra doses are ignored.
3. The next dose: the first scheduled dose not given whose maximum age has not passed at the as-of
   date. Its dates: earliest = max(birth + minimum age, previous dose + minimum interval); due =
   max(birth + recommended age, earliest); overdue = birth + overdue age, moved by as much as due
   was moved past the recommended age; latest = birth + maximum age, if any.
4. Status at the as-of date: before due -> not yet due, from due -> due, from overdue -> overdue;
   no dose left: complete when the series' last dose was given, else aged out (every dose left is
   past its maximum age).
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .schedule import Dose, Schedule, Series

DUE, OVERDUE, COMPLETE = "due", "overdue", "complete"
NOT_YET_DUE, AGED_OUT = "not-yet-due", "aged-out"


@dataclass(frozen=True)
class Given:
    """A completed Immunization: its id, the day it was given and its vaccineCode codings."""
    id: str
    day: datetime.date
    codings: tuple[dict, ...]


@dataclass
class Forecast:
    series: Series
    status: str
    dose: Dose | None = None             # the next dose (None: complete or aged out)
    dose_number: int | None = None       # its position in the series, from 1
    earliest: datetime.date | None = None
    due: datetime.date | None = None
    overdue: datetime.date | None = None
    latest: datetime.date | None = None
    counted: list[Given] = field(default_factory=list)       # the valid doses, in order
    invalid: list[tuple[Given, str]] = field(default_factory=list)


def forecast(schedule: Schedule, birth: datetime.date, given: list[Given], as_of: datetime.date,
             conditions: frozenset[str] = frozenset()) -> list[Forecast]:
    known = sorted((g for g in given if birth <= g.day <= as_of), key=lambda g: (g.day, g.id))
    return [_series(s, birth, [g for g in known if s.matches(g.codings)], as_of) for s in schedule.series
            if not s.condition or s.condition["code"] in conditions]


def _past_max(dose: Dose, birth: datetime.date, day: datetime.date) -> bool:
    return dose.max_age is not None and day > dose.max_age.after(birth)


def _series(series: Series, birth: datetime.date, given: list[Given], as_of: datetime.date) -> Forecast:
    doses = series.doses
    out = Forecast(series, COMPLETE)
    at, last, last_given = 0, None, False
    for g in given:
        while at < len(doses) and _past_max(doses[at], birth, g.day):
            at += 1
        if at == len(doses):
            break
        dose = doses[at]
        if g.day < dose.min_age.after(birth):
            out.invalid.append((g, f"given before the minimum age of {dose.label} ({dose.min_age})"))
            continue
        if last is not None and dose.min_interval is not None and g.day < dose.min_interval.after(last):
            out.invalid.append((g, f"given sooner than {dose.min_interval} after the previous dose"))
            continue
        out.counted.append(g)
        last, at, last_given = g.day, at + 1, at + 1 == len(doses)
    while at < len(doses) and _past_max(doses[at], birth, as_of):
        at += 1
    if at == len(doses):
        out.status = COMPLETE if last_given else AGED_OUT
        return out
    dose = doses[at]
    earliest = dose.min_age.after(birth)
    if last is not None and dose.min_interval is not None:
        earliest = max(earliest, dose.min_interval.after(last))
    recommended = dose.recommended_age.after(birth)
    due = max(recommended, earliest)
    overdue = dose.overdue_age.after(birth) + (due - recommended)
    out.dose, out.dose_number = dose, at + 1
    out.earliest, out.due, out.overdue = earliest, due, overdue
    out.latest = dose.max_age.after(birth) if dose.max_age else None
    out.status = OVERDUE if as_of >= overdue else DUE if as_of >= due else NOT_YET_DUE
    return out
