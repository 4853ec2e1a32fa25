"""Durability across shutdowns: graceful (SIGTERM to the gunicorn master) and crash (SIGKILL to the group).

Several client threads POST Patients in a loop and record every 201 they hear.
After the server goes down and a new one starts on the same store, every
acknowledged write must be there, with the content that was sent.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import requests

from ._server import FHIR_JSON, JSON_HEADERS, STOP_TIMEOUT, TIMEOUT, session

THREADS = 6
MAX_PER_THREAD = 400        # bounds the load whatever happens
MIN_ACKED = 40              # writes acknowledged before the server is stopped


class WriteLoad:
    def __init__(self, base: str, threads: int = THREADS):
        self.base = base
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: dict[str, str] = {}           # id -> marker sent
        self.statuses: Counter = Counter()
        self.conn_errors = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT + 5)

    def _run(self, n: int) -> None:
        s = requests.Session()
        for k in range(MAX_PER_THREAD):
            if self.stop.is_set():
                return
            marker = f"t{n}-{k}"
            body = {"resourceType": "Patient", "active": True,
                    "identifier": [{"system": "urn:medport:load", "value": marker}],
                    "name": [{"family": "Load", "given": [marker]}]}
            try:
                r = s.post(f"{self.base}/Patient", data=json.dumps(body), headers=JSON_HEADERS, timeout=TIMEOUT)
            except requests.RequestException:
                with self.lock:
                    self.conn_errors += 1
                time.sleep(0.02)
                continue
            with self.lock:
                self.statuses[r.status_code] += 1
                if r.status_code == 201:
                    self.acked[r.json()["id"]] = marker

    def wait_for(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.acked) >= n:
                    return
            if not any(t.is_alive() for t in self.threads):
                break
            time.sleep(0.02)
        raise AssertionError(f"only {len(self.acked)} writes acknowledged; statuses {self.statuses}")


def _check_all_present(base: str, acked: dict[str, str]) -> None:
    s = session()
    missing, wrong = [], []
    for pid, marker in acked.items():
        r = s.get(f"{base}/Patient/{pid}", timeout=TIMEOUT)
        if r.status_code != 200:
            missing.append((pid, r.status_code))
        elif r.json()["name"][0]["given"] != [marker]:
            wrong.append((pid, marker, r.json()["name"]))
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost: {missing[:5]}"
    assert not wrong, f"acknowledged writes with other content: {wrong[:5]}"


class SlowUpload:
    """A raw Binary upload streamed over ~2 s: it is in flight when SIGTERM arrives and must complete."""

    CHUNKS, CHUNK, PAUSE = 10, 64 * 1024, 0.2

    def __init__(self, base: str):
        self.base = base
        self.data = os.urandom(self.CHUNKS * self.CHUNK)
        self.started = threading.Event()
        self.response = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _body(self):
        for i in range(self.CHUNKS):
            yield self.data[i * self.CHUNK:(i + 1) * self.CHUNK]
            if i == 1:
                self.started.set()
            time.sleep(self.PAUSE)

    def _run(self):
        try:
            self.response = requests.post(f"{self.base}/Binary", data=self._body(), timeout=TIMEOUT,
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Prefer": "return=minimal"})
        except requests.RequestException as e:
            self.error = e
        finally:
            self.started.set()


def test_sigterm_is_graceful_and_keeps_every_acknowledged_write(server_factory, tmp_path):
    store = tmp_path / "store.db"
    srv = server_factory(store)
    with WriteLoad(srv.base) as load:
        load.wait_for(MIN_ACKED)
        upload = SlowUpload(srv.base)
        assert upload.started.wait(TIMEOUT)
        srv.proc.send_signal(signal.SIGTERM)          # the gunicorn master
        try:
            rc = srv.proc.wait(STOP_TIMEOUT)
        except Exception:
            raise AssertionError(f"the server did not exit within {STOP_TIMEOUT} s of SIGTERM:\n{srv.log()[-4000:]}")
    assert rc == 0, f"exit code {rc}:\n{srv.log()[-4000:]}"
    deadline = time.monotonic() + 5
    while srv.group_alive() and time.monotonic() < deadline:     # workers go with the master
        time.sleep(0.05)
    assert not srv.group_alive(), "worker processes outlived the master"
    assert not [c for c in load.statuses if c >= 500], load.statuses
    assert len(load.acked) >= MIN_ACKED
    upload.thread.join(TIMEOUT)
    assert upload.error is None, f"the in-flight upload was cut off by SIGTERM: {upload.error!r}"
    assert upload.response.status_code == 201, upload.response.text

    again = server_factory(store)
    _check_all_present(again.base, load.acked)
    bid = upload.response.headers["Location"].split("/")[-3]
    r = requests.get(f"{again.base}/Binary/{bid}", headers={"Accept": "application/octet-stream"},
                     timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == upload.data


def test_sigkill_loses_no_acknowledged_write(server_factory, tmp_path):
    store = tmp_path / "store.db"
    srv = server_factory(store)
    with WriteLoad(srv.base) as load:
        load.wait_for(MIN_ACKED)
        srv.kill()                                    # SIGKILL to master and workers at once, mid-load
    assert not [c for c in load.statuses if c >= 500], load.statuses

    again = server_factory(store)
    _check_all_present(again.base, load.acked)
    # the restarted server takes writes again
    r = requests.post(f"{again.base}/Patient", data=json.dumps({"resourceType": "Patient"}),
                      headers={"Content-Type": FHIR_JSON}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
