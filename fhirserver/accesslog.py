"""Request ids and one structured (JSON) access-log line per request.

Query strings are not logged: they carry patient identifiers. Only the
parameter names are, which is enough to see what kind of query was made.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import select
import threading
import time
from collections import deque

import orjson

from .resources.response_headers import add_absent

log = logging.getLogger("medport.access")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


# os.urandom is a system call that lets go of the interpreter lock: each thread reads the bytes of 4096
# ids at once (64 KiB) into a pool of its own, so no lock is held across it. (One shared pool under a lock made
# the request threads of a busy worker queue on that lock: a thread refilling it gave the interpreter
# lock away while holding it, issue 16.) A forked child drops every pool: a worker must never repeat
# its parent's ids.
_POOL_IDS = 4096
_pools = threading.local()


def _drop_pools() -> None:
    global _pools
    _pools = threading.local()


os.register_at_fork(after_in_child=_drop_pools)


def _random16() -> bytes:
    pool = _pools.__dict__
    at = pool.get("at", 0)
    data = pool.get("bytes", b"")
    if at >= len(data):
        data, at = os.urandom(16 * _POOL_IDS), 0
        pool["bytes"] = data
    pool["at"] = at + 16
    return data[at:at + 16]


def new_request_id() -> str:
    """A random (version 4) UUID as 32 hex digits, as uuid.uuid4().hex (the same os.urandom bytes),
    at a fraction of its cost."""
    b = bytearray(_random16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def line(entry: dict) -> str:
    """The entry as json.dumps(entry, separators=(",", ":")) writes it (ASCII, \\u escapes), with
    orjson (issue 16: json.dumps was most of the log's cost); json.dumps itself for the rare entry
    that needs an escape, where the two spell it differently."""
    out = orjson.dumps(entry)
    if b"\\" in out or b"\x7f" in out or not out.isascii():
        return json.dumps(entry, separators=(",", ":"))
    return out.decode()


def configure(settings) -> None:
    _held.hold_for(settings.access_log_flush_s)


def start(req, here) -> None:
    """(Before a request: request_hooks.py.) Its id, the client's X-Request-Id when it is a plain
    token, and its start time, on g."""
    supplied = req.environ.get("HTTP_X_REQUEST_ID", "")    # as request.headers, without its KeyError
    here.request_id = supplied if supplied and _CLIENT_ID.match(supplied) else new_request_id()
    here.started = time.perf_counter()


def finish(response, req, here, names: set) -> None:
    """(After a request: request_hooks.py.) X-Request-Id on the response, and its line in the log.
    names: the lower-case header names of the response."""
    rid = here.get("request_id") or new_request_id()     # g.get: no AttributeError raised
    add_absent(response.headers, names, "X-Request-Id", rid)
    if not log.isEnabledFor(logging.INFO):
        return
    started = here.get("started")
    claims = here.get("token_claims") or {}
    emit(line({
        "request_id": rid,
        "method": req.method,
        "path": req.path,
        "params": sorted(set(req.args.keys())) if req.query_string else [],
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        "bytes": response.content_length,
        "remote": req.remote_addr,
        "client_id": claims.get("client_id"),      # who acted (SMART token), for the audit trail
        "user": claims.get("sub"),
        "patient": claims.get("patient"),
    }))


def emit(message: str) -> None:
    """log.info(message), already known to be enabled. When every handler the record would reach is a
    plain StreamHandler writing "%(message)s" (basicConfig's, the bench's) and nothing filters, the line
    is written to each stream under its handler's lock as StreamHandler.emit writes it, without a
    LogRecord (issue 16: the record's machinery was ~7% of a read); anything else (pytest's capture,
    a custom handler, a filter) gets the record as logging makes it."""
    handlers = _plain_handlers()
    if handlers is None:
        log.handle(_record(message))
        return
    if _held.seconds > 0:
        _held.add(handlers, message)
        return
    for handler in handlers:
        _write(handler, message + handler.terminator)


def _write(handler, text: str) -> None:
    """text to the handler's stream as StreamHandler.emit writes a record (its lock, its flush)."""
    with handler.lock:
        try:
            handler.stream.write(text)
            handler.flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(_record(text.rstrip("\n")))


class _Held:
    """Lines held for plain handlers and written together (settings.access_log_flush_s; nginx's access_log
    buffer=/flush=): a write(2) per line was about 5% of a read's CPU (issue 16). Written when HOLD_BYTES
    are held, by a timer thread `seconds` after the first held line, at exit, and before a fork (a child
    never writes its parent's lines), in pieces of whole lines up to PIPE_BUF (_pieces: no line cut on a
    pipe the workers share). Lines keep their order per handler.

    A request holds its line with one deque.append (atomic under the interpreter lock) and takes no lock:
    with a lock, a request thread that lost the interpreter lock while holding it made the worker's
    other request threads queue behind it (issue 16). One writer at a time; a request that finds the
    lines full while another thread writes leaves them to it and its successors, unless MAX_BYTES are
    held: then it waits to write them (a stalled log holds requests back, not memory)."""

    HOLD_BYTES = 64 * 1024
    MAX_BYTES = 4 * HOLD_BYTES

    def __init__(self):
        self.seconds = 0.0
        self._queue: deque = deque()    # (handlers, message), in the order held
        self._bytes = 0                 # held since the last write; a lost update only delays a write
        self._writing = threading.Lock()
        self._starting = threading.Lock()
        self._wake = threading.Event()
        self._timer = False

    def hold_for(self, seconds: float) -> None:
        self.seconds = min(max(0.0, float(seconds or 0.0)), 3600.0)     # inf would overflow Event.wait
        self._wake.set()                # a running timer writes what it holds and waits the new time

    def add(self, handlers: list, message: str) -> None:
        self._queue.append((handlers, message))
        self._bytes += len(message) + 1
        if not self._timer:
            self._start_timer()
        if self._bytes >= self.HOLD_BYTES:
            # past MAX_BYTES a writer is stuck (a stalled pipe): wait for it rather than hold without end
            self.write(wait=self._bytes >= self.MAX_BYTES)

    def write(self, wait: bool = True) -> None:
        """Write every held line, in order, one writer at a time (`wait=False`: not at all while another
        thread writes)."""
        if not self._writing.acquire(blocking=wait):
            return
        try:
            self._bytes = 0
            queue, lines = self._queue, {}
            for _ in range(len(queue)):
                handlers, message = queue.popleft()
                for handler in handlers:
                    lines.setdefault(handler, []).append(message + handler.terminator)
            for handler, texts in lines.items():
                for piece in _pieces(texts):
                    _write(handler, piece)
        finally:
            self._writing.release()

    def _start_timer(self) -> None:
        """This process's timer thread, started once (a forked child starts its own: reset_in_child)."""
        with self._starting:
            if self._timer:
                return
            self._timer = True
            self._wake.clear()
            threading.Thread(target=self._tick, name="medport-access-log", daemon=True).start()

    def _tick(self) -> None:
        while True:
            self._wake.wait(self.seconds or 1.0)
            self._wake.clear()
            try:
                self.write()
            except Exception:       # noqa: BLE001 - the handler reported it (handleError); keep writing
                pass

    def reset_in_child(self) -> None:
        self._writing, self._starting = threading.Lock(), threading.Lock()
        self._queue, self._bytes, self._timer = deque(), 0, False
        self._wake = threading.Event()


def _pieces(texts: list):
    """The held lines joined in pieces of whole lines of at most PIPE_BUF bytes (the lines are ASCII:
    line()). A write(2) of at most PIPE_BUF to a pipe is atomic (POSIX); a longer one may be interleaved
    with another writer's, and gunicorn's workers share one stdout pipe: one write per line never cut
    a line, one write of 64 KiB would."""
    piece, size = [], 0
    for text in texts:
        if piece and size + len(text) > _PIPE_BUF:
            yield "".join(piece)
            piece, size = [], 0
        piece.append(text)
        size += len(text)
    if piece:
        yield "".join(piece)


_PIPE_BUF = getattr(select, "PIPE_BUF", 512)      # POSIX's least
_held = _Held()
os.register_at_fork(before=_held.write, after_in_child=_held.reset_in_child)
atexit.register(_held.write)


def _record(message: str) -> logging.LogRecord:
    """log.info's record without its caller lookup (a stack walk per line; no format here shows it)."""
    return log.makeRecord(log.name, logging.INFO, "(unknown file)", 0, message, None, None)


def _plain_handlers() -> list | None:
    """The handlers an INFO record of the access log reaches (Logger.callHandlers' walk), or None when
    one of them, or a logger on the way, would do more than write the message to a stream."""
    if log.disabled or log.filters:
        return None
    found = []
    logger = log
    while logger is not None:
        if logger.filters:
            return None
        for handler in logger.handlers:
            if handler.level > logging.INFO:
                continue
            if type(handler) not in _PLAIN or handler.filters or handler.stream is None or handler.lock is None:
                return None
            formatter = handler.formatter or logging._defaultFormatter
            if type(formatter) is not logging.Formatter or type(formatter._style) is not logging.PercentStyle \
                    or formatter._fmt != "%(message)s" or formatter._style._defaults:
                return None
            found.append(handler)
        logger = logger.parent if logger.propagate else None
    return found or None       # no handler at all: logging's last resort decides


_PLAIN = (logging.StreamHandler, logging.FileHandler)
