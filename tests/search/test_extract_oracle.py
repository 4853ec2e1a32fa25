"""An oracle for write-time index extraction (fhirserver/search/extract.py) that shares no code with it.

For a fixed sample of the HL7 examples (SAMPLE: 60 resources of 59 resource types) the expected index
values of every supported token, string, reference, date and uri parameter are computed with
fhirpathpy straight from the official SearchParameter expressions (profiles/search-parameters.json;
parameters listed in profiles/search-unsupported.json and the engine's own _id/_list/_has left
out), then mapped to index values by the rules of search.html written out again here, and compared
with the rows `extract(resource, BASE)` gives for that parameter's key ("Type.code").

fhirpathpy, and how the oracle helps it (each an evaluation matter, not a mapping of values):
- resolve() is not implemented by fhirpathpy: it is supplied (userInvocationTable) for literal
  references only: "Type/id" (any base) resolves to a stub {"resourceType": Type, "id": id}, so that
  `where(resolve() is Patient)` tests the reference's type as the spec means; "#id" resolves to the
  contained resource. Logical references (identifier only) resolve to nothing.
- "Resource.x" / "DomainResource.x" expressions (_lastUpdated, _profile, _tag, _security ...)
  select nothing in fhirpathpy on a concrete resource (it does not apply the type hierarchy to a
  leading type name): the oracle writes the resource's own type instead.
- `as` on a collection of several items is an error in FHIRPath (fhirpathpy raises, as the spec
  says); several R4 expressions do that ("(Medication.ingredient.item as CodeableConcept)"). Only
  then the oracle evaluates the expression again with `(X as T)` written `X.ofType(T)`, the reading
  R5 adopted for these expressions.

The comparison per kind (the value space of the index, not its exact columns):
- token: the set of (system, code) pairs (search.html#token): Coding -> (system, code);
  CodeableConcept -> each coding's; Identifier -> (system, value); ContactPoint -> ("", value) (its
  system - phone, email ... - is not a token system); code/string/uri/id/boolean -> ("", value).
  Rows that carry only a text (CodeableConcept.text, for :text) are left out on the server's side.
  A missing system is "" on both sides.
- string: the set of exact strings; HumanName gives family, given, prefix, suffix, text and Address
  line, city, district, state, postalCode, country, text (search.html#string). Each row's folded
  column must also equal the exact value case-folded with accents stripped (NFKD, combining marks
  removed): the normalisation is checked, by a separate implementation.
- reference: the set of (type, id, url): a relative "Type/id" or one under the server's base is
  (Type, id, None) ("/_history/n" dropped); anything else (another server, a contained "#id", a
  canonical with its "|version" cut) is (None, None, the reference).
- date: the set of range starts in UTC microseconds: a date/dateTime/instant from the start of its
  stated precision (a time without an offset, and a date, taken as UTC, as the server documents);
  Period from its start (the lowest instant if it has none); Timing from its earliest event or
  boundsPeriod start. The range ends are left to tests/search/kinds (they depend on precision rules
  the spec leaves to the server).
- uri: the set of strings.
Composite, number, quantity and special parameters are not compared here.

Differences found on the sample (and on all 782 examples) and what they are:
- LEGITIMATE: CarePlan.activity-date on CarePlan-f001 (and -f002, -f003): activity.detail.scheduled
  is a scheduledString that reads like a dateTime; a string is not a date type (search.html#date:
  date, dateTime, instant, Period, Timing), so no row is right. fhirpathpy returns bare JSON values
  and cannot tell the oracle that the value is a string.
- FIXED: InsurancePlan.name. Its official expression is "name | alias", with no type prefix; the
  extractor yielded no InsurancePlan.name rows (GET InsurancePlan?name=foo found nothing). A part that
  starts with an element name is now read as relative to the resource (search/fhirpath.py), and
  test_expressions_without_a_type_prefix_are_indexed keeps it so.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import unicodedata

import fhirpathpy
import pytest
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from fhirserver.search.extract import extract
from tests.conftest import EXAMPLES_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILES = os.path.join(ROOT, "profiles")
BASE = "http://fhir.test/fhir"

SAMPLE = [
    "Account-ewg.json", "AdverseEvent-example.json", "AppointmentResponse-example.json", "Binary-example.json",
    "BodyStructure-fetus.json", "CarePlan-f001.json", "CareTeam-example.json", "ChargeItemDefinition-device.json",
    "ClaimResponse-R3500.json", "CommunicationRequest-example.json", "Composition-example.json", "Condition-f202.json",
    "Contract-C-123.json", "CoverageEligibilityRequest-52345.json", "Device-example.json", "DeviceRequest-example.json",
    "DiagnosticReport-102.json", "EffectEvidenceSynthesis-example.json", "Encounter-example.json",
    "EnrollmentResponse-ER2500.json", "EventDefinition-example.json", "ExampleScenario-example.json",
    "Flag-example-encounter.json", "GraphDefinition-example.json", "Group-101.json", "ImagingStudy-example-xr.json",
    "Immunization-example.json", "InsurancePlan-example.json", "Invoice-example.json",
    "Library-library-cms146-example.json", "List-current-allergies.json", "MeasureReport-hiv-indicators.json",
    "Medication-med0301.json", "MedicationDispense-meddisp008.json", "MedicationStatement-example001.json",
    "MedicinalProductAuthorization-example.json", "MedicinalProductIngredient-example.json",
    "MedicinalProductPackaged-example.json", "MedicinalProductUndesirableEffect-example.json",
    "MolecularSequence-breastcancer.json", "Observation-10minute-apgar-score.json", "Observation-blood-pressure.json",
    "OperationDefinition-ActivityDefinition-apply.json", "OperationOutcome-101.json",
    "OrganizationAffiliation-example.json", "Patient-example.json", "Person-example.json", "Practitioner-f001.json",
    "Procedure-HCBS.json", "Questionnaire-3141.json", "QuestionnaireResponse-3141.json",
    "ResearchDefinition-example.json", "ResearchSubject-example.json", "RiskEvidenceSynthesis-example.json",
    "Slot-1.json", "StructureMap-example.json", "Substance-f205.json", "SubstanceSpecification-example.json",
    "Task-example1.json", "TestScript-testscript-example-history.json",
]

# (example, parameter key): why the index rightly differs from the bare expression's values
LEGITIMATE = {
    ("CarePlan-f001.json", "CarePlan.activity-date"):
        "scheduledString is a string, not a date type (search.html#date); fhirpathpy does not say it is one",
}
def _load(name: str) -> dict:
    with open(name, encoding="utf-8") as f:
        return json.load(f)


RESOURCE_TYPES = set(_load(os.path.join(PROFILES, "fhir.schema.json"))["discriminator"]["mapping"])
SEARCH_PARAMETERS = [e["resource"] for e in _load(os.path.join(PROFILES, "search-parameters.json"))["entry"]]
UNSUPPORTED = {r["url"] for r in _load(os.path.join(PROFILES, "search-unsupported.json"))["parameters"]}
ENGINE = {"_id", "_list", "_has"}
COMPARED = ("token", "string", "reference", "date", "uri")


def parameters(rtype: str):
    """The official parameters of rtype this server supports, with an expression."""
    for sp in SEARCH_PARAMETERS:
        if sp["url"] in UNSUPPORTED or not sp.get("expression") or sp["code"] in ENGINE or sp["type"] not in COMPARED:
            continue
        bases = sp.get("base", ())
        if rtype in bases or "Resource" in bases or (
                "DomainResource" in bases and rtype not in ("Bundle", "Binary", "Parameters")):
            yield sp


# ---- FHIRPath through fhirpathpy ----------------------------------------------------------------

LITERAL = re.compile(r"^(?:(?P<base>.*)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
AS_OPERATOR = re.compile(r"\(([^()]+?) as ([A-Za-z]+)\)")
_contained: list[list] = []


def _resolve(inputs):
    out = []
    for item in inputs:
        item = item.data if isinstance(item, ResourceNode) else item
        ref = item.get("reference") if isinstance(item, dict) else item if isinstance(item, str) else None
        if not isinstance(ref, str):
            continue
        if ref.startswith("#"):
            out += [ResourceNode.create_node(c) for c in _contained[-1] if c.get("id") == ref[1:]]
            continue
        m = LITERAL.match(ref)
        if m and m.group("type") in RESOURCE_TYPES:
            out.append(ResourceNode.create_node({"resourceType": m.group("type"), "id": m.group("id")}))
    return out


OPTIONS = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}


def evaluate(resource: dict, expression: str) -> list:
    expression = re.sub(r"(?<![.\w])(Resource|DomainResource)\.", resource["resourceType"] + ".", expression)
    _contained.append(resource.get("contained") or [])
    try:
        try:
            return fhirpathpy.evaluate(copy.deepcopy(resource), expression, {}, models["r4"], OPTIONS)
        except Exception as e:      # fhirpathpy raises a bare Exception
            if "singleton on left side of 'as'" not in str(e):
                raise
            return fhirpathpy.evaluate(copy.deepcopy(resource), AS_OPERATOR.sub(r"\1.ofType(\2)", expression), {},
                                       models["r4"], OPTIONS)
    finally:
        _contained.pop()


# ---- search.html's value rules, written out again ------------------------------------------------

CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}
NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                  r"(Z|[+-]\d{2}:\d{2})?)?)?)?")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
LOWEST = -(2 ** 62)


def tokens(values) -> set:
    out = set()
    for v in values:
        if isinstance(v, bool):
            out.add(("", "true" if v else "false"))
        elif isinstance(v, (str, int)):
            out.add(("", str(v)))
        elif isinstance(v, dict):
            if "coding" in v:
                out |= {(c.get("system") or "", c["code"]) for c in v["coding"] if "code" in c}
            elif "value" in v and v.get("system") in CONTACT_SYSTEMS:
                out.add(("", str(v["value"])))
            elif "value" in v:
                out.add((v.get("system") or "", str(v["value"])))
            elif "code" in v:
                out.add((v.get("system") or "", v["code"]))
    return out


def strings(values) -> set:
    out = set()
    for v in values:
        if isinstance(v, str):
            out.add(v)
        elif isinstance(v, dict):
            for part in NAME_PARTS + ADDRESS_PARTS:
                x = v.get(part)
                out |= {s for s in x if isinstance(s, str)} if isinstance(x, list) else {x} if isinstance(x, str) else set()
    return out


def references(values) -> set:
    out = set()
    for v in values:
        ref = v.get("reference") if isinstance(v, dict) else v.split("|")[0] if isinstance(v, str) else None
        if not isinstance(ref, str) or not ref:
            continue
        m = LITERAL.match(ref)
        if m and m.group("type") in RESOURCE_TYPES and m.group("base") in (None, BASE):
            out.add((m.group("type"), m.group("id"), None))
        else:
            out.add((None, None, ref))
    return out


def start_of(text) -> int | None:
    m = DATE.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    t = dt.datetime(int(y), int(mo or 1), int(d or 1), int(hh or 0), int(mi or 0), int(ss or 0),
                    int((frac or "0")[:6].ljust(6, "0")), tzinfo=dt.timezone.utc)
    if tz and tz != "Z":
        t -= (1 if tz[0] == "+" else -1) * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def dates(values) -> set:
    out = set()
    for v in values:
        if isinstance(v, str):
            starts = [start_of(v)]
        elif isinstance(v, dict) and ("start" in v or "end" in v):
            s, e = start_of(v.get("start")), start_of(v.get("end"))
            starts = [] if s is None and e is None else [LOWEST if s is None else min(x for x in (s, e) if x is not None)]
        elif isinstance(v, dict) and ("event" in v or "repeat" in v):
            starts = [start_of(x) for x in v.get("event") or ()]
            bounds = (v.get("repeat") or {}).get("boundsPeriod") or {}
            if bounds:
                starts += [start_of(bounds["start"]) if "start" in bounds else LOWEST, start_of(bounds.get("end"))]
            starts = [min(x for x in starts if x is not None)] if any(x is not None for x in starts) else []
        else:
            starts = []
        out |= {x for x in starts if x is not None}
    return out


def uris(values) -> set:
    return {v if isinstance(v, str) else v["reference"] for v in values
            if isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("reference"), str))}


def fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).casefold()


EXPECTED = {"token": tokens, "string": strings, "reference": references, "date": dates, "uri": uris}
# what one index row of each kind holds, for the comparison: rows are (key, group, *columns)
FROM_ROW = {"token": lambda r: (r[2], r[3]) if r[3] is not None else None,     # text-only rows left out
            "string": lambda r: r[3], "reference": lambda r: (r[2], r[3], r[4]), "date": lambda r: r[2],
            "uri": lambda r: r[2]}


def compare(name: str) -> dict:
    """{parameter key: (expected by the oracle, held by the index)} for every compared parameter."""
    resource = _load(os.path.join(EXAMPLES_DIR, name))
    rows = extract(copy.deepcopy(resource), BASE)
    out = {}
    for sp in parameters(resource["resourceType"]):
        key, kind = f"{resource['resourceType']}.{sp['code']}", sp["type"]
        expected = EXPECTED[kind](evaluate(resource, sp["expression"]))
        held = {FROM_ROW[kind](r) for r in rows.get(kind, ()) if r[0] == key} - {None}
        out[key] = (expected, held)
        if kind == "string":
            assert all(r[2] == fold(r[3]) for r in rows.get("string", ()) if r[0] == key), (name, key)
    return out


@pytest.mark.parametrize("name", SAMPLE)
def test_the_index_holds_what_the_official_expressions_select(name):
    found = compare(name)
    differ = {key: {"oracle only": sorted(map(str, e - h)), "index only": sorted(map(str, h - e))}
              for key, (e, h) in found.items()
              if e != h and (name, key) not in LEGITIMATE}
    assert differ == {}, f"{name}: {differ}"


def test_the_sample_exercises_every_kind():
    """The comparison is not vacuous: each kind is compared on non-empty values many times."""
    counts = dict.fromkeys(COMPARED, 0)
    kinds = {f"{t}.{sp['code']}": sp["type"] for t in RESOURCE_TYPES for sp in parameters(t)}
    for name in SAMPLE:
        for key, (expected, _held) in compare(name).items():
            counts[kinds[key]] += bool(expected)
    assert counts["uri"] >= 5 and all(n >= 30 for k, n in counts.items() if k != "uri"), counts


@pytest.mark.parametrize("name, key", sorted(LEGITIMATE))
def test_legitimate_differences_are_still_what_they_were(name, key):
    """scheduledString "2011-06-27T09:30:10+01:00": the oracle sees a date-like value, the index none."""
    expected, held = compare(name)[key]
    assert expected and held == set()


@pytest.mark.parametrize("name, key", [("InsurancePlan-example.json", "InsurancePlan.name")])
def test_expressions_without_a_type_prefix_are_indexed(name, key):
    """'name | alias' (no type prefix) was not indexed at all."""
    expected, held = compare(name)[key]
    assert expected and expected == held
