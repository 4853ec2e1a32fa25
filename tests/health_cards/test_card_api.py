"""Health cards through the server: issued by Patient/[id]/$health-card, checked by
$verify-health-card, by an independent JWS library and an independent QR decoder."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zlib

import jwt
import pytest
import zxingcpp
from PIL import Image

from fhirserver.health_cards import credential, jws
from fhirserver.health_cards.issuer_keys import IssuerKeys
from fhirserver.uhid import number
from tests._uhid import TEST_SYSTEM, uhid_for, uhid_in
from tests.conftest import patient, post
from tests.health_cards._cards import FakeStore

BASE = "http://fhir.test/fhir"
CVX = "http://hl7.org/fhir/sid/cvx"
# the card-issued AuditEvents (fhirserver/audit.py) by their subtype: every request also leaves BALP AuditEvents
ISSUED = f"{BASE}/CodeSystem/medport-audit|health-card"


@pytest.fixture
def asha(client):
    p = post(client, patient(identifier=[{"system": "http://uidai.gov.in/aadhaar", "value": "2345 6789 0123"}],
                             telecom=[{"system": "phone", "value": "+91 98100 00000"}], gender="female")).json
    post(client, {"resourceType": "Immunization", "status": "completed", "patient": {"reference": f"Patient/{p['id']}"},
                  "vaccineCode": {"coding": [{"system": CVX, "code": "207", "display": "COVID-19 mRNA"}]},
                  "occurrenceDateTime": "2021-05-01", "lotNumber": "LOT-1"})
    return p


def card_of(client, pid: str, **params) -> dict:
    r = client.get(f"/fhir/Patient/{pid}/$health-card", query_string=params)
    assert r.status_code == 200, r.get_data(as_text=True)
    return {p["name"]: p["valueString"] for p in r.json["parameter"]}


def test_the_card_verifies_with_an_independent_jws_library(client, asha):
    card = card_of(client, asha["id"])["verifiableCredential"]
    jwks = client.get("/fhir/.well-known/jwks.json").json
    assert all("d" not in k for k in jwks["keys"])
    header = jwt.get_unverified_header(card)
    assert header["alg"] == "ES256" and header["zip"] == "DEF"
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    decoded = jwt.PyJWS().decode_complete(card, key=jwt.PyJWK(jwk).key, algorithms=["ES256"])
    claims = json.loads(zlib.decompress(decoded["payload"], -15))
    assert claims["iss"] == BASE and claims["nbf"] <= time.time() + 1
    assert claims["vc"]["type"] == ["https://smarthealth.cards#health-card"]
    [entry] = claims["vc"]["credentialSubject"]["fhirBundle"]["entry"]
    # name, birth date and UHID; not the Aadhaar number, phone or gender
    uhid = uhid_in(asha)
    assert entry["resource"] == {"resourceType": "Patient", "identifier": [{"system": TEST_SYSTEM, "value": uhid}],
                                 "name": [{"family": "Sharma", "given": ["Asha"]}], "birthDate": "1950-04-02"}


def test_the_qr_code_decodes_with_an_independent_reader(client, asha):
    card = card_of(client, asha["id"])
    png = client.get(f"/fhir/Patient/{asha['id']}/$health-card", query_string={"format": "png"})
    assert png.status_code == 200 and png.content_type == "image/png" and png.headers["Cache-Control"] == "no-store"
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert read.text.startswith("shc:/") and read.text[5:].isdigit()
    assert jws.parse(_from_numeric(read.text))[1]["vc"]["credentialSubject"] == \
        jws.parse(card["verifiableCredential"])[1]["vc"]["credentialSubject"]
    text = client.get(f"/fhir/Patient/{asha['id']}/$health-card", query_string={"format": "qr"})
    assert text.content_type.startswith("text/plain") and text.get_data(as_text=True).startswith("shc:/")


def _from_numeric(text: str) -> str:
    digits = text[5:]
    return "".join(chr(int(digits[i:i + 2]) + 45) for i in range(0, len(digits), 2))


def test_file_and_immunizations(client, asha):
    r = client.get(f"/fhir/Patient/{asha['id']}/$health-card", query_string={"format": "file", "immunizations": "true"})
    assert r.status_code == 200 and r.content_type == "application/smart-health-card"
    [card] = json.loads(r.data)["verifiableCredential"]
    vc = jws.parse(card)[1]["vc"]
    assert vc["type"] == ["https://smarthealth.cards#health-card", "https://smarthealth.cards#immunization"]
    imm = vc["credentialSubject"]["fhirBundle"]["entry"][1]["resource"]
    assert imm["patient"] == {"reference": "resource:0"} and imm["lotNumber"] == "LOT-1"
    v = client.post("/fhir/$verify-health-card", data=r.data, headers={"Content-Type": "application/smart-health-card"})
    assert v.json["parameter"][0] == {"name": "valid", "valueBoolean": True}
    assert client.get(f"/fhir/Patient/{asha['id']}/$health-card", query_string={"format": "xml"}).status_code == 400


def test_every_issuance_is_recorded(client, asha):
    card_of(client, asha["id"])
    card_of(client, asha["id"], immunizations="true")
    events = client.get("/fhir/AuditEvent", query_string={"entity": f"Patient/{asha['id']}", "subtype": ISSUED}
                        ).json["entry"]
    assert len(events) == 2
    e = events[0]["resource"]
    assert e["type"]["code"] == "110106" and e["subtype"][0]["code"] == "health-card" and e["action"] == "E"


def audit_count(client, pid: str) -> int:
    """The cards recorded as issued for the patient."""
    return len(client.get("/fhir/AuditEvent", query_string={"entity": f"Patient/{pid}", "subtype": ISSUED}
                          ).json.get("entry", []))


def test_only_a_card_handed_out_is_recorded_as_issued(client, asha):
    """A card too large for the QR code asked for is a 422 and no AuditEvent; GET is allowed (the
    AuditEvent is not a change of state: OperationDefinition.affectsState), POST too."""
    for n in range(12):      # lot numbers that do not compress: the card outgrows one QR code
        post(client, {"resourceType": "Immunization", "status": "completed",
                      "patient": {"reference": f"Patient/{asha['id']}"},
                      "vaccineCode": {"coding": [{"system": CVX, "code": "207"}]}, "occurrenceDateTime": "2021-05-01",
                      "lotNumber": hashlib.sha256(str(n).encode()).hexdigest()})
    url = f"/fhir/Patient/{asha['id']}/$health-card"
    for fmt in ("qr", "png"):
        r = client.get(url, query_string={"format": fmt, "immunizations": "true"})
        assert r.status_code == 422 and "too large" in r.json["issue"][0]["diagnostics"]
    assert audit_count(client, asha["id"]) == 0
    r = client.get(url, query_string={"immunizations": "true"})       # json: the card, without a QR text
    assert r.status_code == 200 and [p["name"] for p in r.json["parameter"]] == ["verifiableCredential"]
    assert audit_count(client, asha["id"]) == 1
    r = client.post(url, json={"resourceType": "Parameters", "parameter": [{"name": "format", "valueCode": "qr"}]})
    assert r.status_code == 200 and r.get_data(as_text=True).startswith("shc:/")
    assert audit_count(client, asha["id"]) == 2
    from fhirserver.operations import registry
    assert registry()["health-card"].definition["affectsState"] is False


def verify(client, **body):
    r = client.post("/fhir/$verify-health-card", json=body)
    assert r.status_code == 200, r.json
    out: dict = {}
    for p in r.json["parameter"]:
        out.setdefault(p["name"], []).append(p.get("valueString", p.get("valueBoolean", p.get("resource"))))
    return out


def test_verification_in_every_form_the_card_comes(client, asha):
    card = card_of(client, asha["id"])
    uhid = uhid_in(asha)
    for body in ({"jws": card["verifiableCredential"]}, {"qr": card["qr"]},
                 {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": card["qr"]}]}):
        v = verify(client, **body)
        assert v["valid"] == [True] and v["uhid"] == [uhid] and v["name"] == ["Asha Sharma"], body
        assert v["birthDate"] == ["1950-04-02"] and v["issuer"] == [BASE] and "problem" not in v
    r = client.post("/fhir/$verify-health-card", data=card["qr"], headers={"Content-Type": "text/plain"})
    assert r.json["parameter"][0]["valueBoolean"] is True
    for empty in (b"", b"{}"):
        r = client.post("/fhir/$verify-health-card", data=empty, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"


def test_tampered_cards_are_refused_with_the_reason(client, ctx, asha):
    card = card_of(client, asha["id"])["verifiableCredential"]
    head, body, sig = card.split(".")
    # the payload changed: another name, signed by nobody
    claims = jws.parse(card)[1]
    claims["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]["name"] = [{"family": "Impostor"}]
    forged_body = jws.sign(claims, IssuerKeys(FakeStore()).active()).split(".")[1]
    v = verify(client, jws=f"{head}.{forged_body}.{sig}")
    assert v["valid"] == [False] and "changed after it was signed" in v["problem"][0] and "name" not in v
    # signed by a key this server never published, and by a foreign issuer
    v = verify(client, jws=jws.sign(jws.parse(card)[1], IssuerKeys(FakeStore()).active()))
    assert v["valid"] == [False] and "does not publish" in " ".join(v["problem"])
    other = jws.parse(card)[1] | {"iss": "https://evil.example/fhir"}
    v = verify(client, jws=jws.sign(other, IssuerKeys(ctx.store).active()))
    assert v["valid"] == [False] and "not trusted" in " ".join(v["problem"])
    # one digit of the QR text changed
    qr = card_of(client, asha["id"])["qr"]
    i = len(qr) // 2
    v = verify(client, qr=qr[:i] + ("1" if qr[i] != "1" else "2") + qr[i + 1:])
    assert v["valid"] == [False]


def test_the_malleated_twin_of_a_card_is_refused(client, asha):
    """(r, n - s) is as valid under plain ECDSA as (r, s): the server accepts only the low-s encoding it signs."""
    card = card_of(client, asha["id"])["verifiableCredential"]
    head, sig = card.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(sig + "==")
    twin_s = (jws.P256_ORDER - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    twin = f"{head}.{base64.urlsafe_b64encode(raw[:32] + twin_s).rstrip(b'=').decode()}"
    assert verify(client, jws=card)["valid"] == [True]
    v = verify(client, jws=twin)
    assert v["valid"] == [False] and "changed after it was signed" in v["problem"][0] and "name" not in v


def test_a_card_whose_uhid_fails_its_check_digit_is_refused(client, ctx):
    good = uhid_for("card").replace("-", "")
    bad = number.format_digits(good[:13] + str((int(good[13]) + 1) % 10))
    bundle = credential.minimal_bundle({"resourceType": "Patient", "id": "x", "birthDate": "1990-01-01",
                                        "identifier": [{"system": TEST_SYSTEM, "value": bad}]}, [])
    card = jws.sign(credential.payload(BASE, bundle, int(time.time())), IssuerKeys(ctx.store).active())
    v = verify(client, jws=card)
    assert v["valid"] == [False] and any("UHID on the card is wrong" in p and "check digit" in p for p in v["problem"])


def test_a_patient_without_a_uhid_gets_a_clear_answer(client, ctx):
    from fhirserver.storage.base import Write
    with ctx.store.transaction() as tx:      # stored before UHIDs existed
        tx.write(Write("Patient", "old", 1, "2020-01-01T00:00:00.000000Z", "PUT",
                       b'{"resourceType":"Patient","id":"old","meta":{"versionId":"1"}}'))
    r = client.get("/fhir/Patient/old/$health-card")
    assert r.status_code == 422 and "no UHID" in r.json["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/nobody/$health-card").status_code == 404



def test_hostile_verification_requests(client, asha):
    card = card_of(client, asha["id"])["verifiableCredential"]
    r = client.post("/fhir/$verify-health-card", json={"resourceType": "Parameters",
                                                        "parameter": [{"name": ["x"], "valueString": "y"}]})
    assert r.status_code == 400
    many = {"verifiableCredential": [card] * 11}
    v = client.post("/fhir/$verify-health-card", json=many)
    assert v.status_code == 200 and v.json["parameter"][0]["valueBoolean"] is False
    assert "at most 10" in v.json["parameter"][-1]["valueString"]
    assert client.post("/fhir/$verify-health-card", json={"verifiableCredential": [card] * 3}).json[
        "parameter"][0]["valueBoolean"] is True
    big = client.post("/fhir/$verify-health-card", data=b"x" * (2 << 20), headers={"Content-Type": "text/plain"})
    assert big.status_code == 413
    # a card whose contents inflate past 256 KiB: refused without inflating it all
    bomb = jws.sign({"iss": BASE, "nbf": 1, "pad": "0" * (300 * 1024)}, IssuerKeys(FakeStore()).active())
    v = client.post("/fhir/$verify-health-card", json={"jws": bomb})
    assert v.status_code == 200 and v.json["parameter"][0]["valueBoolean"] is False


def test_a_card_in_a_bundle_entry(client, asha):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{asha['id']}/$health-card"}},
        {"request": {"method": "GET", "url": f"Patient/{asha['id']}/$health-card?format=png"}}]}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200
    first, second = r.json["entry"]
    assert first["resource"]["parameter"][0]["name"] == "verifiableCredential"
    assert second["response"]["status"].startswith("400") and "image/png" in str(second["response"]["outcome"])


def test_revoked_cards_stop_verifying_and_new_ones_work(client, asha, monkeypatch):
    from fhirserver.health_cards import issuance
    old = card_of(client, asha["id"])["verifiableCredential"]
    rid = jws.parse(old)[1]["vc"]["rid"]
    assert len(rid) == 11 and rid == jws.parse(card_of(client, asha["id"])["verifiableCredential"])[1]["vc"]["rid"]
    assert client.get(f"/fhir/.well-known/crl/{jws.parse(old)[0]['kid']}.json").status_code == 404   # none yet
    assert "crlVersion" not in client.get("/fhir/.well-known/jwks.json").json["keys"][0]
    assert client.get(f"/fhir/Patient/{asha['id']}/$revoke-health-cards").status_code == 405
    r = client.post(f"/fhir/Patient/{asha['id']}/$revoke-health-cards")
    assert r.status_code == 200 and r.json["parameter"][0]["name"] == "revokedBefore"
    v = verify(client, jws=old)
    assert v["valid"] == [False] and "revoked" in v["problem"][0]
    kid = jws.parse(old)[0]["kid"]
    assert client.get("/fhir/.well-known/jwks.json").json["keys"][0]["crlVersion"] == 1
    crl = client.get(f"/fhir/.well-known/crl/{kid}.json").json
    assert crl["kid"] == kid and crl["method"] == "rid" and crl["ctr"] == 1
    assert [entry.split(".")[0] for entry in crl["rids"]] == [rid]
    real = time.time
    monkeypatch.setattr(issuance.time, "time", lambda: real() + 30)     # a card issued after the revocation
    fresh = card_of(client, asha["id"])["verifiableCredential"]
    monkeypatch.undo()
    assert verify(client, jws=fresh)["valid"] == [True]
    other = post(client, patient(name=[{"family": "Other"}])).json
    assert verify(client, jws=card_of(client, other["id"])["verifiableCredential"])["valid"] == [True]
    assert client.post("/fhir/Patient/nobody/$revoke-health-cards").status_code == 404


def test_the_issuer_keys_are_published_before_the_first_card(client):
    [key] = client.get("/fhir/.well-known/jwks.json").json["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and "d" not in key
