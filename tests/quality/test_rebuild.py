"""`medport quality rebuild` recomputes the counters the write path keeps (quality/rebuild.py): from a
store whose facts were lost (or never recorded) it gives back exactly what incremental recording gave."""
from __future__ import annotations

from fhirserver import create_app
from fhirserver.cli import main
from fhirserver.interactions.common import new_id, prepare, store_delete, store_new_version
from fhirserver.quality.rebuild import rebuild
from tests.conftest import make_settings


def _put(ctx, tx, resource: dict, id: str | None = None):
    return store_new_version(tx, prepare(ctx, resource["resourceType"], resource), id or new_id(), "POST", None)


def _world(ctx) -> None:
    pid, gone = new_id(), new_id()
    coded = {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}
    with ctx.store.transaction() as tx:
        # records before their Patients (as a transaction Bundle may order them), one about nobody
        for subject in (pid, gone, "nobody"):
            _put(ctx, tx, {"resourceType": "Observation", "status": "final", "code": coded,
                           "subject": {"reference": f"Patient/{subject}"}})
        _put(ctx, tx, {"resourceType": "Patient"}, pid)
        _put(ctx, tx, {"resourceType": "Patient"}, gone)
        _put(ctx, tx, {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
                       "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}})
    with ctx.store.transaction() as tx:
        store_delete(ctx, tx, tx.read("Patient", gone))


def test_rebuild_gives_back_what_the_writes_recorded(ctx):
    _world(ctx)
    recorded = sorted(ctx.store.quality_counts())
    assert ("", "Observation", "no-uhid-subject", "", 2) in recorded
    ctx.store.quality_clear()
    assert ctx.store.quality_counts() == []
    assert rebuild(ctx, batch=2) == sum(n for c, t, d, k, n in recorded if d == "total")
    assert sorted(ctx.store.quality_counts()) == recorded
    rebuild(ctx)                                   # again: the same (never counted twice)
    assert sorted(ctx.store.quality_counts()) == recorded


def test_the_command(tmp_path, capsys):
    """On SQLite: the command opens the store anew (a mongomock store lives in its process alone)."""
    settings = make_settings(tmp_path, "sqlite")
    ctx = create_app(settings).config["MEDPORT"]
    _world(ctx)
    recorded = sorted(ctx.store.quality_counts())
    ctx.store.quality_clear()
    assert main(["quality", "rebuild", "--store", settings.store, "--base-url", settings.base_url]) == 0
    assert "done: the quality facts of" in capsys.readouterr().out
    assert sorted(ctx.store.quality_counts()) == recorded
