"""Which rest-hook endpoints the server may call (server-side request forgery guard; OWASP SSRF
Prevention Cheat Sheet, "Case 2: the application can send requests to ANY external IP address or
domain name"; docs/subscriptions.md, "Endpoint rules").

- https only; plain http only to a loopback host, and only when the setting
  subscription_allow_http_loopback is on (tests and local development; off by default);
- no user:password@ in the URL; a host is required;
- the host's addresses are checked when the Subscription is written (a literal address in any form
  the resolver reads: dotted, decimal 2130706433, hex 0x7f000001, octal, short 127.1, IPv6, IPv4-mapped
  IPv6) and resolved again at every delivery: every address must be public (not loopback unless the
  setting allows it, not RFC 1918 private, link-local 169.254/16 with the 169.254.169.254 metadata
  service, CGNAT 100.64/10, 0.0.0.0/8, multicast, reserved, IPv6 ULA fc00::/7, ::1, fe80::/10, nor
  an IPv4-mapped, NAT64 or 6to4 form of those; no IPv4-compatible ::/96, IPv4-translated
  ::ffff:0:0:0/96 or local-use NAT64 64:ff9b:1::/48 address at all); the delivery then connects to the checked address
  itself (transport.py), never resolving the name a second time (DNS rebinding).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from ..errors import BadRequest

# (an address is never in a network of the other IP version: one table serves both)
_NAMED = tuple((ipaddress.ip_network(net), why) for net, why in (
    ("0.0.0.0/8", "the 'this network' range 0.0.0.0/8"),
    ("10.0.0.0/8", "the private range 10.0.0.0/8 (RFC 1918)"),
    ("100.64.0.0/10", "the carrier-grade NAT range 100.64.0.0/10"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "the link-local range 169.254.0.0/16 (cloud metadata services)"),
    ("172.16.0.0/12", "the private range 172.16.0.0/12 (RFC 1918)"),
    ("192.168.0.0/16", "the private range 192.168.0.0/16 (RFC 1918)"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::1/128", "a loopback address"),
    ("::/128", "the unspecified address"),
    ("::/96", "an IPv4-compatible IPv6 address (::/96, deprecated)"),
    ("::ffff:0:0:0/96", "an IPv4-translated IPv6 address (::ffff:0:0:0/96, SIIT)"),
    ("64:ff9b:1::/48", "the local-use NAT64 range 64:ff9b:1::/48 (RFC 8215)"),
    ("fc00::/7", "an IPv6 unique local address (fc00::/7)"),
    ("fe80::/10", "an IPv6 link-local address (fe80::/10)"),
    ("ff00::/8", "a multicast address"),
))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-FxX.]+$")

Resolver = Callable[..., list]


class Refused(Exception):
    """The endpoint may not be called now (its address is not public, or it cannot be resolved)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str            # the name as written (Host header, TLS server name)
    port: int
    address: str         # the checked address to connect to
    path: str            # path and query


def forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    """Why a delivery may not go to this address, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            why = forbidden(embedded, allow_loopback)
            return f"{why} (in IPv6 form)" if why else None
    if allow_loopback and ip.is_loopback:
        return None
    for network, why in _NAMED:
        if ip in network:
            return why
    if not ip.is_global:
        return "an address that is not public"
    return None


def literal_address(host: str):
    """The address a host names literally, in any form the system resolver accepts, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _split(url: str, allow_http_loopback: bool):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BadRequest(f"Subscription.channel.endpoint {url!r} is not a valid URL: {e}") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise BadRequest(f"Subscription.channel.endpoint {url!r} must be an https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("Subscription.channel.endpoint must not carry a user name or password")
    if parts.scheme == "http" and not (allow_http_loopback and _loopback_host(host)):
        raise BadRequest(f"Subscription.channel.endpoint {url!r} must use https (plain http is accepted only to "
                         "a loopback host when subscription_allow_http_loopback is on)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    ip = literal_address(host)
    return ip is not None and ip.is_loopback


def check_syntax(url: str, allow_http_loopback: bool) -> None:
    """At create/update time: 400 for a URL the server will never call (without resolving names)."""
    _scheme, host, _port, _path = _split(url, allow_http_loopback)
    ip = literal_address(host)
    why = forbidden(ip, allow_http_loopback) if ip is not None else None
    if why:
        raise BadRequest(f"Subscription.channel.endpoint {url!r} names {why}: the server does not call it")


def resolve(url: str, allow_http_loopback: bool, resolver: Resolver = socket.getaddrinfo) -> Target:
    """At delivery time: the URL checked again and its host resolved; every address must be allowed
    (Refused otherwise); the first is the one to connect to."""
    try:
        scheme, host, port, path = _split(url, allow_http_loopback)
    except BadRequest as e:
        raise Refused(str(e)) from None
    try:
        answers = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise Refused(f"{host} cannot be resolved: {e}") from None
    addresses = []
    for answer in answers:
        ip = ipaddress.ip_address(answer[4][0].split("%")[0])
        why = forbidden(ip, allow_http_loopback)
        if why:
            raise Refused(f"{host} resolves to {ip}, {why}: the server does not call it")
        if scheme == "http" and not ip.is_loopback:
            raise Refused(f"{host} resolves to {ip}: plain http goes to loopback addresses only")
        addresses.append(str(ip))
    if not addresses:
        raise Refused(f"{host} has no address")
    return Target(scheme, host, port, addresses[0], path)
