"""`medport load`: Synthea sets load completely, re-runs change nothing, failures are named."""
from __future__ import annotations

import collections
import glob
import json
import os
import sqlite3

from fhirserver import jsonio
from fhirserver.cli import main
from fhirserver.conformance import seed
from fhirserver.governance.provenance import SERVER_NAME
from fhirserver.uhid.naming_system import ID as NAMING_SYSTEM_ID

DATA = os.path.join(os.path.dirname(__file__), "data")


def counts(db):
    """What was loaded: current resources by type, less the store's own UHID NamingSystem and Med-Port
    definitions (the init step every new store gets, context.initialize) and the Provenance the server
    wrote of the load."""
    own = [f"NamingSystem/{NAMING_SYSTEM_ID}", *sorted(seed.keys())]
    with sqlite3.connect(db) as c:
        out = dict(c.execute("SELECT type, count(*) FROM resource WHERE deleted = 0 AND type || '/' || id NOT IN "
                             f"({','.join('?' * len(own))}) GROUP BY type", own).fetchall())
    if server_provenance(db):
        out["Provenance"] -= len(server_provenance(db))
        out = {k: v for k, v in out.items() if v}
    return out


def server_provenance(db) -> list[dict]:
    """The Provenance the server wrote of what it loaded (governance/provenance.py)."""
    with sqlite3.connect(db) as c:
        bodies = [jsonio.loads_stored(b) for (b,) in c.execute(
            "SELECT v.body FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version "
            "WHERE r.type = 'Provenance' AND r.deleted = 0")]
    return [p for p in bodies if any(a.get("who", {}).get("display") == SERVER_NAME for a in p.get("agent", ()))]


def expected_counts(folder, dedupe_types=()):
    out = collections.Counter()
    seen = set()
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        for e in json.load(open(path, encoding="utf-8"))["entry"]:
            r = e["resource"]
            key = (r["resourceType"], json.dumps(r.get("identifier"), sort_keys=True))
            if r["resourceType"] in dedupe_types and key in seen:
                continue
            seen.add(key)
            out[r["resourceType"]] += 1
    return dict(out)


def test_synthea_2021_loads_with_every_conditional_reference_resolved(tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["load", "--store", f"sqlite:///{db}", os.path.join(DATA, "synthea-2021")]) == 0
    assert "loaded 5 file(s)" in capsys.readouterr().out
    assert counts(db) == expected_counts(os.path.join(DATA, "synthea-2021"))
    with sqlite3.connect(db) as c:
        bodies = [b for (b,) in c.execute("SELECT v.body FROM version v")]
        assert not [b for b in bodies if b'"reference":"Practitioner?' in b or b'"reference":"Organization?' in b
                    or b'"reference":"Location?' in b or b'urn:uuid:' in b]
        # every reference to a Practitioner names one that exists
        refs = c.execute("SELECT DISTINCT target_type, target_id FROM idx_reference WHERE target_type IN "
                         "('Practitioner', 'Organization', 'Location')").fetchall()
        missing = [r for r in refs if not c.execute("SELECT 1 FROM resource WHERE type = ? AND id = ?", r).fetchone()]
        assert refs and not missing


def test_synthea_2019_loads_and_reloading_changes_nothing(tmp_path):
    db = tmp_path / "s.db"
    folder = os.path.join(DATA, "synthea")
    assert main(["load", "--store", f"sqlite:///{db}", folder]) == 0
    first = counts(db)
    assert first == expected_counts(folder, dedupe_types=("Organization", "Practitioner"))
    assert main(["load", "--store", f"sqlite:///{db}", folder]) == 0
    assert counts(db) == first


def test_failures_are_named_and_exit_non_zero(tmp_path, capsys):
    good = tmp_path / "good.ndjson"
    good.write_text('{"resourceType": "Patient", "id": "n1"}\n{"resourceType": "Patient", "id": "n2"}\n')
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "robot"}, "request": {"method": "POST", "url": "Patient"}}]}))
    db = tmp_path / "s.db"
    assert main(["load", "--store", f"sqlite:///{db}", str(good), str(broken), str(invalid)]) == 1
    err = capsys.readouterr().err
    assert "broken.json" in err and "invalid.json" in err and "good.ndjson" not in err
    assert counts(db) == {"Patient": 2}
