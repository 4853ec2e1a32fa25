"""The access log: one JSON line per request with the same fields and spelling as json.dumps wrote
them (issue 16 moved it to orjson), and request ids shaped as uuid4().hex."""
from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import uuid

import pytest

from fhirserver import accesslog
from fhirserver.accesslog import line, new_request_id
from tests._threads import run_clients

FIELDS = ["request_id", "method", "path", "params", "status", "duration_ms", "bytes", "remote", "client_id",
          "user", "patient"]


def test_one_line_per_request_with_every_field(client, caplog):
    with caplog.at_level(logging.INFO, logger="medport.access"):
        client.get("/fhir/Patient/nope?name=x&_count=2&name=y", headers={"X-Request-Id": "req-1"})
        client.get("/fhir/metadata")
    lines = [r.getMessage() for r in caplog.records if r.name == "medport.access"]
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert list(first) == FIELDS
    assert first["request_id"] == "req-1" and first["method"] == "GET" and first["path"] == "/fhir/Patient/nope"
    assert first["params"] == ["_count", "name"] and first["status"] == 404
    assert isinstance(first["duration_ms"], float) and first["bytes"] > 0
    assert second["params"] == [] and second["status"] == 200 and len(second["request_id"]) == 32
    assert lines[0] == json.dumps(first, separators=(",", ":"))


def test_lines_are_spelled_as_json_dumps_spelled_them():
    base = {"request_id": "a" * 32, "method": "GET", "path": "/fhir/Patient/x", "params": ["_id"], "status": 200,
            "duration_ms": 12.5, "bytes": None, "remote": "127.0.0.1", "client_id": None, "user": None,
            "patient": None}
    for path in ("/fhir/Patient/x", "/fhir/Pati\u00e9nt", "/fhir/\u0001\x7f\"q\"\\", "/fhir/\u2028\ud7ff", ""):
        for duration in (0.0, 0.01, 1234567.89, 3.0):
            entry = {**base, "path": path, "duration_ms": duration}
            assert line(entry) == json.dumps(entry, separators=(",", ":"))


def test_generated_request_ids_are_uuid4_hex():
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        assert len(rid) == 32 and uuid.UUID(hex=rid).version == 4 and uuid.UUID(hex=rid).hex == rid


@pytest.fixture
def plain_stream():
    """The access log written by a plain StreamHandler alone (as under `medport serve`: basicConfig's
    handler), so the direct write path is the one taken. Installed when the test calls it: pytest
    attaches its capture handlers once fixtures are set up."""
    access = logging.getLogger("medport.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = access.handlers[:], access.propagate, access.level, accesslog._held.seconds

    def alone(hold_s: float = 0.0):
        access.handlers[:], access.propagate = [handler], False
        access.setLevel(logging.INFO)
        accesslog._held.hold_for(hold_s)
        return stream, handler
    yield alone
    accesslog._held.write()
    access.handlers[:], access.propagate = saved[0], saved[1]
    access.setLevel(saved[2])
    accesslog._held.hold_for(saved[3])


def test_a_plain_stream_handler_gets_the_line_as_logging_writes_it(client, plain_stream):
    stream, handler = plain_stream()
    assert accesslog._plain_handlers() == [handler]
    client.get("/fhir/Patient/nope?name=x", headers={"X-Request-Id": "req-2"})
    written = stream.getvalue()
    assert written.endswith("\n") and written.count("\n") == 1
    entry = json.loads(written)
    assert list(entry) == FIELDS and entry["request_id"] == "req-2" and entry["status"] == 404
    assert written == json.dumps(entry, separators=(",", ":")) + "\n"
    # the same message through logging's own path: the same bytes
    accesslog.emit(written[:-1])
    handler.addFilter(lambda record: True)
    assert accesslog._plain_handlers() is None
    accesslog.emit(written[:-1])
    assert stream.getvalue() == written * 3


def test_anything_but_a_plain_message_format_takes_the_logging_path(plain_stream):
    stream, handler = plain_stream()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    assert accesslog._plain_handlers() is None
    accesslog.emit("m")
    handler.setFormatter(None)          # logging's default formatter: the message alone
    assert accesslog._plain_handlers() == [handler]
    accesslog.emit("n")
    handler.setLevel(logging.WARNING)   # a handler above INFO gets nothing, as from logging
    accesslog.emit("o")
    logging.getLogger("medport.access").addFilter(lambda record: False)
    handler.setLevel(logging.INFO)
    accesslog.emit("p")
    logging.getLogger("medport.access").filters.clear()
    assert stream.getvalue() == "INFO m\nn\n"


def test_held_lines_are_written_together_with_the_same_bytes(client, plain_stream):
    stream, handler = plain_stream(hold_s=3600)
    client.get("/fhir/Patient/nope?name=x", headers={"X-Request-Id": "held-1"})
    client.get("/fhir/metadata", headers={"X-Request-Id": "held-2"})
    assert stream.getvalue() == ""              # held: one write for both, later
    accesslog._held.write()
    first, second = stream.getvalue().splitlines(keepends=True)
    assert json.loads(first)["request_id"] == "held-1" and json.loads(second)["request_id"] == "held-2"
    assert first == json.dumps(json.loads(first), separators=(",", ":")) + "\n"
    accesslog._held.write()
    assert stream.getvalue().count("\n") == 2   # written once


def test_held_lines_are_written_at_64_kib_and_by_the_timer(plain_stream):
    stream, _handler = plain_stream(hold_s=3600)
    message = "x" * 1023
    for _ in range(63):
        accesslog.emit(message)
    assert stream.getvalue() == ""
    accesslog.emit(message)                     # the 64th KiB
    assert stream.getvalue() == (message + "\n") * 64
    accesslog._held.hold_for(0.05)
    accesslog.emit("late")
    for _ in range(200):                        # the timer thread writes it without any further call
        if stream.getvalue().endswith("late\n"):
            break
        time.sleep(0.05)
    assert stream.getvalue() == (message + "\n") * 64 + "late\n"


def test_lines_held_by_many_threads_are_each_written_once_in_order(plain_stream):
    """Request threads hold their lines without a lock, and cross the 64 KiB mark while another
    thread writes: every line comes out once, each thread's in the order it held them."""
    stream, _handler = plain_stream(hold_s=3600)

    def client(k):
        for n in range(1500):
            accesslog.emit(f"{k}:{n}:" + "y" * 90)

    assert run_clients(client, count=6)
    accesslog._held.write()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6 * 1500
    for k in range(6):
        assert [int(x.split(":")[1]) for x in lines if x.startswith(f"{k}:")] == list(range(1500))


def test_a_stalled_log_holds_requests_back_not_memory(plain_stream):
    """While a write is stuck (a full pipe), requests hold their lines up to MAX_BYTES, then wait."""
    stream, handler = plain_stream(hold_s=3600)
    release = threading.Event()

    class Stalled(io.StringIO):
        def write(self, text):
            release.wait(30)
            return super().write(text)

    handler.setStream(Stalled())
    accesslog.emit("first")
    stuck = threading.Thread(target=accesslog._held.write)     # the timer's write, stuck on the pipe
    stuck.start()
    time.sleep(0.1)
    line_text = "z" * 1023
    done = threading.Event()

    def request_thread():
        for _ in range(1000):       # ~1 MiB, four times MAX_BYTES
            accesslog.emit(line_text)
        done.set()

    requests_ = threading.Thread(target=request_thread)
    requests_.start()
    try:
        time.sleep(0.5)
        held = sum(len(message) + 1 for _, message in list(accesslog._held._queue))
        assert not done.is_set() and held <= accesslog._Held.MAX_BYTES + 1024
    finally:
        release.set()
    stuck.join(30)
    requests_.join(30)
    accesslog._held.write()
    assert handler.stream.getvalue().count("\n") == 1001


def test_held_lines_are_written_in_whole_lines_of_at_most_pipe_buf(plain_stream):
    """Workers share one stdout pipe: a write(2) of at most PIPE_BUF to a pipe is atomic (POSIX), a longer
    one may be interleaved with another process's, cutting lines. Held lines go out in such pieces."""
    import select

    class Writes(io.StringIO):
        def __init__(self):
            super().__init__()
            self.writes = []

        def write(self, text):
            self.writes.append(text)
            return super().write(text)

    _stream, handler = plain_stream(hold_s=3600)
    writes = Writes()
    handler.setStream(writes)
    lines = [f"{n:04d}" + "x" * 295 for n in range(150)]
    for text in lines:
        accesslog.emit(text)
    accesslog._held.write()
    assert writes.getvalue() == "".join(t + "\n" for t in lines)
    assert len(writes.writes) < 20
    assert all(len(w.encode()) <= select.PIPE_BUF and w.endswith("\n") for w in writes.writes)


def test_the_hold_is_bounded():
    saved = accesslog._held.seconds
    try:
        for asked, held in ((float("inf"), 3600.0), (-1, 0.0), (float("nan"), 0.0), (0.5, 0.5)):
            accesslog._held.hold_for(asked)
            assert accesslog._held.seconds == held
    finally:
        accesslog._held.hold_for(saved)


def test_a_fork_writes_the_parents_held_lines_once(tmp_path, plain_stream):
    _stream, handler = plain_stream(hold_s=3600)
    path = tmp_path / "access.log"
    handler.setStream(open(path, "a"))
    accesslog.emit("parent")
    pid = os.fork()
    if pid == 0:                                # the child holds none of its parent's lines
        accesslog.emit("child")
        accesslog._held.write()
        handler.stream.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    accesslog._held.write()
    handler.stream.close()
    assert path.read_text() == "parent\nchild\n"


def test_a_forked_worker_never_repeats_its_parents_request_ids():
    new_request_id()        # the parent has random bytes in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != new_request_id()
