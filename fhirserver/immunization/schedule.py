"""An immunization schedule as data (profiles/immunization/<id>.json; the format is in that folder's
README): series of doses, each with a minimum, recommended and overdue age, an optional maximum age
and an optional minimum interval from the previous dose of the series. A second schedule is another
file; nothing here knows a vaccine.

Ages are `<n>d`, `<n>w`, `<n>m` (calendar months) or `<n>y` (calendar years), counted from the birth
date (an interval: from the previous dose). A month added to the 31st lands on the last day of a
shorter month, as immunization schedules count ages (CDC CDSi logic spec, "Date calculations").
"""
from __future__ import annotations

import calendar
import datetime
import functools
import os
import re
from dataclasses import dataclass

from ..definitions import load_json, profile_path
from ..errors import BadRequest

FOLDER = "immunization"
FORMAT = "medport-immunization-schedule/1"
DEFAULT = "india-uip"
_AGE = re.compile(r"^(\d{1,3})([dwmy])$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class Age:
    count: int
    unit: str          # d, w, m, y

    @classmethod
    def parse(cls, text: str) -> "Age":
        found = _AGE.match(text) if isinstance(text, str) else None
        if not found:
            raise ValueError(f"not an age: {text!r} (expected <n>d, <n>w, <n>m or <n>y)")
        return cls(int(found.group(1)), found.group(2))

    def after(self, day: datetime.date) -> datetime.date:
        if self.unit == "d":
            return day + datetime.timedelta(days=self.count)
        if self.unit == "w":
            return day + datetime.timedelta(weeks=self.count)
        months = self.count * (12 if self.unit == "y" else 1)
        year, month = divmod(day.month - 1 + months, 12)
        year += day.year
        return day.replace(year=year, month=month + 1,
                           day=min(day.day, calendar.monthrange(year, month + 1)[1]))

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


@dataclass(frozen=True)
class Dose:
    label: str
    min_age: Age
    recommended_age: Age
    overdue_age: Age
    max_age: Age | None
    min_interval: Age | None     # from the previous valid dose of the same series


@dataclass(frozen=True)
class Series:
    id: str
    title: str
    target_disease: str
    vaccine_code: tuple[dict, ...]      # Codings; the first ones are shown in a recommendation
    doses: tuple[Dose, ...]
    condition: dict | None              # {code, text}: forecast only when the caller names the code

    def matches(self, codings) -> bool:
        """Whether an Immunization.vaccineCode's codings name a vaccine of this series."""
        known = {(c["system"], c["code"]) for c in self.vaccine_code}
        return any(isinstance(c, dict) and (c.get("system"), c.get("code")) in known for c in codings or ())


@dataclass(frozen=True)
class Schedule:
    id: str
    title: str
    version: str
    series: tuple[Series, ...]

    def conditions(self) -> set[str]:
        return {s.condition["code"] for s in self.series if s.condition}


def names() -> list[str]:
    """The shipped schedules' ids."""
    folder = profile_path(FOLDER)
    return sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))


def get(schedule_id: str | None) -> Schedule:
    """A shipped schedule by id (400 for an unknown one)."""
    schedule_id = schedule_id or DEFAULT
    if not isinstance(schedule_id, str) or not _ID.match(schedule_id) or schedule_id not in names():
        raise BadRequest(f"Unknown immunization schedule {schedule_id!r}; known: {', '.join(names())}")
    return _load(schedule_id)


@functools.lru_cache(maxsize=None)
def _load(schedule_id: str) -> Schedule:
    return parse(load_json(f"{FOLDER}/{schedule_id}.json"))


def parse(data: dict) -> Schedule:
    """A schedule file -> Schedule; ValueError naming the first thing wrong (a broken shipped file
    fails the tests, never a request)."""
    if data.get("format") != FORMAT:
        raise ValueError(f"an immunization schedule has format {FORMAT!r}")
    series, seen = [], set()
    for s in data["series"]:
        if s["id"] in seen:
            raise ValueError(f"series {s['id']} appears twice")
        seen.add(s["id"])
        doses = tuple(_dose(s["id"], d) for d in s["doses"])
        if not doses or not s["vaccineCode"]:
            raise ValueError(f"series {s['id']} needs doses and vaccine codes")
        series.append(Series(s["id"], s["title"], s["targetDisease"], tuple(s["vaccineCode"]), doses,
                             s.get("condition")))
    return Schedule(data["id"], data["title"], str(data.get("version", "")), tuple(series))


def _dose(series_id: str, d: dict) -> Dose:
    dose = Dose(d["label"], Age.parse(d["minAge"]), Age.parse(d["recommendedAge"]), Age.parse(d["overdueAge"]),
                Age.parse(d["maxAge"]) if "maxAge" in d else None,
                Age.parse(d["minInterval"]) if "minInterval" in d else None)
    birth = datetime.date(2000, 1, 31)       # any date: the ages must be ordered
    ordered = [dose.min_age, dose.recommended_age, dose.overdue_age] + ([dose.max_age] if dose.max_age else [])
    days = [a.after(birth) for a in ordered]
    if days != sorted(days):
        raise ValueError(f"{series_id} {dose.label}: ages must be min <= recommended <= overdue <= max")
    return dose
