"""The background worker (`medport worker`; `medport serve` starts one unless MEDPORT_WORKER=off).

Each round: remove expired and cancelled exports, then lease and run queued ones, one at a time.
Any number of workers, on any machines sharing the store, share the queue through the leases
(jobs.Lease); a job whose worker died is taken over from its last saved file.
"""
from __future__ import annotations

import logging
import threading
import time

from ..errors import FhirError, StoreUnavailable
from . import jobs, run

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, ctx):
        self.ctx = ctx          # a ServerContext (unrestricted): each job runs with its client's access

    def run_once(self) -> int:
        """One round; returns how many jobs ran to their end."""
        store, finished = self.ctx.store, 0
        for _key, job in store.list_records(jobs.JOB):
            if self._clean(job):
                continue
            if job.get("state") not in jobs.ACTIVE:
                continue
            lease, current = jobs.Lease(store, job["id"]), job
            if not lease.acquire():
                continue
            try:
                # as the last holder left it
                current = store.get_record(jobs.JOB, job["id"]) or job
                if current.get("state") in jobs.ACTIVE and not jobs.cancelled(store, job["id"]):
                    run.run(self.ctx, current, lease)
                    finished += 1
            except run.Stopped:
                if jobs.cancelled(store, job["id"]):
                    jobs.remove(store, store.get_record(jobs.JOB, job["id"]) or job)
            except StoreUnavailable:
                log.warning("export %s paused: the store is unavailable; it continues later", job["id"])
            except FhirError as e:          # the client lost its rights, a Group vanished, a query is refused
                run.fail(store, current, str(e), self.ctx.settings)
            except Exception:               # noqa: BLE001 - recorded on the job; the worker goes on
                log.exception("export %s failed", job["id"])
                run.fail(store, current, "The export failed on the server; see the server log", self.ctx.settings)
            finally:
                lease.release()
        return finished

    def _clean(self, job: dict) -> bool:
        """Remove a job whose files expired, or a cancelled one nobody runs; True if removed."""
        store, now = self.ctx.store, time.time()
        expired = job.get("expires") is not None and job["expires"] <= now
        abandoned = jobs.cancelled(store, job["id"]) and store.get_record(jobs.LEASE, job["id"]) is None
        if expired or abandoned:
            jobs.remove(store, job)
            return True
        return False

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:               # noqa: BLE001 - the next round tries again
                log.exception("worker round failed")
            stop.wait(self.ctx.settings.worker_poll_s)
