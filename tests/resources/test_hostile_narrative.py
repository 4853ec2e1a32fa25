"""Active content in a narrative (http://hl7.org/fhir/R4/narrative.html#xhtml, invariant txt-1 of the base
Narrative type) is refused on every write path, whatever profile the resource claims: 400, nothing stored.
A script stored in Narrative.div runs in every viewer that displays the narrative (stored XSS)."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, data_versions, patient, post, put

NS = 'xmlns="http://www.w3.org/1999/xhtml"'
HOSTILE = {
    "script": f"<div {NS}><script>alert(document.cookie)</script>Asha</div>",
    "event handler": f'<div {NS}><p onmouseover="alert(1)">Asha</p></div>',
    "javascript link": f'<div {NS}><a href="javascript:alert(1)">Asha</a></div>',
    "image with onerror": f'<div {NS}><img src="x" onerror="alert(1)"/></div>',
    "iframe": f'<div {NS}><iframe src="https://evil.test/"></iframe>Asha</div>',
    "form": f'<div {NS}><form action="https://evil.test/"><input name="pw"/></form></div>',
    "object": f'<div {NS}><object data="https://evil.test/x.swf"></object>Asha</div>',
    "no XHTML namespace": "<div><b>Asha</b></div>",
    "not a div": f"<p {NS}>Asha</p>",
    "entity declaration": f'<!DOCTYPE div [<!ENTITY x "xx">]><div {NS}>&x;</div>',
}


def _text(div: str) -> dict:
    return {"status": "generated", "div": div}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_create_with_hostile_narrative_is_400_and_stores_nothing(client, ctx, kind):
    before = data_versions(ctx)
    r = post(client, patient(text=_text(HOSTILE[kind])))
    assert r.status_code == 400, r.data[:300]
    issue = r.json["issue"][0]
    assert issue["code"] == "invariant" and "txt-1" in issue["diagnostics"]
    assert issue["expression"] == ["Patient.text.div"]
    assert data_versions(ctx) == before


def test_update_contained_and_transaction_paths_refuse_it_too(client, ctx):
    script = HOSTILE["script"]
    p = post(client, patient()).json
    before = data_versions(ctx)
    r = put(client, {**p, "text": _text(script)})
    assert r.status_code == 400 and "txt-1" in r.json["issue"][0]["diagnostics"]
    contained = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                 "contained": [{"resourceType": "Patient", "id": "p1", "text": _text(script)}]}
    r = post(client, contained)
    assert r.status_code == 400 and r.json["issue"][0]["expression"] == ["Observation.contained[0].text.div"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(text=_text(script)), "request": {"method": "POST", "url": "Patient"}}]}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400 and "Bundle.entry[1]" in r.json["issue"][0]["diagnostics"]
    patch = [{"op": "add", "path": "/text", "value": _text(script)}]
    r = client.patch(f"/fhir/Patient/{p['id']}", json=patch, headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 422
    assert data_versions(ctx) == before
    assert client.get(f"/fhir/Patient/{p['id']}").json == p


def test_plain_formatting_is_kept(client):
    div = (f'<div {NS}><p>Asha <b>Sharma</b>&nbsp;<a href="https://example.org/a">chart</a></p>'
           '<table border="1"><tr><td colspan="2" style="color: red">x</td></tr></table>'
           '<img src="#photo" alt="photo"/></div>')
    r = post(client, patient(text=_text(div)))
    assert r.status_code == 201 and r.json["text"]["div"] == div
