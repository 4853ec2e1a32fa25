"""What every fuzz test shares: a seeded server with authorization on, a system/*.cruds token, a
request runner that bounds each request in time (a hang is a failure, not a stuck CI job), and the
checks every answer must pass: no 5xx, within the time bound, errors as OperationOutcome JSON."""
from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from dataclasses import dataclass

from tests.conftest import data_versions
from tests.smart_auth._tokens import auth, make_app, mint, seed

from ._budget import TIMEOUT_S

SYSTEM_SCOPE = "system/*.cruds"


class _LastError(logging.Handler):
    """Keeps the traceback the server logged for its last unhandled error (errorhandlers._unexpected)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self._guard = threading.Lock()
        self.text = ""

    def emit(self, record):
        if record.exc_info:       # the last frames only (a RecursionError has a thousand), the message cut short
            import traceback
            etype, value, tb = record.exc_info
            frames = "".join(traceback.format_tb(tb, limit=-6))
            # not str(value): some exceptions (jsonschema's ValidationError) print whole schemas, slowly
            message = getattr(value, "message", None) or (value.args[0] if value.args else "")
            text = f"{frames}{etype.__module__}.{etype.__name__}: {str(message)[:300]}"
        else:
            text = record.getMessage()
        with self._guard:
            self.text = text

    def take(self) -> str:
        with self._guard:
            text, self.text = self.text, ""
        return text


_ERRORS = _LastError()
logging.getLogger("medport.error").addHandler(_ERRORS)


def summary(traceback_text: str, lines: int = 6) -> str:
    """The end of a traceback: the frames nearest the error and the exception itself."""
    rows = [r for r in traceback_text.strip().splitlines() if r.strip()]
    return "\n".join(rows[-lines:])


class Bounded:
    """Runs each request on one worker thread and waits at most TIMEOUT_S. A request still running
    then is a hang: the test fails and the stuck thread is abandoned (a new worker takes over)."""

    def __init__(self):
        self._pool = self._new()

    @staticmethod
    def _new():
        return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fuzz-request")

    def run(self, fn, describe: str):
        started = time.monotonic()
        future = self._pool.submit(fn)
        try:
            result = future.result(timeout=TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            self._pool.shutdown(wait=False)
            self._pool = self._new()
            raise AssertionError(f"HANG: no answer within {TIMEOUT_S:g}s to {describe}") from None
        return result, time.monotonic() - started


@dataclass
class Server:
    app: object
    client: object
    token: str
    runner: Bounded

    @property
    def headers(self) -> dict:
        return auth(self.token)

    def request(self, method: str, url: str, *, body: bytes | str | None = None, content_type: str | None = None,
                headers: dict | None = None, authorized: bool = True):
        """One request through the test client, bounded in time and checked (check_answer)."""
        hdrs = dict(self.headers if authorized else {})
        if content_type:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        describe = describe_request(method, url, body, hdrs)
        _ERRORS.take()
        response, elapsed = self.runner.run(
            lambda: self.client.open(url, method=method, data=body, headers=hdrs), describe)
        check_answer(response.status_code, response.headers.get("Content-Type", ""), response.get_data(),
                     elapsed, describe, method)
        return response


def describe_request(method: str, url: str, body, headers: dict | None = None) -> str:
    shown = repr(body)
    shown = shown if len(shown) <= 2000 else shown[:2000] + "..."
    hdrs = {k: ("Bearer <system/*.cruds token>" if k.lower() == "authorization" else v)
            for k, v in (headers or {}).items()}
    return f"{method} {url}\n  headers: {hdrs}\n  body: {shown}"


def check_answer(status: int, content_type: str, data: bytes, elapsed: float, describe: str, method: str = "GET"):
    """No 5xx, within the time bound, and every error an OperationOutcome in JSON."""
    if status >= 500:
        tb = _ERRORS.take()
        raise AssertionError(f"SERVER ERROR {status} for {describe}\n  answer: {data[:500]!r}\n"
                             f"  traceback (end):\n{summary(tb)}")
    if elapsed > TIMEOUT_S:
        raise AssertionError(f"SLOW: {elapsed:.1f}s (bound {TIMEOUT_S:g}s) for {describe}")
    if status >= 400 and method != "HEAD":
        assert "json" in content_type, f"error {status} is not JSON ({content_type!r}) for {describe}"
        try:
            outcome = json.loads(data)
        except ValueError:
            raise AssertionError(f"error {status} body is not JSON for {describe}: {data[:300]!r}") from None
        assert isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome" \
            and outcome.get("issue"), f"error {status} is not an OperationOutcome for {describe}: {data[:300]!r}"


def make_server(directory) -> Server:
    """A server with authorization on, seeded with two patients' records (tests/smart_auth/_tokens.py)."""
    app = make_app(directory)
    token = mint(app, SYSTEM_SCOPE, subject="fuzz", client_id="fuzz")
    client = app.test_client()
    seed(client, token)
    return Server(app, client, token, Bounded())


def store_state(server: Server) -> tuple:
    """How many versions are stored and which is the newest (changes with any write), the audit trail
    left out: every request, a refused one too, leaves its AuditEvents (docs/audit.md). Read from the
    store itself, since a request to look would add its own."""
    ctx = server.app.config["MEDPORT"]
    cursor, newest = None, None
    while newest is None:
        page = ctx.store.history(None, limit=200, cursor=cursor)
        newest = next(((v.type, v.id, v.version, v.method) for v in page.items if v.type != "AuditEvent"), None)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return data_versions(ctx), newest
