"""The forecast (fhirserver/immunization/forecast.py) over the shipped UIP schedule, table-driven over
ages and histories: the dates are worked out by hand from the schedule file, not by the code."""
from __future__ import annotations

import datetime

import pytest

from fhirserver.immunization import forecast, schedule
from fhirserver.immunization.schedule import Age

CVX = "http://hl7.org/fhir/sid/cvx"
UIP = "https://medport.health/fhir/CodeSystem/uip-vaccine"
BIRTH = datetime.date(2031, 1, 6)
# the series' vaccines as an EHR would code them
CODE = {"bcg": (CVX, "19"), "hepb": (CVX, "08"), "opv": (UIP, "opv"), "penta": (CVX, "198"), "rvv": (CVX, "122"),
        "fipv": (CVX, "10"), "pcv": (CVX, "177"), "mr": (CVX, "04"), "je": (UIP, "je"), "dpt": (CVX, "107"),
        "td": (CVX, "09")}
BIRTH_DOSES = [("bcg", "0d"), ("hepb", "0d"), ("opv", "0d")]
SIX_WEEKS = [(v, "6w") for v in ("opv", "penta", "rvv", "fipv", "pcv")]
TEN_WEEKS = [(v, "10w") for v in ("opv", "penta", "rvv")]
FOURTEEN_WEEKS = [(v, "14w") for v in ("opv", "penta", "rvv", "fipv", "pcv")]


def day(age: str) -> datetime.date:
    return Age.parse(age).after(BIRTH)


def run(history, as_of: str, conditions=frozenset()) -> dict[str, forecast.Forecast]:
    given = [forecast.Given(f"imm-{n}", day(age), ({"system": CODE[v][0], "code": CODE[v][1]},))
             for n, (v, age) in enumerate(history)]
    found = forecast.forecast(schedule.get("india-uip"), BIRTH, given, day(as_of), frozenset(conditions))
    return {f.series.id: f for f in found}


# (case, history, as-of age, {series: (status, next dose label or None)})
CASES = [
    ("newborn", [], "0d", {
        "bcg": ("due", "BCG"), "hepb-birth": ("due", "Hep B birth dose"), "opv": ("due", "OPV-0"),
        "penta": ("not-yet-due", "Pentavalent-1"), "mr": ("not-yet-due", "MR-1"), "td": ("not-yet-due", "Td (10 years)")}),
    ("birth doses given", BIRTH_DOSES, "1d", {
        "bcg": ("complete", None), "hepb-birth": ("complete", None), "opv": ("not-yet-due", "OPV-1")}),
    ("hep B birth dose missed for more than a day", [], "2d", {
        "hepb-birth": ("aged-out", None), "bcg": ("due", "BCG"), "opv": ("due", "OPV-0")}),
    ("BCG a month late", [], "5w", {"bcg": ("overdue", "BCG"), "opv": ("not-yet-due", "OPV-1")}),
    ("6 weeks", BIRTH_DOSES, "6w", {
        "opv": ("due", "OPV-1"), "penta": ("due", "Pentavalent-1"), "rvv": ("due", "RVV-1"), "fipv": ("due", "fIPV-1"),
        "pcv": ("due", "PCV-1"), "mr": ("not-yet-due", "MR-1")}),
    ("10 weeks", BIRTH_DOSES + SIX_WEEKS, "10w", {
        "opv": ("due", "OPV-2"), "penta": ("due", "Pentavalent-2"), "rvv": ("due", "RVV-2"),
        "fipv": ("not-yet-due", "fIPV-2"), "pcv": ("not-yet-due", "PCV-2")}),
    ("14 weeks", BIRTH_DOSES + SIX_WEEKS + TEN_WEEKS, "14w", {
        "opv": ("due", "OPV-3"), "penta": ("due", "Pentavalent-3"), "rvv": ("due", "RVV-3"),
        "fipv": ("due", "fIPV-2"), "pcv": ("due", "PCV-2")}),
    ("missed the 6-week visit", BIRTH_DOSES, "20w", {
        "opv": ("overdue", "OPV-1"), "penta": ("overdue", "Pentavalent-1"), "pcv": ("overdue", "PCV-1")}),
    ("primary series complete", BIRTH_DOSES + SIX_WEEKS + TEN_WEEKS + FOURTEEN_WEEKS, "9m", {
        "penta": ("complete", None), "rvv": ("complete", None), "opv": ("not-yet-due", "OPV booster"),
        "fipv": ("due", "fIPV-3"), "pcv": ("due", "PCV booster"), "mr": ("due", "MR-1")}),
    ("rotavirus never given, past one year", BIRTH_DOSES, "13m", {
        "rvv": ("aged-out", None), "penta": ("aged-out", None), "opv": ("overdue", "OPV-1"), "mr": ("overdue", "MR-1")}),
    ("a first OPV at 6 weeks is OPV-1 (OPV-0 is not given after 15 days)", [("opv", "6w")], "10w", {
        "opv": ("due", "OPV-2")}),
    ("a dose before the minimum age is not counted", [("penta", "4w")], "6w", {"penta": ("due", "Pentavalent-1")}),
    ("a dose after the as-of date is not known yet", [("penta", "6w")], "5w", {"penta": ("not-yet-due", "Pentavalent-1")}),
    ("both MR doses", [("mr", "9m"), ("mr", "16m")], "2y", {"mr": ("complete", None)}),
    ("Td at 10 and 16 years", [("td", "10y"), ("td", "16y")], "17y", {"td": ("complete", None)}),
    ("DPT boosters", [("dpt", "16m")], "5y", {"dpt-booster": ("due", "DPT booster-2")}),
]


@pytest.mark.parametrize("case, history, as_of, expected", CASES, ids=[c[0] for c in CASES])
def test_forecast_table(case, history, as_of, expected):
    found = run(history, as_of)
    got = {sid: (found[sid].status, found[sid].dose.label if found[sid].dose else None) for sid in expected}
    assert got == expected


def test_due_dates_are_the_schedule_ages():
    f = run(BIRTH_DOSES, "6w")["penta"]
    assert (f.earliest, f.due, f.overdue, f.latest) == (
        datetime.date(2031, 2, 17), datetime.date(2031, 2, 17), datetime.date(2031, 3, 17), datetime.date(2032, 1, 6))
    mr = run([], "6w")["mr"]             # calendar months: 9 months after 6 January
    assert (mr.due, mr.overdue, mr.latest) == (
        datetime.date(2031, 10, 6), datetime.date(2032, 1, 6), datetime.date(2036, 1, 6))


def test_the_minimum_interval_is_respected():
    # Pentavalent-1 at 9 weeks, then one at 11 weeks: old enough for dose 2 (10 weeks) but sooner than
    # 4 weeks after dose 1, so not counted
    f = run([("penta", "9w"), ("penta", "11w")], "12w")["penta"]
    assert f.dose.label == "Pentavalent-2" and [g.id for g in f.counted] == ["imm-0"]
    assert [(g.id, "sooner than 4w" in why) for g, why in f.invalid] == [("imm-1", True)]
    # one given before the dose's minimum age is not counted either
    early = run([("penta", "6w"), ("penta", "8w")], "9w")["penta"]
    assert [(g.id, "minimum age" in why) for g, why in early.invalid] == [("imm-1", True)]
    assert early.status == "not-yet-due" and early.due == day("10w")
    # Pentavalent-1 three weeks late (9 weeks): dose 2 moves to 13 weeks, its overdue date with it
    late = run([("penta", "9w")], "12w")["penta"]
    assert (late.earliest, late.due, late.overdue) == (day("13w"), day("13w"), day("17w"))
    assert late.status == "not-yet-due"
    assert run([("penta", "9w")], "13w")["penta"].status == "due"
    assert run([("penta", "9w")], "17w")["penta"].status == "overdue"


def test_a_booster_interval_longer_than_its_age():
    # DPT booster-1 given at 4 years 10 months: booster-2 (5 years) waits 6 months after it
    f = run([("dpt", "58m")], "5y")["dpt-booster"]
    assert (f.dose.label, f.earliest, f.due, f.status) == ("DPT booster-2", day("64m"), day("64m"), "not-yet-due")


def test_extra_doses_are_ignored_and_the_series_stays_complete():
    f = run([("bcg", "0d"), ("bcg", "3w")], "1y")["bcg"]
    assert f.status == "complete" and [g.id for g in f.counted] == ["imm-0"]


def test_a_vaccine_of_another_series_counts_nowhere_else():
    found = run([("penta", "6w")], "7w")
    assert [g.id for g in found["penta"].counted] == ["imm-0"]
    assert all(not f.counted for sid, f in found.items() if sid != "penta")


def test_conditional_series_only_when_named():
    assert "je" not in run([], "9m")
    je = run([("je", "9m")], "10m", {"je-endemic"})["je"]
    assert (je.status, je.dose.label) == ("not-yet-due", "JE-2")
