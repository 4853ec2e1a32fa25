"""ChargeItemDefinition/[id]/$apply, HealthcareService/[id]/$price and the price search (docs/prices.md),
on every store: the arithmetic of each component type, applicability conditions against the patient and
encounter given, currencies and rounding, no applicable price, malformed definitions, and no price
leaking from a definition the caller cannot read."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from fhirserver import jsonio
from fhirserver.jsonio import FhirDecimal
from fhirserver.operations import registry
from fhirserver.pricing.formula import price as formula_price
from fhirserver.validation import validate
from tests.conftest import FHIR_JSON, drop_database, make_settings
from tests.smart_auth._tokens import auth, mint

USAGE = "http://terminology.hl7.org/CodeSystem/usage-context-type"
FHIRPATH = "text/fhirpath"
SENIOR = "%patient.birthDate <= today() - 60 years"
INPATIENT = "%encounter.class.code = 'IMP'"


def post(client, resource: dict, headers=None) -> dict:
    r = client.post(f"/fhir/{resource['resourceType']}", data=jsonio.dumps(resource),
                    headers={"Content-Type": FHIR_JSON, **(headers or {})})
    assert r.status_code == 201, r.json
    return r.json


def amount(value: str, currency: str = "INR") -> dict:
    return {"value": FhirDecimal(value), "currency": currency}


def component(type_: str, value: str | None = None, factor: str | None = None, currency: str = "INR") -> dict:
    c = {"type": type_}
    if value is not None:
        c["amount"] = amount(value, currency)
    if factor is not None:
        c["factor"] = FhirDecimal(factor)
    return c


def condition(expression: str) -> list[dict]:
    return [{"description": expression, "language": FHIRPATH, "expression": expression}]


def definition(*groups: dict, service: str | None = None, **fields) -> dict:
    d = {"resourceType": "ChargeItemDefinition", "url": "http://hospital.test/price/opd", "status": "active",
         "title": "OPD consultation", "code": {"text": "OPD consultation"}, "propertyGroup": list(groups), **fields}
    if service:
        d["useContext"] = [{"code": {"system": USAGE, "code": "venue"}, "valueReference": {"reference": service}}]
    return d


def group(*components: dict, when: str | None = None) -> dict:
    g = {"priceComponent": list(components)}
    if when:
        g["applicability"] = condition(when)
    return g


def send_json(client, method: str, url: str, body=None, headers=None):
    data = None if body is None else jsonio.dumps(body)
    return client.open(url, method=method, data=data, headers={"Content-Type": FHIR_JSON, **(headers or {})})


def decimal_json(response) -> dict:
    """The body with its decimals exactly as written (1180.00 stays 1180.00)."""
    return json.loads(response.data, parse_float=Decimal)


def apply(client, cid: str, headers=None, **params):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": k, "resource": v} if isinstance(v, dict) and "resourceType" in v else {"name": k, "valueReference": {"reference": v}}
        for k, v in params.items()]}
    return send_json(client, "POST", f"/fhir/ChargeItemDefinition/{cid}/$apply", body, headers)


def total(response) -> tuple[Decimal, str]:
    assert response.status_code == 200, response.json
    body = decimal_json(response)
    assert body["resourceType"] == "ChargeItem"
    return body["priceOverride"]["value"], body["priceOverride"]["currency"]


def prices(client, service: str, query: str = "", headers=None) -> list[dict]:
    """$price as [{name: value}] per price; components as [(type, amount or None)]."""
    r = client.get(f"/fhir/{service}/$price{query}", headers=headers or {})
    assert r.status_code == 200, r.json
    out = []
    for p in decimal_json(r).get("parameter", ()):
        assert p["name"] == "price"
        row = {"components": []}
        for part in p["part"]:
            if part["name"] == "component":
                c = {x["name"]: next(v for k, v in x.items() if k.startswith("value")) for x in part["part"]}
                row["components"].append((c["type"], c.get("amount", {}).get("value")))
            else:
                row[part["name"]] = next(v for k, v in part.items() if k.startswith("value"))
        out.append(row)
    return out


@pytest.fixture
def world(client):
    """A service, a senior patient (born 1950), a young one, an inpatient encounter of the senior."""
    svc = post(client, {"resourceType": "HealthcareService", "name": "Cardiology OPD", "active": True})
    senior = post(client, {"resourceType": "Patient", "birthDate": "1950-04-02"})
    young = post(client, {"resourceType": "Patient", "birthDate": "2000-01-01"})
    stay = post(client, {"resourceType": "Encounter", "status": "in-progress", "subject": {"reference": f"Patient/{senior['id']}"},
                         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}})
    return {"service": f"HealthcareService/{svc['id']}", "senior": f"Patient/{senior['id']}",
            "young": f"Patient/{young['id']}", "stay": f"Encounter/{stay['id']}"}


# ---- arithmetic ---------------------------------------------------------------------------------

def test_every_component_type(client, world):
    cid = post(client, definition(group(
        component("base", "1000.00"),
        component("surcharge", "100"),                 # amount: added
        component("surcharge", factor="0.05"),         # factor x base: 50.00
        component("discount", "30"),                   # amount: taken off
        component("discount", factor="0.1"),           # factor x base: 100.00
        component("tax", factor="0.18"),               # 18% of 1000 + 150 - 130 = 1020: 183.60
        component("tax", "20"),                        # amount: added
        component("informational", "999")),            # listed, never counted
        service=world["service"]))
    assert total(apply(client, cid["id"], patient=world["young"])) == (Decimal("1223.60"), "INR")
    [p] = prices(client, world["service"])
    assert p["components"] == [("base", Decimal("1000.00")), ("surcharge", Decimal("100.00")),
                               ("surcharge", Decimal("50.00")), ("discount", Decimal("30.00")),
                               ("discount", Decimal("100.00")), ("tax", Decimal("183.60")),
                               ("tax", Decimal("20.00")), ("informational", Decimal("999.00"))]
    assert (p["base"]["value"], p["subtotal"]["value"], p["tax"]["value"], p["total"]["value"]) == \
        (Decimal("1000.00"), Decimal("1020.00"), Decimal("203.60"), Decimal("1223.60"))
    assert p["currency"] == "INR" and p["definition"]["reference"] == f"ChargeItemDefinition/{cid['id']}"


def test_groups_apply_by_their_conditions(client, world):
    cid = post(client, definition(
        group(component("base", "5000"), when=INPATIENT),            # an inpatient's base comes first
        group(component("base", "500"), component("tax", factor="0.18")),
        group(component("discount", factor="0.5"), when=SENIOR),     # senior citizens: half price
        group(component("surcharge", "100"), when="%patient.gender = 'female'"),
        service=world["service"]))["id"]
    assert total(apply(client, cid, patient=world["young"])) == (Decimal("590.00"), "INR")
    assert total(apply(client, cid, patient=world["senior"])) == (Decimal("295.00"), "INR")    # 250 + 18%
    assert total(apply(client, cid, patient=world["senior"], encounter=world["stay"])) == (Decimal("2950.00"), "INR")
    [p] = prices(client, world["service"], f"?patient={world['senior']}&encounter={world['stay']}")
    assert p["components"] == [("base", Decimal("5000.00")), ("discount", Decimal("2500.00")),
                               ("tax", Decimal("450.00"))]
    [p] = prices(client, world["service"])         # nobody in particular: no patient condition holds
    assert p["total"]["value"] == Decimal("590.00")


def test_the_chargeitem_is_the_context(client, world):
    cid = post(client, definition(group(component("base", "200")),
                                  group(component("surcharge", "50"), when="%context.priority.exists()")))["id"]
    inline = {"resourceType": "ChargeItem", "status": "billable", "code": {"text": "consult"},
              "subject": {"reference": world["senior"]}, "quantity": {"value": 3}}
    assert total(apply(client, cid, chargeItem=inline)) == (Decimal("600.00"), "INR")     # 200 x 3
    stored = post(client, {**inline, "quantity": {"value": 2}})
    r = apply(client, cid, chargeItem=f"ChargeItem/{stored['id']}")
    assert total(r) == (Decimal("400.00"), "INR")
    out = r.json
    assert out["id"] == stored["id"] and out["definitionCanonical"] == ["http://hospital.test/price/opd"]
    assert out["subject"] == {"reference": world["senior"]}


def test_currencies_and_rounding(client, world):
    usd = post(client, definition(group(component("base", "10.10", currency="USD"),
                                        component("tax", factor="0.05"))))["id"]
    assert total(apply(client, usd, patient=world["young"])) == (Decimal("10.61"), "USD")   # 0.505 -> 0.51, half up
    yen = post(client, definition(group(component("base", "1234.5", currency="JPY"),
                                        component("discount", factor="0.1"))))["id"]
    assert total(apply(client, yen, patient=world["young"])) == (Decimal("1111"), "JPY")   # 1235 - (123.5 -> 124)
    dinar = post(client, definition(group(component("base", "1.2345", currency="KWD"))))["id"]
    assert total(apply(client, dinar, patient=world["young"])) == (Decimal("1.235"), "KWD")
    default = post(client, definition(group({"type": "base", "amount": {"value": 99.999}})))["id"]
    assert total(apply(client, default, patient=world["young"])) == (Decimal("100.00"), "INR")
    mixed = post(client, definition(group(component("base", "10", currency="USD"), component("surcharge", "1"))))["id"]
    r = apply(client, mixed, patient=world["young"])
    assert r.status_code == 400 and "currencies" in r.json["issue"][0]["diagnostics"]


def test_formula_in_decimals():
    """Float arithmetic would get these wrong; every figure is exact to the currency's minor unit."""
    p = formula_price([(0, group(component("base", "0.10"), component("surcharge", "0.20"), component("tax", factor="0.5")))])
    assert (p.subtotal, p.tax, p.total) == (Decimal("0.30"), Decimal("0.15"), Decimal("0.45"))
    p = formula_price([(0, group(component("base", "100"), component("discount", "150"), component("tax", "5")))])
    assert (p.subtotal, p.total) == (Decimal("0.00"), Decimal("5.00"))           # never below zero
    both = {"type": "surcharge", "amount": amount("7"), "factor": FhirDecimal("0.5")}
    assert formula_price([(0, group(component("base", "100"), both))]).total == Decimal("107.00")   # amount wins
    assert formula_price([(0, group(component("surcharge", "5")))]) is None                          # no base


# ---- no price, malformed definitions ------------------------------------------------------------

def test_no_applicable_group(client, world):
    cid = post(client, definition(group(component("base", "500"), when=SENIOR), service=world["service"]))["id"]
    r = apply(client, cid, patient=world["young"])
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome"
    assert "gives no price" in r.json["issue"][0]["diagnostics"]
    assert prices(client, world["service"], f"?patient={world['young']}") == []      # $price: no price parameter
    assert len(prices(client, world["service"], f"?patient={world['senior']}")) == 1
    closed = post(client, definition(group(component("base", "1")), applicability=condition("false")))["id"]
    assert apply(client, closed, patient=world["senior"]).status_code == 400


@pytest.mark.parametrize("bad", [
    group(component("base", "1"), when="%patient.birthDate <="),                  # does not parse
    group(component("base", "1"), when="%patient.birthDate"),                    # not a boolean
    group(component("base", "1"), when="%insurer.exists()"),                     # unknown variable
    group(component("base", "1"), when="frobnicate()"),                          # unknown function
    {"applicability": [{"language": "text/cql", "expression": "true"}], "priceComponent": [component("base", "1")]},
    {"applicability": [{"description": "children under five"}], "priceComponent": [component("base", "1")]},
    group(component("base", "-5")),                                              # signs come from the type
    group(component("base", "10"), {"type": "rebate", "amount": amount("1")}),   # unknown type
    group(component("base", factor="1.5")),                                      # a base needs an amount
    group(component("base", "10"), {"type": "tax"}),                             # neither amount nor factor
    group(component("base", "10", currency="rupees")),                           # not an ISO 4217 code
])
def test_malformed_definition_is_400(client, world, bad):
    d = definition(bad, service=world["service"])
    d["propertyGroup"][0].setdefault("priceComponent", [])
    cid = post(client, d)["id"]
    for r in (apply(client, cid, patient=world["senior"]),
              client.get(f"/fhir/{world['service']}/$price?patient={world['senior']}")):
        assert r.status_code == 400, r.json
        assert r.json["resourceType"] == "OperationOutcome" and r.json["issue"][0]["severity"] == "error"
        assert "propertyGroup[0]" in r.json["issue"][0]["diagnostics"]


def test_apply_parameters(client, world):
    cid = post(client, definition(group(component("base", "10"))))["id"]
    r = send_json(client, "POST", f"/fhir/ChargeItemDefinition/{cid}/$apply", {"resourceType": "Parameters"})
    assert r.status_code == 400 and "chargeItem" in r.json["issue"][0]["diagnostics"]
    assert apply(client, cid, patient="Patient/nobody").status_code == 404
    assert apply(client, cid, patient="Observation/x").status_code == 400
    assert apply(client, "nothing-here", patient=world["young"]).status_code == 404
    assert client.get(f"/fhir/ChargeItemDefinition/{cid}/$apply?patient={world['young']}").status_code == 200
    bad_item = {"resourceType": "ChargeItem", "status": "billable", "code": {"text": "x"},
                "subject": {"reference": world["young"]}, "quantity": {"value": -1}}
    assert apply(client, cid, chargeItem=bad_item).status_code == 400


# ---- directory: which definitions price a service, search by price -----------------------------

def test_price_lists_the_active_definitions_in_effect(client, world):
    svc = world["service"]
    post(client, definition(group(component("base", "100")), service=svc, title="now"))
    post(client, definition(group(component("base", "200")), service=svc, title="draft", status="draft"))
    post(client, definition(group(component("base", "300")), service=svc, title="expired",
                            effectivePeriod={"end": "2020-03-31"}))
    post(client, definition(group(component("base", "400")), service=svc, title="this year",
                            effectivePeriod={"start": "2020-01-01"}))
    post(client, definition(group(component("base", "500")), title="another service's"))
    assert sorted(p["definition"]["display"] for p in prices(client, svc)) == ["now", "this year"]


def test_price_search(client, world):
    cheap = post(client, definition(group(component("base", "450")), service=world["service"]))["id"]
    dear = post(client, definition(group(component("base", "45", currency="USD"))))["id"]

    def ids(query):
        r = client.get(f"/fhir/{query}")
        assert r.status_code == 200, r.json
        return {e["resource"]["id"] for e in r.json.get("entry", ())}
    assert ids("ChargeItemDefinition?price=le500") == {cheap, dear}
    assert ids("ChargeItemDefinition?price=le500|urn:iso:std:iso:4217|INR") == {cheap}
    assert ids("ChargeItemDefinition?price=gt100|urn:iso:std:iso:4217|USD") == set()
    assert ids(f"ChargeItemDefinition?service={world['service']}") == {cheap}
    service_id = world["service"].split("/")[1]
    assert ids("HealthcareService?_has:ChargeItemDefinition:service:price=le500") == {service_id}
    assert ids("HealthcareService?_has:ChargeItemDefinition:service:price=lt400") == set()


def test_definitions_are_valid_and_listed(client):
    for name in ("apply", "price"):
        validate(registry()[name].definition)
    cs = client.get("/fhir/metadata").json
    ops = {(r["type"], o["name"], o["definition"]) for r in cs["rest"][0]["resource"] for o in r.get("operation", ())}
    assert ("ChargeItemDefinition", "apply", "http://hl7.org/fhir/OperationDefinition/ChargeItemDefinition-apply") in ops
    assert ("HealthcareService", "price", "https://medport.health/fhir/OperationDefinition/HealthcareService-price") in ops
    cid = next(r for r in cs["rest"][0]["resource"] if r["type"] == "ChargeItemDefinition")
    assert {"price", "service"} <= {p["name"] for p in cid.get("searchParam", ())}


# ---- no price leaks -----------------------------------------------------------------------------

@pytest.fixture
def secured(tmp_path, backend):
    from fhirserver import create_app
    settings = make_settings(tmp_path, backend, auth="on")
    yield create_app(settings)
    if settings.store.startswith("mongodb"):
        drop_database(settings.store)


def test_no_price_from_a_definition_the_caller_cannot_read(secured):
    client = secured.test_client()
    admin = auth(mint(secured, "system/*.cruds"))
    svc = post(client, {"resourceType": "HealthcareService", "name": "Radiology"}, admin)
    person = post(client, {"resourceType": "Patient", "birthDate": "1950-04-02"}, admin)
    service = f"HealthcareService/{svc['id']}"
    shown = post(client, definition(group(component("base", "100")), service=service, title="public"), admin)
    hidden = post(client, definition(group(component("base", "777")), service=service, title="HIDDEN-DRAFT",
                                     status="draft"), admin)
    # a granular scope: only active definitions are in reach (the draft answers like an unknown id)
    reader = auth(mint(secured, "system/ChargeItemDefinition.rs?status=active system/HealthcareService.rs "
                                "system/Patient.rs"))
    assert total(apply(client, shown["id"], reader, patient=f"Patient/{person['id']}")) == (Decimal("100.00"), "INR")

    def answer(id_):
        r = apply(client, id_, reader, patient=f"Patient/{person['id']}")
        return r.status_code, r.json["issue"][0]["code"], r.json["issue"][0]["diagnostics"].replace(id_, "ID")
    assert answer(hidden["id"]) == answer("no-such-definition") == (404, "not-found", "ChargeItemDefinition/ID is not known")
    got = client.get(f"/fhir/{service}/$price", headers=reader)
    assert "HIDDEN" not in got.get_data(as_text=True) and "777" not in got.get_data(as_text=True)
    assert [p["definition"]["display"] for p in prices(client, service, headers=reader)] == ["public"]
    # no rights on ChargeItemDefinition at all: the same 403 whether or not a price exists
    blind = auth(mint(secured, "system/HealthcareService.rs system/Patient.rs"))
    empty = post(client, {"resourceType": "HealthcareService", "name": "Unpriced"}, admin)
    a = client.get(f"/fhir/{service}/$price", headers=blind)
    b = client.get(f"/fhir/HealthcareService/{empty['id']}/$price", headers=blind)
    assert (a.status_code, a.json) == (b.status_code, b.json) and a.status_code == 403
    assert apply(client, shown["id"], blind, patient=f"Patient/{person['id']}").status_code == 403
    assert apply(client, "no-such-definition", blind, patient=f"Patient/{person['id']}").status_code == 403


def test_a_patient_or_proxy_token_gets_the_public_price(secured):
    """The directory is public: a patient's token (patient scopes have no place for services) prices
    a service for its own patient; the patient is read with the token's own rights."""
    client = secured.test_client()
    admin = auth(mint(secured, "system/*.cruds"))
    svc = post(client, {"resourceType": "HealthcareService", "name": "Blood test"}, admin)
    person = post(client, {"resourceType": "Patient", "birthDate": "1950-04-02"}, admin)
    other = post(client, {"resourceType": "Patient", "birthDate": "1990-04-02"}, admin)
    senior = group(component("discount", factor="0.2"), when="%patient.birthDate < @1966-01-01")
    post(client, definition(group(component("base", "400")), senior, service=f"HealthcareService/{svc['id']}",
                            title="CBC"), admin)
    own = auth(mint(secured, "patient/*.rs", patient=person["id"]))
    got = prices(client, f"HealthcareService/{svc['id']}", f"?patient=Patient/{person['id']}", headers=own)
    assert [p["definition"]["display"] for p in got] == ["CBC"]
    r = client.get(f"/fhir/HealthcareService/{svc['id']}/$price?patient=Patient/{other['id']}", headers=own)
    assert r.status_code == 404                       # another patient: as unknown, never priced with their data
