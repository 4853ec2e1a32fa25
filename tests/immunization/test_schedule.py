"""The schedules as data (profiles/immunization/, fhirserver/immunization/schedule.py): every shipped
file loads and is documented, the UIP schedule has the programme's series with CVX codes, the local
codes it uses are defined in terminology/, ages are calendar arithmetic, a broken file is refused, and
a second schedule needs nothing but data."""
from __future__ import annotations

import copy
import datetime
import json
import pathlib

import pytest

from fhirserver import validation
from fhirserver.definitions import load_json
from fhirserver.errors import BadRequest
from fhirserver.immunization import forecast, recommendation, schedule
from fhirserver.immunization.schedule import Age

ROOT = pathlib.Path(__file__).resolve().parents[2]
CVX = "http://hl7.org/fhir/sid/cvx"


def terminology(name: str) -> dict:
    return json.loads((ROOT / "terminology" / name).read_text())


def test_every_shipped_schedule_loads_and_is_documented():
    readme = (ROOT / "profiles" / "immunization" / "README.md").read_text()
    assert "india-uip" in schedule.names()
    for name in schedule.names():
        loaded = schedule.get(name)
        assert loaded.id == name and f"{name}.json" in readme


def test_the_uip_schedule_has_the_programmes_series_with_cvx_codes():
    uip = schedule.get("india-uip")
    doses = {s.id: [d.label for d in s.doses] for s in uip.series}
    assert doses == {
        "bcg": ["BCG"], "hepb-birth": ["Hep B birth dose"],
        "opv": ["OPV-0", "OPV-1", "OPV-2", "OPV-3", "OPV booster"],
        "penta": ["Pentavalent-1", "Pentavalent-2", "Pentavalent-3"], "rvv": ["RVV-1", "RVV-2", "RVV-3"],
        "fipv": ["fIPV-1", "fIPV-2", "fIPV-3"], "pcv": ["PCV-1", "PCV-2", "PCV booster"], "mr": ["MR-1", "MR-2"],
        "je": ["JE-1", "JE-2"], "dpt-booster": ["DPT booster-1", "DPT booster-2"],
        "td": ["Td (10 years)", "Td (16 years)"]}
    for s in uip.series:
        assert s.vaccine_code[0]["system"] == CVX and s.vaccine_code[0]["code"].isdigit(), s.id
    assert uip.conditions() == {"je-endemic"}


def test_the_local_codes_are_defined_in_terminology():
    uip = terminology("CodeSystem-medport-uip-vaccine.json")
    defined = {(uip["url"], c["code"]) for c in uip["concept"]}
    used = {(c["system"], c["code"]) for s in schedule.get("india-uip").series for c in s.vaccine_code
            if c["system"] != CVX}
    assert used == defined
    statuses = terminology("CodeSystem-medport-immunization-forecast-status.json")
    assert {(statuses["url"], c["code"]) for c in statuses["concept"]} == {
        (system, code) for system, code, _ in recommendation.STATUS.values()
        if system == recommendation.MEDPORT_STATUS}


@pytest.mark.parametrize("start, age, expected", [
    ("2031-01-31", "1m", "2031-02-28"), ("2032-01-31", "1m", "2032-02-29"), ("2032-02-29", "1y", "2033-02-28"),
    ("2031-01-06", "6w", "2031-02-17"), ("2031-01-06", "9m", "2031-10-06"), ("2031-11-30", "3m", "2032-02-29"),
    ("2031-01-06", "0d", "2031-01-06"), ("2031-01-06", "16y", "2047-01-06")])
def test_ages_are_calendar_arithmetic(start, age, expected):
    assert Age.parse(age).after(datetime.date.fromisoformat(start)) == datetime.date.fromisoformat(expected)


def _broken(change) -> dict:
    data = copy.deepcopy(load_json("immunization/india-uip.json"))
    change(data)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda d: d["series"][2]["doses"][1].update(overdueAge="5w"), "min <= recommended <= overdue"),
    (lambda d: d["series"][0]["doses"][0].update(minAge="6x"), "not an age"),
    (lambda d: d["series"].append(d["series"][0]), "appears twice"),
    (lambda d: d.update(format="something-else"), "format"),
])
def test_a_broken_schedule_file_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        schedule.parse(_broken(change))


@pytest.mark.parametrize("name", ["atlantis", "../required-elements", "India-UIP", "india-uip.json"])
def test_only_shipped_schedules_are_opened(name):
    assert schedule.get(None).id == schedule.get("").id == "india-uip"          # none: the default
    with pytest.raises(BadRequest):
        schedule.get(name)


def test_a_second_schedule_is_data_only():
    other = schedule.parse({"format": "medport-immunization-schedule/1", "id": "example", "title": "Example",
                            "series": [{"id": "hpv", "title": "HPV", "targetDisease": "HPV infection",
                                        "vaccineCode": [{"system": CVX, "code": "165", "display": "HPV9"}],
                                        "doses": [{"label": "HPV-1", "minAge": "9y", "recommendedAge": "11y",
                                                   "overdueAge": "13y"},
                                                  {"label": "HPV-2", "minAge": "9y", "recommendedAge": "11y",
                                                   "overdueAge": "13y", "minInterval": "5m"}]}]})
    birth = datetime.date(2020, 6, 1)
    given = [forecast.Given("h1", datetime.date(2031, 6, 1), ({"system": CVX, "code": "165"},))]
    [f] = forecast.forecast(other, birth, given, datetime.date(2031, 7, 1))
    assert (f.status, f.dose.label, f.earliest, f.due) == (
        "not-yet-due", "HPV-2", datetime.date(2031, 11, 1), datetime.date(2031, 11, 1))


@pytest.mark.parametrize("as_of", ["2031-01-06", "2031-03-03", "2032-06-01", "2048-01-01"])
def test_the_recommendation_is_valid_r4(as_of):
    uip = schedule.get("india-uip")
    birth = datetime.date(2031, 1, 6)
    given = [forecast.Given("p1", datetime.date(2031, 2, 17), ({"system": CVX, "code": "198"},)),
             forecast.Given("p0", datetime.date(2031, 2, 1), ({"system": CVX, "code": "198"},))]
    resource = recommendation.resource("child", uip, forecast.forecast(uip, birth, given,
                                                                       datetime.date.fromisoformat(as_of)), as_of=
                                       datetime.date.fromisoformat(as_of))
    validation.validate(resource)              # raises on anything R4 does not allow
    for r in resource["recommendation"]:
        assert r.get("vaccineCode") or r.get("targetDisease")                    # invariant imr-1
