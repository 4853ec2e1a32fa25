"""The demo's small city (`medport serve --demo`): where care is, what it costs and when it is free.

Pune, around the demo hospital: three hospitals (Organization + Location HOSP with position, opening
hours, telecom, address), their services (HealthcareService) and prices (ChargeItemDefinition linked
to the service by useContext venue, INR: docs/prices.md), practitioners (Practitioner +
PractitionerRole), two pharmacies, two laboratories (HLAB, OUTLAB) with a blood test and its price,
and two blood banks; Chennai, around the demo clinic: its clinic Location and a pharmacy. Each entry is
held by the organisation that publishes it (its custodian, docs/governance.md). The directory is public
(docs/directory.md).

Idempotent: fixed ids, written (PUT) only when missing, so later starts change nothing; the free Slots
of the coming week (from the seeding day, in Asia/Kolkata) are generated on every start by the
scheduling code (scheduling/slots.py; existing Slots are kept), so the demo always has upcoming slots.
A few hundred Slots, a few seconds at most.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import zoneinfo

from .interactions import update as update_i
from .scheduling import slots

TZ = "Asia/Kolkata"
DAYS_AHEAD = 7
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
FACILITY = "https://medport.health/fhir/CodeSystem/facility-type"
SNOMED = "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/service-category"
WEEK = ["mon", "tue", "wed", "thu", "fri", "sat"]
BLOOD_TEST = {"coding": [{"system": SNOMED, "code": "396550006", "display": "Blood test"}]}
CONSULT = {"coding": [{"system": SNOMED, "code": "11429006", "display": "Consultation"}]}
PATHOLOGY = {"coding": [{"system": SNOMED, "code": "394915009", "display": "General pathology"}]}
CARDIOLOGY = {"coding": [{"system": SNOMED, "code": "394579002", "display": "Cardiology"}]}
GENERAL = {"coding": [{"system": SNOMED, "code": "394814009", "display": "General practice"}]}
HOSPITAL, CLINIC = "Organization/demo-hospital", "Organization/demo-clinic"
LAB = "Organization/demo-deccan-diagnostics"


def _org(oid: str, name: str, city: str, phone: str) -> dict:
    return {"resourceType": "Organization", "id": oid, "active": True, "name": name,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                  "code": "prov"}]}],
            "telecom": [{"system": "phone", "value": phone}], "address": [{"city": city, "country": "IN"}]}


def _place(lid: str, name: str, kind: tuple[str, str], org: str, lat: float, long: float, street: str,
           city: str, phone: str, hours: list[dict]) -> dict:
    system, code = kind
    return {"resourceType": "Location", "id": lid, "status": "active", "name": name, "mode": "instance",
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": TZ}],
            "type": [{"coding": [{"system": system, "code": code}]}],
            "telecom": [{"system": "phone", "value": phone}],
            "address": {"line": [street], "city": city, "state": "Maharashtra" if city == "Pune" else "Tamil Nadu",
                        "country": "IN"},
            "position": {"latitude": lat, "longitude": long},
            "managingOrganization": {"reference": org}, "hoursOfOperation": hours}


def _hours(opening: str, closing: str, days=WEEK) -> list[dict]:
    return [{"daysOfWeek": list(days), "openingTime": opening + ":00", "closingTime": closing + ":00"}]


ALL_DAY = [{"daysOfWeek": WEEK + ["sun"], "allDay": True}]


def _service(sid: str, name: str, org: str, location: str, category: tuple[str, str], type_: dict,
             specialty: dict) -> dict:
    return {"resourceType": "HealthcareService", "id": sid, "active": True, "name": name,
            "providedBy": {"reference": org}, "location": [{"reference": f"Location/{location}"}],
            "category": [{"coding": [{"system": CATEGORY, "code": category[0], "display": category[1]}]}],
            "type": [type_], "specialty": [specialty]}


def _price(cid: str, title: str, service: str, base: int, senior_discount: float | None = None) -> dict:
    groups = [{"priceComponent": [{"type": "base", "amount": {"value": base, "currency": "INR"}}]}]
    if senior_discount:
        groups.append({"applicability": [{"description": "senior citizens", "language": "text/fhirpath",
                                          "expression": "%patient.birthDate <= today() - 60 years"}],
                       "priceComponent": [{"type": "discount", "factor": senior_discount}]})
    return {"resourceType": "ChargeItemDefinition", "id": cid, "url": f"https://demo.medport.health/price/{cid}",
            "status": "active", "title": title, "code": {"text": title},
            "useContext": [{"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                                     "code": "venue"},
                            "valueReference": {"reference": f"HealthcareService/{service}"}}],
            "propertyGroup": groups}


def _role(rid: str, practitioner: str, org: str, location: str, service: str, specialty: dict,
          days: list[str], start: str, end: str) -> dict:
    return {"resourceType": "PractitionerRole", "id": rid, "active": True,
            "availableTime": [{"daysOfWeek": days, "availableStartTime": start, "availableEndTime": end}],
            "practitioner": {"reference": f"Practitioner/{practitioner}"}, "organization": {"reference": org},
            "location": [{"reference": f"Location/{location}"}],
            "healthcareService": [{"reference": f"HealthcareService/{service}"}], "specialty": [specialty]}


def _schedule(sid: str, actors: list[str], type_: dict, specialty: dict) -> dict:
    return {"resourceType": "Schedule", "id": sid, "active": True, "serviceType": [type_], "specialty": [specialty],
            "actor": [{"reference": a} for a in actors]}


# (holder, resources): each hospital's directory entries, held by it
CITY: list[tuple[str, list[dict]]] = [
    (HOSPITAL, [
        _place("demo-hospital-main", "Med-Port Demo Hospital", (ROLE, "HOSP"), HOSPITAL, 18.5204, 73.8567,
               "12 Jangli Maharaj Road, Shivajinagar", "Pune", "+91 20 2553 0000", ALL_DAY),
        _place("demo-hospital-lab", "Med-Port Demo Hospital Laboratory", (ROLE, "HLAB"), HOSPITAL, 18.5209, 73.8571,
               "12 Jangli Maharaj Road, Shivajinagar", "Pune", "+91 20 2553 0010", _hours("07:00", "12:00")),
        _place("demo-hospital-blood-bank", "Med-Port Demo Hospital Blood Bank", (FACILITY, "blood-bank"), HOSPITAL,
               18.5199, 73.8560, "12 Jangli Maharaj Road, Shivajinagar", "Pune", "+91 20 2553 0020", ALL_DAY),
        _place("demo-hospital-pharmacy", "Med-Port Demo Hospital Pharmacy", (ROLE, "PHARM"), HOSPITAL, 18.5202,
               73.8575, "12 Jangli Maharaj Road, Shivajinagar", "Pune", "+91 20 2553 0030", ALL_DAY),
        _service("demo-blood-test", "Blood test (complete blood count)", HOSPITAL, "demo-hospital-lab",
                 ("26", "Specialist Clinical Pathology"), BLOOD_TEST, PATHOLOGY),
        _service("demo-cardiology-opd", "Cardiology OPD", HOSPITAL, "demo-hospital-main",
                 ("27", "Specialist Medical"), CONSULT, CARDIOLOGY),
        _price("demo-blood-test-price", "Complete blood count", "demo-blood-test", 400, 0.2),
        _price("demo-cardiology-fee", "Cardiology consultation", "demo-cardiology-opd", 800, 0.1),
        _role("demo-doctor-cardiology", "demo-doctor", HOSPITAL, "demo-hospital-main", "demo-cardiology-opd",
              CARDIOLOGY, ["mon", "wed", "fri"], "10:00:00", "13:00:00"),
        _schedule("demo-blood-test-schedule", ["Location/demo-hospital-lab", "HealthcareService/demo-blood-test"],
                  BLOOD_TEST, PATHOLOGY),
        _schedule("demo-cardiology-schedule", ["PractitionerRole/demo-doctor-cardiology",
                                               "HealthcareService/demo-cardiology-opd"], CONSULT, CARDIOLOGY),
    ]),
    ("Organization/demo-kothrud", [
        _org("demo-kothrud", "Kothrud Community Hospital", "Pune", "+91 20 2545 1000"),
        _place("demo-kothrud-main", "Kothrud Community Hospital", (ROLE, "HOSP"), "Organization/demo-kothrud",
               18.5074, 73.8077, "Paud Road, Kothrud", "Pune", "+91 20 2545 1000", ALL_DAY),
        _place("demo-kothrud-blood-bank", "Kothrud Community Blood Bank", (FACILITY, "blood-bank"),
               "Organization/demo-kothrud", 18.5080, 73.8090, "Paud Road, Kothrud", "Pune", "+91 20 2545 1020",
               _hours("08:00", "20:00", WEEK + ["sun"])),
        {"resourceType": "Practitioner", "id": "demo-kothrud-gp", "active": True,
         "name": [{"prefix": ["Dr"], "given": ["Anil"], "family": "Joshi"}]},
        _service("demo-kothrud-gp-opd", "General OPD", "Organization/demo-kothrud", "demo-kothrud-main",
                 ("17", "General Practice"), CONSULT, GENERAL),
        _price("demo-kothrud-gp-fee", "General consultation", "demo-kothrud-gp-opd", 300),
        _role("demo-kothrud-gp-role", "demo-kothrud-gp", "Organization/demo-kothrud", "demo-kothrud-main",
              "demo-kothrud-gp-opd", GENERAL, WEEK, "17:00:00", "20:00:00"),
        _schedule("demo-kothrud-gp-schedule", ["PractitionerRole/demo-kothrud-gp-role",
                                               "HealthcareService/demo-kothrud-gp-opd"], CONSULT, GENERAL),
    ]),
    ("Organization/demo-hadapsar", [
        _org("demo-hadapsar", "Hadapsar Multispeciality Hospital", "Pune", "+91 20 2681 2000"),
        _place("demo-hadapsar-main", "Hadapsar Multispeciality Hospital", (ROLE, "HOSP"), "Organization/demo-hadapsar",
               18.5089, 73.9260, "Solapur Road, Hadapsar", "Pune", "+91 20 2681 2000", ALL_DAY),
        _place("demo-hadapsar-pharmacy", "Hadapsar Medical Store", (ROLE, "PHARM"), "Organization/demo-hadapsar",
               18.5012, 73.9311, "Magarpatta Road, Hadapsar", "Pune", "+91 20 2681 2030", _hours("09:00", "22:00")),
    ]),
    (LAB, [
        _org("demo-deccan-diagnostics", "Deccan Diagnostics", "Pune", "+91 20 2567 3000"),
        _place("demo-deccan-lab", "Deccan Diagnostics, Erandwane", (ROLE, "OUTLAB"),
               LAB, 18.5018, 73.8260, "Karve Road, Erandwane", "Pune",
               "+91 20 2567 3000", _hours("07:00", "13:00")),
        _service("demo-deccan-blood-test", "Blood test (complete blood count)", LAB,
                 "demo-deccan-lab", ("26", "Specialist Clinical Pathology"), BLOOD_TEST, PATHOLOGY),
        _price("demo-deccan-blood-test-price", "Complete blood count", "demo-deccan-blood-test", 350),
        _schedule("demo-deccan-blood-test-schedule", ["Location/demo-deccan-lab",
                                                      "HealthcareService/demo-deccan-blood-test"],
                  BLOOD_TEST, PATHOLOGY),
    ]),
    (CLINIC, [
        _place("demo-clinic-main", "Med-Port Demo Clinic", (ROLE, "HOSP"), CLINIC, 13.0604, 80.2496,
               "45 Cathedral Road, Gopalapuram", "Chennai", "+91 44 2811 0000", _hours("08:00", "20:00")),
        _place("demo-clinic-pharmacy", "Gopalapuram Pharmacy", (ROLE, "PHARM"), CLINIC, 13.0588, 80.2521,
               "Cathedral Road, Gopalapuram", "Chennai", "+91 44 2811 0030", _hours("08:00", "22:00")),
    ]),
]
# (schedule, minutes, holder): a week of free Slots each, a few hundred in all
SLOTS = [("demo-blood-test-schedule", 30, HOSPITAL), ("demo-cardiology-schedule", 30, HOSPITAL),
         ("demo-kothrud-gp-schedule", 30, "Organization/demo-kothrud"),
         ("demo-deccan-blood-test-schedule", 30, LAB)]


def held_by(ctx, organization: str):
    """The server writing on a hospital's behalf: what it seeds is held by that hospital."""
    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, default_custodian=organization))


def seed(ctx, today: datetime.date | None = None) -> dict:
    """Write what is missing and the coming week's Slots; {'resources': written, 'slots': created}."""
    written = 0
    for holder, resources in CITY:
        held = held_by(ctx, holder)
        for resource in resources:
            resource = json.loads(json.dumps(resource))
            found = ctx.repo.read(resource["resourceType"], resource["id"])
            if found is not None and not found.deleted:
                continue
            update_i.update(held, resource["resourceType"], resource["id"], resource)
            written += 1
    first = today or datetime.datetime.now(zoneinfo.ZoneInfo(TZ)).date()
    created = 0
    for schedule, minutes, holder in SLOTS:
        with ctx.forms():
            done = slots.generate(held_by(ctx, holder), schedule, first,
                                  first + datetime.timedelta(days=DAYS_AHEAD - 1), minutes, TZ)
        created += done["created"]
    return {"resources": written, "slots": created}
