"""Snapshot generation (fhirserver/validation/profile/snapshot.py) against published snapshots.

Oracles: US Core 7.0.0 us-core-smokingstatus (published with its differential; tests/data/us-core), and US Core 5.0.1
us-core-patient and us-core-blood-pressure, published with a snapshot only: their differential is derived
here from that snapshot (what differs from the base element, or from the type's element for children the
base does not list), so the generator must rebuild everything else: the base's elements, the type's
children under identifier/name/telecom/address, slices and their children, extension slicing.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fhirserver.conformance import catalogue
from fhirserver.validation.profile.snapshot import EXTENSION_SLICING, SnapshotError, generate

SMOKING = catalogue.read_file(str(Path(__file__).resolve().parents[2] / "data" / "us-core"
                                  / "us-core-smokingstatus-7.0.0.json.gz"))[0]

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"
COMPARED = ("path", "sliceName", "min", "max", "mustSupport", "slicing")


def resolve(rtype, canonical):
    url, _, version = canonical.partition("|")
    return catalogue.shipped(rtype, url, version or None)


def _values(e: dict) -> dict:
    return {k: v for k, v in e.items() if k.startswith(("fixed", "pattern"))}


def _binding(e: dict):
    b = e.get("binding")
    return (b.get("strength"), b.get("valueSet")) if b else None


def _types(e: dict):
    return [(t["code"], tuple(t.get("profile") or ()), tuple(t.get("targetProfile") or ())) for t in e.get("type") or ()]


def _slicing(e: dict):
    s = e.get("slicing")
    return (s["discriminator"], s.get("rules"), bool(s.get("ordered"))) if s else None


def _signature(e: dict) -> dict:
    return {"id": e["id"], **{k: e.get(k) for k in COMPARED}, "slicing": _slicing(e), "values": _values(e),
            "binding": _binding(e),
            "constraints": sorted(c["key"] for c in e.get("constraint") or ()), "types": _types(e)}


def _counterpart(e: dict, by_id: dict, published: dict) -> dict | None:
    """The element the published one constrains: the base's, the sliced element, or the type's element."""
    if e["id"] in by_id:
        return by_id[e["id"]]
    segments = e["id"].split(".")
    published_by_id = {x["id"]: x for x in published["snapshot"]["element"]}
    if ":" in segments[-1]:
        return published_by_id[".".join(segments[:-1] + [segments[-1].split(":")[0]])]
    unsliced = ".".join(s.split(":")[0] for s in segments)
    if unsliced != e["id"] and unsliced in published_by_id:    # a slice's child: the sliced element's child
        return published_by_id[unsliced]
    for n in range(len(segments) - 1, 0, -1):
        parent = next((x for x in published["snapshot"]["element"] if x["id"] == ".".join(segments[:n])), None)
        if parent is not None and len(parent.get("type") or ()) == 1:
            type_sd = resolve("StructureDefinition", (parent["type"][0].get("profile") or
                                                      [CORE + parent["type"][0]["code"]])[0])
            want = type_sd["snapshot"]["element"][0]["id"] + "." + ".".join(segments[n:])
            return next((x for x in type_sd["snapshot"]["element"] if x["id"] == want), None)
    return None


def derived_differential(published: dict, base_url: str | None = None) -> dict:
    base = resolve("StructureDefinition", base_url or published["baseDefinition"])
    by_id = {e["id"]: e for e in base["snapshot"]["element"]}
    diff = []
    for e in published["snapshot"]["element"]:
        ref = _counterpart(e, by_id, published)
        assert ref is not None, e["id"]
        changed = {k: copy.deepcopy(v) for k, v in e.items()
                   if k not in ("id", "path", "base", "constraint") and ref.get(k) != v}
        known = {c["key"] for c in ref.get("constraint") or ()}
        added = [c for c in e.get("constraint") or () if c["key"] not in known]
        if added:
            changed["constraint"] = copy.deepcopy(added)
        if changed.get("slicing") == EXTENSION_SLICING and e["path"].endswith("xtension"):
            del changed["slicing"]          # the default the generator must supply
        if changed or e.get("sliceName"):
            diff.append({"id": e["id"], "path": e["path"], **changed})
    sd = {k: v for k, v in published.items() if k != "snapshot"}
    sd["differential"] = {"element": diff}
    sd["baseDefinition"] = base_url or published["baseDefinition"]
    return sd


# us-core-blood-pressure's base, us-core-vital-signs, is not shipped: its differential is taken over Observation
@pytest.mark.parametrize("name, base", [("us-core-smokingstatus", None), ("us-core-patient", "published"),
                                        ("us-core-blood-pressure", CORE + "Observation")])
def test_regenerated_snapshot_equals_published(name, base):
    published = SMOKING if name == "us-core-smokingstatus" else catalogue.shipped("StructureDefinition", US_CORE + name)
    if base is None:
        sd = {k: v for k, v in published.items() if k != "snapshot"}
    else:
        sd = derived_differential(published, None if base == "published" else base)
    made = generate(sd, resolve)
    assert "snapshot" not in sd
    want = [_signature(e) for e in published["snapshot"]["element"]]
    got = [_signature(e) for e in made["snapshot"]["element"]]
    assert [w["id"] for w in want] == [g["id"] for g in got]
    for w, g in zip(want, got, strict=True):
        assert w == g, w["id"]


def test_the_published_patient_needs_the_type_children_and_slices():
    """The derived differential leaves out what the generator must supply itself."""
    sd = derived_differential(catalogue.shipped("StructureDefinition", US_CORE + "us-core-patient"))
    ids = {e["id"] for e in sd["differential"]["element"]}
    assert "Patient.identifier.system" in ids and "Patient.identifier.use" not in ids
    assert "Patient.extension:race" in ids and "Patient.extension" not in ids
    made = {e["id"]: e for e in generate(sd, resolve)["snapshot"]["element"]}
    assert made["Patient.identifier.use"]["base"]["path"] == "Identifier.use"
    assert made["Patient.extension"]["slicing"]["discriminator"] == [{"type": "value", "path": "url"}]
    assert made["Patient.extension:race"]["type"][0]["profile"] == [US_CORE + "us-core-race"]


def _patient_profile(*elements: dict) -> dict:
    return {"resourceType": "StructureDefinition", "url": "https://example.org/p", "kind": "resource",
            "type": "Patient", "derivation": "constraint", "baseDefinition": CORE + "Patient",
            "differential": {"element": [{"id": "Patient", "path": "Patient"}, *elements]}}


def test_named_slice_children_come_from_the_type():
    sd = _patient_profile(
        {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1,
         "slicing": {"discriminator": [{"type": "pattern", "path": "system"}], "rules": "open"}},
        {"id": "Patient.identifier:uhid", "path": "Patient.identifier", "sliceName": "uhid", "min": 1, "max": "1",
         "patternIdentifier": {"system": "https://example.org/uhid"}},
        {"id": "Patient.identifier:uhid.value", "path": "Patient.identifier.value", "min": 1},
        {"id": "Patient.extension:nationality", "path": "Patient.extension", "sliceName": "nationality",
         "type": [{"code": "Extension", "profile": [CORE + "patient-nationality"]}]},
        {"id": "Patient.deceasedBoolean", "path": "Patient.deceasedBoolean", "fixedBoolean": False},
        {"id": "Patient.contact.name.family", "path": "Patient.contact.name.family", "min": 1},
        {"id": "Patient.gender", "path": "Patient.gender", "constraint": [
            {"key": "x-1", "severity": "error", "expression": "true", "human": "always"}]})
    made = generate(sd, resolve)["snapshot"]["element"]
    ids = [e["id"] for e in made]
    by_id = {e["id"]: e for e in made}
    base_ids = [e["id"] for e in resolve("StructureDefinition", CORE + "Patient")["snapshot"]["element"]]
    assert set(base_ids) - {"Patient.deceased[x]"} <= set(ids)
    start = ids.index("Patient.identifier:uhid")
    assert ids[start - 1] == "Patient.identifier" and ids[start + 1:start + 9] == [
        "Patient.identifier:uhid." + c for c in ("id", "extension", "use", "type", "system", "value", "period",
                                                  "assigner")]
    assert ids[start + 9] == "Patient.active"
    uhid = by_id["Patient.identifier:uhid"]
    assert (uhid["min"], uhid["max"], uhid["patternIdentifier"]) == (1, "1", {"system": "https://example.org/uhid"})
    assert by_id["Patient.identifier:uhid.value"]["min"] == 1
    assert by_id["Patient.identifier:uhid.value"]["path"] == "Patient.identifier.value"
    assert by_id["Patient.identifier:uhid.system"]["base"]["path"] == "Identifier.system"
    assert by_id["Patient.identifier"]["slicing"]["discriminator"] == [{"type": "pattern", "path": "system"}]
    assert by_id["Patient.extension"]["slicing"]["rules"] == "open"
    assert by_id["Patient.extension:nationality"]["type"][0]["profile"] == [CORE + "patient-nationality"]
    renamed = by_id["Patient.deceasedBoolean"]
    assert renamed["path"] == "Patient.deceasedBoolean" and renamed["type"] == [{"code": "boolean"}]
    assert renamed["fixedBoolean"] is False
    assert by_id["Patient.contact.name.family"]["min"] == 1        # HumanName's children under contact.name
    gender = by_id["Patient.gender"]["constraint"]
    assert [c["key"] for c in gender] == ["ele-1", "x-1"] and gender[1]["source"] == "https://example.org/p"


def test_a_differential_without_ids_names_elements_by_path_and_slice():
    with_ids = _patient_profile(
        {"id": "Patient.identifier", "path": "Patient.identifier",
         "slicing": {"discriminator": [{"type": "pattern", "path": "system"}], "rules": "open"}},
        {"id": "Patient.identifier:a", "path": "Patient.identifier", "sliceName": "a", "min": 1},
        {"id": "Patient.identifier:a.value", "path": "Patient.identifier.value", "min": 1},
        {"id": "Patient.identifier:b", "path": "Patient.identifier", "sliceName": "b", "max": "1"},
        {"id": "Patient.identifier:b.system", "path": "Patient.identifier.system", "fixedUri": "https://b"})
    without = copy.deepcopy(with_ids)
    for e in without["differential"]["element"]:
        del e["id"]
    made = generate(without, resolve)["snapshot"]["element"]
    assert made == generate(with_ids, resolve)["snapshot"]["element"]
    by_id = {e["id"]: e for e in made}
    assert by_id["Patient.identifier:a.value"]["min"] == 1 and by_id["Patient.identifier:b.system"]["fixedUri"]
    assert "fixedUri" not in by_id["Patient.identifier:a.system"]


def test_content_reference_children_and_profile_on_profile():
    sd = {"resourceType": "StructureDefinition", "url": "https://example.org/q", "type": "Questionnaire",
          "derivation": "constraint", "baseDefinition": CORE + "Questionnaire",
          "differential": {"element": [{"id": "Questionnaire.item.item.linkId", "path": "Questionnaire.item.item.linkId",
                                        "maxLength": 10}]}}
    by_id = {e["id"]: e for e in generate(sd, resolve)["snapshot"]["element"]}
    assert by_id["Questionnaire.item.item.linkId"]["maxLength"] == 10
    assert by_id["Questionnaire.item.item.text"]["base"]["path"] == "Questionnaire.item.text"
    # a profile on a profile whose snapshot is not there yet: the base's is generated first
    child = _patient_profile({"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1})
    child["baseDefinition"] = "https://example.org/p"
    parent = _patient_profile({"id": "Patient.gender", "path": "Patient.gender", "min": 1})

    def chained(rtype, canonical):
        return parent if canonical == "https://example.org/p" else resolve(rtype, canonical)
    by_id = {e["id"]: e for e in generate(child, chained)["snapshot"]["element"]}
    assert by_id["Patient.gender"]["min"] == 1 and by_id["Patient.birthDate"]["min"] == 1


@pytest.mark.parametrize("element", [
    {"id": "Patient.nonsense", "path": "Patient.nonsense"},
    {"id": "Patient.deceasedCodeableConcept", "path": "Patient.deceasedCodeableConcept"},
    {"id": "Patient.deceased[x].value", "path": "Patient.deceased[x].value"},
])
def test_an_element_the_base_lacks_is_refused(element):
    with pytest.raises(SnapshotError):
        generate(_patient_profile(element), resolve)


def test_an_unknown_base_is_refused():
    sd = _patient_profile()
    sd["baseDefinition"] = "https://example.org/unknown"
    with pytest.raises(SnapshotError):
        generate(sd, resolve)
