"""`medport gc-blobs` removes content files no version refers to, and nothing else."""
from __future__ import annotations

from fhirserver import create_app
from fhirserver.cli import main
from tests.conftest import make_settings


def test_gc_removes_only_orphans(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    app = create_app(settings)
    client = app.test_client()
    bid = client.post("/fhir/Binary", data=b"kept", headers={"Content-Type": "application/pdf"}).json["id"]
    store = app.config["MEDPORT"].store
    orphan = store.blobs.put(iter([b"left by a crash"]), 100).key
    monkeypatch.setenv("MEDPORT_STORE", settings.store)
    assert main(["gc-blobs", "--min-age", "0"]) == 0
    assert "1 unreferenced blob(s) deleted, 1 kept" in capsys.readouterr().out
    assert orphan not in set(store.blobs.keys())
    assert client.get(f"/fhir/Binary/{bid}", headers={"Accept": "application/pdf"}).data == b"kept"
    assert main(["gc-blobs"]) == 0            # young files are never touched by default
