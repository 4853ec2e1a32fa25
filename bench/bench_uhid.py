"""What the UHID costs, and how fast cards are issued and verified (in-process, full stack through
the Flask test client, SQLite, authorization off).

    .venv/bin/python bench/bench_uhid.py [--n 1000]        # make bench-uhid

Prints, from one run:
- creates/s of a Patient (UHID drawn, claimed in the store's unique index, indexed) against the
  same Patients with the UHID rules switched off in-process (and a RelatedPerson of the same
  shape): the price of issuance;
- searches/s by UHID in the canonical form and as typed digits;
- health cards issued/s (JSON: sign + QR text; PNG: + the QR image) and verified/s;
- Patient/$match calls/s over the patients created.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fhirserver import create_app  # noqa: E402
from fhirserver.config import Settings  # noqa: E402

H = {"Content-Type": "application/fhir+json"}


def rate(label: str, n: int, fn) -> list:
    out, started = [], time.perf_counter()
    for i in range(n):
        out.append(fn(i))
    seconds = time.perf_counter() - started
    print(f"{label:48} {n / seconds:9.0f}/s   {1000 * seconds / n:7.2f} ms each")
    return out


def person(i: int, rtype: str) -> dict:
    body = {"resourceType": rtype, "name": [{"family": f"Family{i % 97}", "given": [f"Given{i}"]}],
            "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}", "gender": "female",
            "telecom": [{"system": "phone", "value": f"+91 98{i:08d}"}]}
    if rtype == "RelatedPerson":
        body["patient"] = {"reference": "Patient/x"}
    return body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as d:
        settings = Settings(store=f"sqlite:///{d}/b.db", base_url="http://bench.test/fhir", auth="off",
                            sqlite_synchronous="NORMAL", log_level="WARNING")
        client = create_app(settings).test_client()
        import logging
        logging.getLogger().setLevel(logging.WARNING)
        client.post("/fhir/RelatedPerson", json=person(0, "RelatedPerson"), headers=H)   # warm up
        print(f"n = {n}")
        rate("create RelatedPerson (no UHID)", n, lambda i: client.post("/fhir/RelatedPerson",
                                                                       json=person(i, "RelatedPerson"), headers=H))
        from fhirserver.uhid import patient_rules
        plan = patient_rules.plan
        patient_rules.plan = lambda system, resource: None      # baseline: the UHID rules switched off
        rate("create Patient, UHID rules off (baseline)", n, lambda i: client.post("/fhir/Patient",
                                                                                  json=person(i, "Patient"), headers=H))
        patient_rules.plan = plan
        made = rate("create Patient (UHID drawn, claimed, indexed)", n,
                    lambda i: client.post("/fhir/Patient", json=person(i, "Patient"), headers=H).json)
        system = "http://bench.test/fhir/sid/uhid"
        uhids = [next(x["value"] for x in p["identifier"] if x["system"] == system) for p in made]
        rate("search Patient?identifier=system|NN-NNNN-NNNN-NNNN", n, lambda i: client.get(
            "/fhir/Patient", query_string={"identifier": f"{system}|{uhids[i]}"}))
        rate("search Patient?identifier=system|14 digits", n, lambda i: client.get(
            "/fhir/Patient", query_string={"identifier": f"{system}|{uhids[i].replace('-', '')}"}))
        m = max(n // 10, 10)
        cards = rate("issue $health-card (JSON: JWS + QR text)", m, lambda i: client.get(
            f"/fhir/Patient/{made[i]['id']}/$health-card").json["parameter"][0]["valueString"])
        rate("issue $health-card?format=png (+ QR image)", m, lambda i: client.get(
            f"/fhir/Patient/{made[i]['id']}/$health-card?format=png"))
        rate("POST $verify-health-card", m, lambda i: client.post("/fhir/$verify-health-card",
                                                                  json={"jws": cards[i]}))
        rate("POST Patient/$match (name, birth date, phone)", m, lambda i: client.post(
            "/fhir/Patient/$match", json={"resourceType": "Parameters",
                                          "parameter": [{"name": "resource", "resource": person(i, "Patient")}]},
            headers=H))


if __name__ == "__main__":
    main()
