"""One rest-hook POST (Subscriptions backport IG, "rest-hook": an HTTP POST of the notification Bundle
to channel.endpoint, Content-Type application/fhir+json, each channel.header sent as a header).

The endpoint is resolved and checked by endpoint_guard.resolve and the connection goes to the checked
address (the Host header and the TLS server name stay the URL's host), so a second DNS answer is never
used. Redirects are not followed (a 3xx is a failed delivery), the timeout is the Subscription's
backport-timeout, and at most MAX_RESPONSE_BYTES of the answer are read.
"""
from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from . import endpoint_guard

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Med-Port-Subscriptions"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str          # the status line, or why it failed


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: endpoint_guard.Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: endpoint_guard.Target, timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: tuple[tuple[str, str], ...], timeout: float, allow_http_loopback: bool,
         resolver=socket.getaddrinfo, context: ssl.SSLContext | None = None) -> Outcome:
    try:
        target = endpoint_guard.resolve(url, allow_http_loopback, resolver)
    except endpoint_guard.Refused as e:
        return Outcome(False, f"refused: {e}")
    conn = (_PinnedHTTPS(target, timeout, context or ssl.create_default_context()) if target.scheme == "https"
            else _PinnedHTTP(target, timeout))
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
        return Outcome(False, f"{type(e).__name__}: {e}")
    finally:
        conn.close()
    if 200 <= status < 300:
        return Outcome(True, f"HTTP {status}")
    if 300 <= status < 400:
        return Outcome(False, f"HTTP {status}: redirects are not followed")
    return Outcome(False, f"HTTP {status}")
