"""One rest-hook POST (Subscriptions backport IG, "rest-hook": an HTTP POST of the notification Bundle
to channel.endpoint, Content-Type application/fhir+json, each channel.header sent as a header).

The endpoint is resolved and checked by endpoint_guard.resolve and the connection goes to the checked
address (the Host header and the TLS server name stay the URL's host), so a second DNS answer is never
used. Redirects are not followed (a 3xx is a failed delivery), the timeout is the Subscription's
backport-timeout for the whole exchange (a watchdog shuts the socket at the deadline, so a receiver
answering a byte at a time cannot hold the worker), and at most MAX_RESPONSE_BYTES of the answer are read.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass

from . import endpoint_guard

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Med-Port-Subscriptions"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str          # the status line, or why it failed


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: endpoint_guard.Target, timeout: float, cut: threading.Event):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address, self._cut = target.address, cut

    def _open(self):
        """The socket to the checked address, kept on self.sock at once (the watchdog shuts it)."""
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        if self._cut.is_set():          # the deadline passed while connecting
            raise TimeoutError("the delivery's deadline passed")
        return self.sock

    def connect(self):
        self._open()


class _PinnedHTTPS(_PinnedHTTP):
    def __init__(self, target: endpoint_guard.Target, timeout: float, cut: threading.Event,
                 context: ssl.SSLContext):
        super().__init__(target, timeout, cut)
        self._context = context

    def connect(self):
        self.sock = self._context.wrap_socket(self._open(), server_hostname=self.host)


def post(url: str, body: bytes, headers: tuple[tuple[str, str], ...], timeout: float, allow_http_loopback: bool,
         resolver=socket.getaddrinfo, context: ssl.SSLContext | None = None) -> Outcome:
    try:
        target = endpoint_guard.resolve(url, allow_http_loopback, resolver)
    except endpoint_guard.Refused as e:
        return Outcome(False, f"refused: {e}")
    cut = threading.Event()
    conn = (_PinnedHTTPS(target, timeout, cut, context or ssl.create_default_context()) if target.scheme == "https"
            else _PinnedHTTP(target, timeout, cut))
    watchdog = threading.Timer(timeout, _cut, (conn, cut))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.putrequest("POST", target.path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Type", "application/fhir+json")
        conn.putheader("User-Agent", USER_AGENT)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException, ValueError) as e:
        status, error = 0, f"{type(e).__name__}: {e}"
    finally:
        watchdog.cancel()
        conn.close()
    if cut.is_set():            # whatever was read, the answer was cut short (it may read as complete)
        return Outcome(False, f"no complete answer within the {timeout} s timeout")
    if not status:
        return Outcome(False, error)
    if 200 <= status < 300:
        return Outcome(True, f"HTTP {status}")
    if 300 <= status < 400:
        return Outcome(False, f"HTTP {status}: redirects are not followed")
    return Outcome(False, f"HTTP {status}")


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """The deadline passed: a blocked send or receive on the connection ends at once."""
    cut.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
