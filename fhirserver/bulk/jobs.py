"""Export jobs in the store, shared by every server and worker process.

- record ("bulk-job", id): the job, written by the kick-off and then only by the lease holder;
- record ("bulk-lease", id): who runs it now (add if free, renew while running; a worker that dies
  loses it after LEASE_S and another one continues from the job's last saved file);
- record ("bulk-cancel", id): a DELETE of the status URL; the runner stops, files are removed;
- record ("bulk-poll", id): when the client last polled (429 when it polls faster than Retry-After).

A finished job keeps its files until its `expires` time; the worker then deletes files and record.
"""
from __future__ import annotations

import os
import socket
import time
import uuid

from ..smart_auth.stored_claims import owner_of

JOB, LEASE, CANCEL, POLL = "bulk-job", "bulk-lease", "bulk-cancel", "bulk-poll"
LEASE_S = 30.0
ACTIVE = ("queued", "running")


def new_job(store, *, claims: dict | None, request: dict, request_url: str, transaction_time: str,
            types: list[str], patients: list[str] | None, requires_token: bool) -> dict:
    job = {
        "id": uuid.uuid4().hex, "state": "queued", "created": time.time(),
        "client": owner_of(claims), "claims": claims, "request": request, "request_url": request_url,
        "transaction_time": transaction_time, "types": types, "patients": patients,
        "requires_token": requires_token,
        "progress": {"type_index": 0, "cursor": None, "deleted_done": False},
        "output": [], "error": [], "deleted": [],
    }
    store.put_record(JOB, job["id"], job)
    return job


def get(store, job_id: str) -> dict | None:
    if store.get_record(CANCEL, job_id) is not None:
        return None
    return store.get_record(JOB, job_id)


def save(store, job: dict) -> None:
    store.put_record(JOB, job["id"], job)


def active_of(store, client: dict) -> int:
    return sum(1 for _k, j in store.list_records(JOB) if j.get("client") == client and j.get("state") in ACTIVE
               and store.get_record(CANCEL, j["id"]) is None)


def cancel(store, job_id: str) -> None:
    store.put_record(CANCEL, job_id, {"at": time.time()})


def cancelled(store, job_id: str) -> bool:
    return store.get_record(CANCEL, job_id) is not None


def remove(store, job: dict) -> None:
    """Files first, then the record: a crash in between leaves a record whose clean-up runs again."""
    for item in job.get("output", []) + job.get("deleted", []) + job.get("error", []):
        if item.get("key"):
            try:
                store.blobs.delete(item["key"])
            except (FileNotFoundError, KeyError):
                pass
    for kind in (JOB, LEASE, POLL, CANCEL):
        store.delete_record(kind, job["id"])


def referenced_blobs(store) -> set[str]:
    """The files of every kept job (`medport gc-blobs` keeps them)."""
    return {item["key"] for _k, job in store.list_records(JOB)
            for item in job.get("output", []) + job.get("deleted", []) + job.get("error", []) if item.get("key")}


class Lease:
    """One job's lease for one worker: taken if free or expired, renewed while the job runs. kind: the
    record kind of the leases (subscription deliveries lease each subscription the same way)."""

    def __init__(self, store, job_id: str, owner: str | None = None, kind: str = LEASE):
        self.store, self.job_id, self.kind = store, job_id, kind
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.until = 0.0

    def acquire(self) -> bool:
        now = time.time()
        if self.store.add_record(self.kind, self.job_id, {"owner": self.owner}, expires_at=now + LEASE_S):
            self.until = now + LEASE_S
            return True
        return False

    def renew(self) -> bool:
        """Keep it (well before it runs out); False if another worker holds it now."""
        now = time.time()
        if self.until - now > LEASE_S * 2 / 3:
            return True
        held = self.store.get_record(self.kind, self.job_id)
        if held is None:                # it ran out (a long page on a busy machine): take it again if free
            return self.acquire()
        if held.get("owner") != self.owner:
            return False
        self.store.put_record(self.kind, self.job_id, {"owner": self.owner}, expires_at=now + LEASE_S)
        self.until = now + LEASE_S
        return True

    def release(self) -> None:
        held = self.store.get_record(self.kind, self.job_id)
        if held is not None and held.get("owner") == self.owner:
            self.store.delete_record(self.kind, self.job_id)
