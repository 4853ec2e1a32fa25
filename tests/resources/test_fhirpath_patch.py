"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): the official test cases
(tests/data/fhirpath-patch/, FHIR/fhir-test-cases r4/patch/fhir-patch-tests.xml) run through PATCH on
both stores, table-driven; then media types, errors, limits and Bundle entries."""
from __future__ import annotations

import contextlib
import copy
import json
import os
import xml.etree.ElementTree as ET

import pytest

from fhirserver.definitions import load_json
from fhirserver.interactions import patch as patch_mod
from fhirserver.interactions.fhirpath_patch import FhirpathPatch
from tests.conftest import FHIR_JSON, patient, post

CASES_FILE = os.path.join(os.path.dirname(__file__), "..", "data", "fhirpath-patch", "fhir-patch-tests.xml")
FHIR = "{http://hl7.org/fhir}"
XHTML = "http://www.w3.org/1999/xhtml"


# ---- FHIR XML -> FHIR JSON, driven by the official R4 JSON schema -------------------------------

def _definitions():
    return load_json("fhir.schema.json")["definitions"]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def resource_json(el) -> dict:
    rtype = _local(el.tag)
    out = {"resourceType": rtype}
    _fill(out, el, rtype)
    return out


def _primitive(raw: str, type_name: str):
    kind = _definitions()[type_name].get("type")
    if kind == "boolean":
        return raw == "true"
    if kind == "number":
        return int(raw) if type_name in ("integer", "positiveInt", "unsignedInt") else float(raw)
    return raw


def _type_of(prop: dict) -> str:
    """The definition name of a property; a primitive the schema writes inline has none: boolean,
    integer or decimal by its JSON type, else code (enumerations)."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if prop.get("type") == "boolean":
        return "boolean"
    if prop.get("type") == "number":
        return "decimal" if "." in prop.get("pattern", "") else "integer"
    return "code"


def _fill(out: dict, el, type_name: str) -> None:
    for attr in ("id", "url"):
        if el.get(attr) is not None and el.tag != f"{FHIR}{type_name}":
            out[attr] = el.get(attr)
    for child in el:
        if not isinstance(child.tag, str):         # comments
            continue
        name = _local(child.tag)
        if child.tag == f"{{{XHTML}}}div":
            div = copy.deepcopy(child)
            div.tail = None
            out["div"] = ET.tostring(div, encoding="unicode")
            continue
        prop = _definitions()[type_name]["properties"][name]
        many = prop.get("type") == "array"
        ctype = _type_of(prop.get("items") or prop)
        if ctype == "ResourceList":
            value, extra = resource_json(next(c for c in child if isinstance(c.tag, str))), None
        elif "properties" not in _definitions()[ctype]:          # a primitive: value attribute, id, extensions
            value = _primitive(child.get("value"), ctype) if child.get("value") is not None else None
            extra = {}
            _fill(extra, child, "Element")
            extra = extra or None
        else:
            value, extra = {}, None
            _fill(value, child, ctype)
        if many:
            out.setdefault(name, []).append(value)
            if extra is not None or f"_{name}" in out:
                under = out.setdefault(f"_{name}", [None] * (len(out[name]) - 1))
                under.append(extra)
        else:
            if value is not None:
                out[name] = value
            if extra is not None:
                out[f"_{name}"] = extra


def _cases():
    ET.register_namespace("", XHTML)
    root = ET.parse(CASES_FILE).getroot()
    out = []
    for case in root.iter("case"):
        first = {c.tag: next(x for x in c if isinstance(x.tag, str)) for c in case
                 if isinstance(c.tag, str) and c.tag in ("input", "diff", "output")}
        error = case.find("error")
        out.append(pytest.param(resource_json(first["input"]), resource_json(first["diff"]),
                                resource_json(first["output"]) if "output" in first else None,
                                error.get("msg") if error is not None else None,
                                id=case.get("name")))
    return out


CASES = _cases()


def test_every_official_case_is_read():
    assert len(CASES) == 33


def _comparable(resource: dict) -> dict:
    """The resource without what the server adds (meta, the UHID identifier), the narrative canonical."""
    r = copy.deepcopy(resource)
    r.pop("meta", None)
    r.pop("id", None)
    if "identifier" in r:
        r["identifier"] = [i for i in r["identifier"] if not i.get("system", "").endswith("/sid/uhid")]
        if not r["identifier"]:
            del r["identifier"]
    if "div" in r.get("text", {}):
        r["text"]["div"] = ET.canonicalize(r["text"]["div"], strip_text=True)
    return r


@pytest.mark.parametrize("given, diff, expected, error", CASES)
def test_official_case(client, given, diff, expected, error):
    rid = given.get("id", "case")
    r = client.put(f"/fhir/{given['resourceType']}/{rid}", json={**given, "id": rid},
                   headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201, r.json
    r = client.patch(f"/fhir/{given['resourceType']}/{rid}", data=json.dumps(diff),
                     headers={"Content-Type": FHIR_JSON})
    if error is not None:
        assert r.status_code == 422, r.json
        assert error in r.json["issue"][0]["diagnostics"]
        return
    assert r.status_code == 200, r.json
    assert _comparable(r.json) == _comparable(expected)
    assert _comparable(client.get(f"/fhir/{given['resourceType']}/{rid}").json) == _comparable(expected)


# ---- the interaction ----------------------------------------------------------------------------

def op(kind, path, **parts):
    out = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value":
            out.append({"name": "value", **value})
        else:
            out.append({"name": name, ("valueInteger" if isinstance(value, int) else "valueString"): value})
    return {"name": "operation", "part": out}


def params(*ops):
    return {"resourceType": "Parameters", "parameter": list(ops)}


def fhirpath_patch(client, pid, body, content_type=FHIR_JSON, **headers):
    return client.patch(f"/fhir/Patient/{pid}", data=json.dumps(body),
                        headers={"Content-Type": content_type, **headers})


@pytest.fixture
def asha(client):
    return post(client, patient(name=[{"use": "official", "family": "Sharma", "given": ["Asha"]},
                                      {"use": "nickname", "given": ["Ash"]}])).json["id"]


def test_paths_with_where_and_indexes(client, asha):
    r = fhirpath_patch(client, asha, params(
        op("add", "Patient.name.where(use='official')", name="given", value={"valueString": "Devi"}),
        op("replace", "Patient.name.where(use = 'nickname').given[0]", value={"valueString": "Ashu"}),
        op("replace", "Patient.birthDate", value={"valueDate": "1951-02-03"}),
        op("add", "Patient", name="active", value={"valueBoolean": True})))
    assert r.status_code == 200, r.json
    assert r.json["name"][0]["given"] == ["Asha", "Devi"] and r.json["name"][1]["given"] == ["Ashu"]
    assert r.json["birthDate"] == "1951-02-03" and r.json["active"] is True
    assert r.json["meta"]["versionId"] == "2" and r.headers["ETag"] == 'W/"2"'
    assert fhirpath_patch(client, asha, params(), **{"If-Match": 'W/"1"'}).status_code == 412


def test_content_types(client, asha):
    r = fhirpath_patch(client, asha, params(), content_type="application/xml")
    assert r.status_code == 415
    text = r.json["issue"][0]["diagnostics"]
    assert "application/json-patch+json" in text and "Parameters" in text and FHIR_JSON in text
    assert fhirpath_patch(client, asha, params(), content_type="text/plain").status_code == 415
    assert fhirpath_patch(client, asha, params(), content_type="application/json").status_code == 200
    assert fhirpath_patch(client, asha, [], content_type=FHIR_JSON).status_code == 400     # not a Parameters
    assert fhirpath_patch(client, asha, patient(), content_type=FHIR_JSON).status_code == 400


@pytest.mark.parametrize("body", [
    params({"name": "operation", "part": [{"name": "type", "valueCode": "jump"},
                                          {"name": "path", "valueString": "Patient"}]}),
    params({"name": "op", "part": []}),
    params(op("add", "Patient", value={"valueBoolean": True})),                # add without name
    params(op("replace", "Patient.birthDate")),                                 # replace without value
    params(op("insert", "Patient.name", value={"valueString": "x"})),           # insert without index
    params(op("move", "Patient.name", source=0)),                               # move without destination
    params(op("insert", "Patient.name", index=-1, value={"valueString": "x"})),
    params(op("delete", "Patient.name.where(")),                                # not FHIRPath
    params(op("add", "Patient", name="a.b", value={"valueString": "x"})),
    {"resourceType": "Parameters", "parameter": {"name": "operation"}},
])
def test_malformed_patches_are_400(client, asha, body):
    r = fhirpath_patch(client, asha, body)
    assert r.status_code == 400, r.json


@pytest.mark.parametrize("body", [
    params(op("replace", "Patient.gender", value={"valueCode": "male"})),       # nothing there to replace
    params(op("replace", "Patient.name.given", value={"valueString": "x"})),    # two elements
    params(op("add", "Patient", name="birthDate", value={"valueDate": "2000-01-01"})),   # single, present
    params(op("insert", "Patient.name", index=5, value={"valueString": "x"})),
    params(op("move", "Patient.name", source=0, destination=9)),
    params(op("add", "Patient", name="gender", value={"valueCode": "robot"})),  # an invalid resource
    params(op("replace", "Patient.id", value={"valueId": "other"})),            # id is not the patch's
    params(op("delete", "Patient")),
])
def test_patches_that_cannot_apply_or_make_an_invalid_resource_are_422(client, asha, body):
    r = fhirpath_patch(client, asha, body)
    assert r.status_code == 422, r.json
    assert client.get(f"/fhir/Patient/{asha}").json["meta"]["versionId"] == "1"


def test_limits_are_the_json_patch_limits(client, asha, monkeypatch):
    body = params(*[op("replace", "Patient.birthDate", value={"valueDate": "1951-01-01"})] * 4)
    monkeypatch.setattr(patch_mod, "MAX_OPERATIONS", 3)
    assert fhirpath_patch(client, asha, body).status_code == 413


def test_the_patched_resource_is_bounded_in_size(tmp_path, backend):
    from fhirserver import create_app
    from tests.conftest import make_settings
    c = create_app(make_settings(tmp_path, backend, max_body_bytes=20_000)).test_client()
    pid = post(c, patient(identifier=[{"value": "x" * 12_000}])).json["id"]
    body = params(op("add", "Patient", name="identifier", value={"valueIdentifier": {"value": "y" * 12_000}}))
    r = fhirpath_patch(c, pid, body)
    assert r.status_code == 422 and r.json["issue"][0]["code"] == "too-costly"
    assert "20000" in r.json["issue"][0]["diagnostics"]


def test_patches_are_applied_before_the_write_lock_like_json_patch(client, ctx, monkeypatch):
    """FHIRPath Patch goes through patch.prepare_patch, outside the store's write transaction."""
    pid = post(client, patient()).json["id"]
    state = {"inside": False, "applied_inside": []}
    original_tx, original_apply = ctx.store.transaction, FhirpathPatch.apply

    @contextlib.contextmanager
    def transaction(*a, **kw):
        with original_tx(*a, **kw) as tx:
            state["inside"] = True
            try:
                yield tx
            finally:
                state["inside"] = False

    def apply(self, *a, **kw):
        state["applied_inside"].append(state["inside"])
        return original_apply(self, *a, **kw)

    monkeypatch.setattr(ctx.store, "transaction", transaction)
    monkeypatch.setattr(FhirpathPatch, "apply", apply)
    r = fhirpath_patch(client, pid, params(op("replace", "Patient.birthDate", value={"valueDate": "1999-09-09"})))
    assert r.status_code == 200 and r.json["birthDate"] == "1999-09-09"
    for kind in ("transaction", "batch"):
        entry = {"resource": params(op("add", "Patient", name="active", value={"valueBoolean": kind == "batch"}))
                 if kind == "transaction" else params(op("replace", "Patient.active", value={"valueBoolean": True})),
                 "request": {"method": "PATCH", "url": f"Patient/{pid}"}}
        r = client.post("/fhir", json={"resourceType": "Bundle", "type": kind, "entry": [entry]},
                        headers={"Content-Type": FHIR_JSON})
        assert r.status_code == 200 and r.json["entry"][0]["response"]["status"].startswith("200"), r.json
    assert state["applied_inside"] == [False, False, False]
    assert client.get(f"/fhir/Patient/{pid}").json["active"] is True


def test_bundle_patch_entries(client, asha):
    entry = {"resource": params(op("replace", "Patient.birthDate", value={"valueDate": "1960-06-06"})),
             "request": {"method": "PATCH", "url": f"Patient/{asha}"}}
    bad = {"resource": params(op("replace", "Patient.gender", value={"valueCode": "male"})),
           "request": {"method": "PATCH", "url": f"Patient/{asha}"}}
    wrong = {"resource": patient(), "request": {"method": "PATCH", "url": f"Patient/{asha}"}}
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [entry, bad, wrong]},
                    headers={"Content-Type": FHIR_JSON})
    assert [e["response"]["status"][:3] for e in r.json["entry"]] == ["200", "422", "400"]
    assert "FHIRPath Patch" in r.json["entry"][2]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert client.get(f"/fhir/Patient/{asha}").json["birthDate"] == "1960-06-06"
    entry["resource"] = params(op("add", "Patient", name="active", value={"valueBoolean": False}))
    cond = {"resource": params(op("replace", "Patient.active", value={"valueBoolean": True})),
            "request": {"method": "PATCH", "url": f"Patient?_id={asha}"}}
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.json
    assert client.get(f"/fhir/Patient/{asha}").json["active"] is False
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [cond]},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.json
    assert client.get(f"/fhir/Patient/{asha}").json["active"] is True
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [bad]},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 422
