"""The primary integrator (the background worker's) and the standby ones (the web workers'): a standby
integrates only while no primary beats, and hands the lease back when one does (audit_log/log.py)."""
from __future__ import annotations

from fhirserver.audit_log import journal
from fhirserver.audit_log import log as audit_log

from .test_journal import BASE, an_event


def logged(store) -> int:
    return audit_log.tail(store)[0]


def test_a_standby_integrates_while_no_primary_beats(ctx):
    journal.append(ctx.store, [an_event(1)])
    standby = audit_log.Integrator(ctx.store, ctx.settings, role="standby")
    assert standby.run_once() >= 1 and logged(ctx.store) >= 1


def test_a_standby_stands_by_for_a_live_primary_and_gives_the_lease_back(ctx):
    store, settings = ctx.store, ctx.settings
    standby = audit_log.Integrator(store, settings, role="standby")
    primary = audit_log.Integrator(store, settings, role="primary")
    journal.append(store, [an_event(1)])
    assert standby.run_once() >= 1                       # no primary yet: the standby holds the lease
    assert store.get_record(audit_log.STATE_KIND, "lease")["owner"] == standby.owner
    journal.append(store, [an_event(2)])
    before = logged(store)
    assert primary.run_once() == 0                       # the lease is the standby's: the primary beats
    assert store.get_record(audit_log.STATE_KIND, "primary")["owner"] == primary.owner
    assert standby.run_once() == 0                       # a primary beats: it stands by, lease released
    assert store.get_record(audit_log.STATE_KIND, "lease") is None
    assert primary.run_once() >= 1 and logged(store) > before     # the primary integrates from here
    journal.append(store, [an_event(3)])
    assert standby.run_once() == 0 and primary.run_once() >= 1


def test_a_silent_primary_is_replaced(ctx, monkeypatch):
    store, settings = ctx.store, ctx.settings
    primary = audit_log.Integrator(store, settings, role="primary")
    standby = audit_log.Integrator(store, settings, role="standby")
    journal.append(store, [an_event(1)])
    assert primary.run_once() >= 1
    journal.append(store, [an_event(2)])
    clock = audit_log.time.time() + audit_log.LEASE_S + 1      # the primary died: beat and lease run out
    monkeypatch.setattr(audit_log.time, "time", lambda: clock)
    assert standby.run_once() >= 1
    assert store.get_record(audit_log.STATE_KIND, "lease")["owner"] == standby.owner


def test_the_background_worker_runs_the_primary_and_the_app_a_standby(monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr(audit_log, "start_thread", lambda store, settings, role=None: started.append(role))
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    from fhirserver import cli_worker, create_app
    from fhirserver.config import Settings
    settings = Settings(store=f"sqlite:///{tmp_path}/s.db", base_url=BASE, auth="off")
    create_app(settings)
    monkeypatch.setattr("fhirserver.worker_rounds.Rounds.run_forever", lambda self, stop=None: None)
    monkeypatch.setattr(cli_worker.signal, "signal", lambda *a: None)
    cli_worker.run(settings)
    assert started == ["standby", "primary"]
    started.clear()
    cli_worker.run(Settings(store=f"sqlite:///{tmp_path}/s.db", base_url=BASE, auth="off", audit_integrator="off"))
    assert started == []


def test_a_background_round_drains_a_bounded_number_and_the_next_goes_on(ctx, monkeypatch):
    monkeypatch.setattr(audit_log, "ROUND_EVENTS", 3)
    for n in range(7):
        journal.append(ctx.store, [an_event(n)])
    integrator = audit_log.Integrator(ctx.store, ctx.settings, role="primary")
    integrator.run_once(audit_log.ROUND_EVENTS)
    assert len(ctx.store.journal_read(100)) == 4           # 3 drained (in whole batches of the journal's reads)
    integrator.run_once(audit_log.ROUND_EVENTS)
    integrator.run_once(audit_log.ROUND_EVENTS)
    assert ctx.store.journal_read(100) == []


def test_a_retried_append_keeps_its_ids(ctx):
    event = an_event(1)
    journal.append(ctx.store, [event])
    first = event["id"]
    journal.append(ctx.store, [event])                    # as group_commit retries after a doubtful failure
    assert event["id"] == first
    journal.drain(ctx.store, BASE)
    assert [v.id for v in ctx.store.history("AuditEvent", limit=100).items].count(first) == 1
