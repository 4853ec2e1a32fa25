"""`medport reindex` rebuilds the search index from the stored resources."""
from __future__ import annotations

from fhirserver.cli import main
from fhirserver.conformance import seed
from tests.conftest import FHIR_JSON


def test_reindex_restores_lost_index_rows(tmp_path, monkeypatch, capsys):
    from fhirserver import create_app
    from tests.conftest import make_settings
    settings = make_settings(tmp_path)
    app = create_app(settings)
    client = app.test_client()
    for family in ("Sharma", "Shah"):
        client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": family}]},
                    headers={"Content-Type": FHIR_JSON})
    store = app.config["MEDPORT"].store
    store._conn().execute("DELETE FROM idx_string")           # simulate an index from older parameters
    assert client.get("/fhir/Patient?name=sh").json["total"] == 0
    audit_events = store.history("AuditEvent", limit=0).total   # the requests' own (docs/audit.md), one version each
    monkeypatch.setenv("MEDPORT_STORE", settings.store)
    assert main(["reindex"]) == 0
    # the two, their two Provenance (governance/provenance.py), the server's NamingSystem/uhid and its
    # Med-Port definitions (conformance/seed.py), and the AuditEvents the requests above left
    assert f"{5 + len(seed.keys()) + audit_events} resources reindexed" in capsys.readouterr().out
    assert client.get("/fhir/Patient?name=sh").json["total"] == 2
