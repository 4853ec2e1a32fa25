"""The terminology build: narrative stripped, one gzipped JSON array per source, the LOINC fragment
carrying its licence notice; and the shipped files load through the catalogue."""
from __future__ import annotations

import gzip
import json

from fhirserver.conformance import catalogue
from fhirserver.terminology import build


def test_build_strips_narrative_and_writes_the_loinc_and_snomed_fragments(tmp_path):
    src, out = tmp_path / "r4", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    vital = {"resourceType": "ValueSet", "url": build.VITAL_SIGNS[0], "status": "active",
             "text": {"status": "generated", "div": "<div>x</div>"},
             "compose": {"include": [{"system": build.LOINC, "concept": [{"code": "8867-4", "display": "Heart rate"}]}]}}
    cs = {"resourceType": "CodeSystem", "url": "http://x.test/cs", "status": "active", "content": "complete",
          "text": {"status": "generated", "div": "<div>y</div>"}}
    for name, _ in build.SOURCES:
        (src / name).write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": vital},
                                                                                {"resource": cs}]}))
    written = build.build(str(src), str(out), None, None)
    assert len(written) == len(build.SOURCES) + 2
    shipped = json.loads(gzip.decompress((out / "hl7-r4-valuesets.json.gz").read_bytes()))
    assert [r["resourceType"] for r in shipped] == ["ValueSet", "CodeSystem"] and all("text" not in r for r in shipped)
    (loinc,) = json.loads(gzip.decompress((out / "loinc-fragment.json.gz").read_bytes()))
    assert loinc["content"] == "fragment" and "Regenstrief" in loinc["copyright"]
    codes = {c["code"]: c.get("display") for c in loinc["concept"]}
    assert codes["8867-4"] == "Heart rate" and codes["30980-7"] == "Date vaccine due"
    (snomed,) = json.loads(gzip.decompress((out / "snomed-fragment.json.gz").read_bytes()))
    assert snomed["content"] == "fragment" and "SNOMED International" in snomed["copyright"]
    assert {c["code"]: c.get("display") for c in snomed["concept"]}["396550006"] == "Blood test"   # demo city
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    build.build(str(src), str(out), None, None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first          # the same input builds the same bytes


def test_shipped_terminology_is_in_the_catalogue():
    loinc = catalogue.shipped("CodeSystem", "http://loinc.org")
    assert loinc["content"] == "fragment" and "Regenstrief" in loinc["copyright"]
    snomed = catalogue.shipped("CodeSystem", "http://snomed.info/sct")
    assert snomed["content"] == "fragment" and "SNOMED International" in snomed["copyright"]
    assert catalogue.shipped("ConceptMap", "http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v3")
    assert catalogue.shipped("CodeSystem", "http://terminology.hl7.org/CodeSystem/v3-ActCode")
    assert catalogue.shipped("CodeSystem", "http://terminology.hl7.org/CodeSystem/v2-0203")
    assert all("text" not in r for r in catalogue.all_of("ValueSet"))
