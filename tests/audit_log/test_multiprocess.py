"""Several server processes on one store, each serving audited requests and running its integrator
thread at once, give one consistent log: every AuditEvent exactly once, no gaps, verify OK."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from fhirserver.audit_log import journal
from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log.verify import verify
from fhirserver.config import Settings
from fhirserver.storage import open_store

WORKER = textwrap.dedent("""
    import json, sys
    from fhirserver import create_app
    from fhirserver.config import Settings
    settings = Settings(store=sys.argv[1], base_url="http://fhir.test/fhir", auth="off",
                        sqlite_synchronous="NORMAL", audit_integrator="on", audit_integration_s=0.02)
    client = create_app(settings).test_client()
    codes = []
    for k in range(int(sys.argv[2])):
        r = client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": f"P{k}"}]},
                        headers={"Content-Type": "application/fhir+json"})
        codes.append(r.status_code)
        codes.append(client.get(f"/fhir/Patient/{r.json['id']}").status_code)
        codes.append(client.get("/fhir/Patient?family=P1").status_code)
        codes.append(client.get("/fhir/Patient/missing").status_code)
    print(json.dumps(codes))
""")


def test_processes_writing_and_auditing_at_once_give_one_log(tmp_path):
    url = f"sqlite:///{tmp_path}/medport.db"
    settings = Settings(store=url, base_url="http://fhir.test/fhir", auth="off", sqlite_synchronous="NORMAL")
    open_store(settings).init()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, "15"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        codes = json.loads(out.strip().splitlines()[-1])
        assert codes.count(404) == 15 and all(c in (200, 201, 404) for c in codes)
    store = open_store(settings)
    journal.drain(store, settings.base_url)
    stored = store.history("AuditEvent", limit=100000).items
    # a worker may have exited holding the integrator's lease: it lapses within LEASE_S
    deadline = time.monotonic() + audit_log.LEASE_S + 20
    while audit_log.size(store) < len(stored) and time.monotonic() < deadline:
        if not audit_log.integrate(store, settings):
            time.sleep(0.2)
    entries = audit_log.all_entries(store)
    keys = [(e.id, e.version) for e in entries]
    assert len(keys) == len(set(keys)) == len(stored)
    assert set(keys) == {(v.id, v.version) for v in stored}
    assert [e.index for e in entries] == list(range(len(entries)))
    # 3 processes x 15 rounds x 4 requests, each audited (a search may leave one event per patient)
    assert len(stored) >= 3 * 15 * 4
    assert verify(store).ok
