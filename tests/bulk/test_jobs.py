"""Export job leases (fhirserver/bulk/jobs.py): one holder at a time; a holder whose lease ran out
while nobody took it over takes it back; a lease another worker holds is lost for good."""
from __future__ import annotations

from fhirserver.bulk import jobs


def test_a_lease_has_one_holder(ctx):
    a, b = jobs.Lease(ctx.store, "job-1"), jobs.Lease(ctx.store, "job-1")
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire()


def test_a_lapsed_lease_is_taken_back_if_free(ctx):
    a = jobs.Lease(ctx.store, "job-2")
    assert a.acquire()
    ctx.store.delete_record(jobs.LEASE, "job-2")      # it ran out: a slow page on a busy machine
    a.until = 0
    assert a.renew()
    assert ctx.store.get_record(jobs.LEASE, "job-2")["owner"] == a.owner


def test_a_lease_taken_over_is_lost(ctx):
    a, b = jobs.Lease(ctx.store, "job-3"), jobs.Lease(ctx.store, "job-3")
    assert a.acquire()
    ctx.store.delete_record(jobs.LEASE, "job-3")
    assert b.acquire()
    a.until = 0
    assert not a.renew()
