"""A forecast as an R4 ImmunizationRecommendation (immunizationrecommendation.html): one
recommendation per series, forecastStatus from the HL7 immunization-recommendation-status code system
(due, overdue, complete) or, where it has no code, Med-Port's (not-yet-due, aged-out: the binding is
an example binding), and the LOINC date criteria of the value set
immunization-recommendation-date-criterion."""
from __future__ import annotations

from .forecast import AGED_OUT, COMPLETE, DUE, NOT_YET_DUE, OVERDUE, Forecast
from .schedule import Schedule

HL7_STATUS = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
MEDPORT_STATUS = "https://medport.health/fhir/CodeSystem/immunization-forecast-status"
LOINC = "http://loinc.org"
# the stored forecast of a patient is found again by this identifier (value Patient/[id]); see status.py
IDENTIFIER_SYSTEM = "https://medport.health/fhir/sid/immunization-forecast"
SCHEDULE_EXTENSION = "https://medport.health/fhir/StructureDefinition/immunization-schedule"

STATUS = {
    DUE: (HL7_STATUS, "due", "Due"),
    OVERDUE: (HL7_STATUS, "overdue", "Overdue"),
    COMPLETE: (HL7_STATUS, "complete", "Complete"),
    NOT_YET_DUE: (MEDPORT_STATUS, "not-yet-due", "Not yet due"),
    AGED_OUT: (MEDPORT_STATUS, "aged-out", "Past the maximum age"),
}
CRITERIA = (   # (Forecast attribute, LOINC code, display)
    ("earliest", "30981-5", "Earliest date to give"),
    ("due", "30980-7", "Date vaccine due"),
    ("overdue", "59778-1", "Date when overdue for immunization"),
    ("latest", "59777-3", "Latest date to give immunization"),
)


def resource(patient_id: str, schedule: Schedule, forecasts: list[Forecast], as_of) -> dict:
    return {
        "resourceType": "ImmunizationRecommendation",
        "extension": [{"url": SCHEDULE_EXTENSION, "valueString": f"{schedule.id} {schedule.version}".strip()}],
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": f"Patient/{patient_id}"}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "date": as_of.isoformat(),
        "recommendation": [_recommendation(f) for f in forecasts],
    }


def _recommendation(f: Forecast) -> dict:
    series = f.series
    system, code, display = STATUS[f.status]
    shown = [series.vaccine_code[0]] + [c for c in series.vaccine_code[1:]
                                         if c["system"] != series.vaccine_code[0]["system"]][:1]
    out = {"vaccineCode": [{"coding": shown, "text": series.title}],
           "targetDisease": {"text": series.target_disease},
           "forecastStatus": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
           "series": series.title,
           "seriesDosesPositiveInt": len(series.doses)}
    if f.dose is not None:
        out["description"] = f"{f.dose.label}: dose {f.dose_number} of {len(series.doses)}"
        out["doseNumberPositiveInt"] = f.dose_number
        out["dateCriterion"] = [
            {"code": {"coding": [{"system": LOINC, "code": loinc, "display": text}]},
             "value": getattr(f, name).isoformat()}
            for name, loinc, text in CRITERIA if getattr(f, name) is not None]
    else:
        out["description"] = f"{series.title}: " + ("series complete" if f.status == COMPLETE else
                                                       "every dose left is past its maximum age")
    reasons = [{"text": f"Immunization/{g.id} ({g.day.isoformat()}) was not counted: {why}"} for g, why in f.invalid]
    if series.condition:
        reasons.append({"text": f"{series.title}: {series.condition['text']}"})
    if reasons:
        out["forecastReason"] = reasons
    if f.counted:
        out["supportingImmunization"] = [{"reference": f"Immunization/{g.id}"} for g in f.counted]
    return out
