"""Bulk Data export against a real `medport serve --demo` (its own `medport worker` process), by a
plain requests client following the Bulk Data 3.0 spec step by step: SMART Backend Services token
(private_key_jwt), kick-off, polling as Retry-After says, manifest, NDJSON downloads with the token."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from ._server import MEDPORT


@pytest.fixture(scope="module")
def demo(module_server_factory, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bulk-demo")
    return module_server_factory(str(folder / "store.db"), auth="on", demo=True)


def backend_token(server, tmp_path, scope="system/*.rs") -> str:
    """SMART Backend Services: register a client with a JWKS, sign an assertion, ask for a token."""
    key = RSAKey.generate_key(2048, parameters={"kid": "bulk-1", "alg": "RS384", "use": "sig"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    out = subprocess.run([MEDPORT, "client", "add", "Registry exporter", "--type", "confidential-asymmetric",
                          "--jwks", str(jwks), "--scope", scope, "--store", server.store_url],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    client_id = next(line.split()[-1] for line in out.splitlines() if "client_id" in line)
    token_url = server.root + "/auth/token"
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS384", "kid": "bulk-1", "typ": "JWT"},
                           {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240,
                            "jti": uuid.uuid4().hex}, key, algorithms=["RS384"])
    r = requests.post(token_url, timeout=30, data={
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_a_spec_following_client_exports_the_demo(demo, tmp_path):
    server = demo
    token = backend_token(server, tmp_path)
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(server.base + "/$export", headers={"Prefer": "respond-async"}, timeout=30).status_code == 401

    kick = requests.get(server.base + "/$export?_type=Patient,Observation", timeout=30,
                        headers={**bearer, "Accept": "application/fhir+json", "Prefer": "respond-async"})
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["Content-Location"]
    deadline = time.monotonic() + 120
    while True:
        r = requests.get(status_url, headers=bearer, timeout=30)
        if r.status_code != 202:
            break
        assert time.monotonic() < deadline, "the export did not finish"
        time.sleep(float(r.headers.get("Retry-After", "1")))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"), r.text
    manifest = r.json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Observation"}
    for item in manifest["output"]:
        assert requests.get(item["url"], timeout=30).status_code == 401
        f = requests.get(item["url"], headers=bearer, timeout=30)
        assert f.status_code == 200 and f.headers["Content-Type"].startswith("application/fhir+ndjson")
        rows = [json.loads(line) for line in f.text.splitlines()]
        assert len(rows) == item["count"] and all(row["resourceType"] == item["type"] for row in rows)
    patients = {json.loads(line)["id"] for o in manifest["output"] if o["type"] == "Patient"
                for line in requests.get(o["url"], headers=bearer, timeout=30).text.splitlines()}
    assert "demo-patient" in patients

    assert requests.delete(status_url, headers=bearer, timeout=30).status_code == 202
    assert requests.get(status_url, headers=bearer, timeout=30).status_code == 404


def test_an_export_survives_a_killed_server(server_factory, tmp_path):
    """SIGKILL the whole server (web workers and the export worker) right after the kick-off; a new
    server on the same store finishes the job (once the dead worker's lease runs out) with every
    resource exactly once."""
    env = {"MEDPORT_EXPORT_FILE_MAX_BYTES": "1", "MEDPORT_EXPORT_POLL_S": "1"}     # a file per page
    first = server_factory(tmp_path / "store.db", env=env)
    entries = [{"resource": {"resourceType": "Observation", "status": "final", "code": {"text": f"obs {i}"}},
                "request": {"method": "POST", "url": "Observation"}} for i in range(2500)]
    r = requests.post(first.base, json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                      headers={"Content-Type": "application/fhir+json"}, timeout=300)
    assert r.status_code == 200, r.text[:500]
    kick = requests.get(first.base + "/$export?_type=Observation", headers={"Prefer": "respond-async"}, timeout=30)
    assert kick.status_code == 202
    status_path = kick.headers["Content-Location"].split("/fhir", 1)[1]
    time.sleep(0.3)
    first.kill()
    second = server_factory(tmp_path / "store.db", env=env)
    deadline = time.monotonic() + 120           # the lease (30 s) runs out, then the new worker continues
    while True:
        r = requests.get(second.base + status_path, timeout=30)
        if r.status_code != 202:
            break
        assert time.monotonic() < deadline, "the export was not taken over"
        time.sleep(float(r.headers.get("Retry-After", "1")))
    assert r.status_code == 200, r.text
    ids = [json.loads(line)["id"] for o in r.json()["output"]
           for line in requests.get(o["url"].replace(first.base, second.base), timeout=30).text.splitlines()]
    assert len(ids) == len(set(ids)) == 2500
