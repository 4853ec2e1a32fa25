"""The SSRF guard (fhirserver/subscriptions/endpoint_guard.py, transport.py): every refused address
form, at create time (literal addresses) and at delivery time (what the name resolves to then), and
the delivery connecting to the checked address without following redirects."""
from __future__ import annotations

import ipaddress
import socket

import pytest

from fhirserver.errors import BadRequest
from fhirserver.subscriptions import endpoint_guard, transport

from ._world import Receiver, loopback_resolver

# (address as the resolver answers it, or as written in the URL) -> refused?
REFUSED = [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254",
    "169.254.1.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "192.0.2.1",
    # IPv4-compatible (::/96), IPv4-translated (SIIT, ::ffff:0:0:0/96) and local-use NAT64 (64:ff9b:1::/48)
    # forms: a translator on the path delivers them to the IPv4 address inside
    "::7f00:1", "::a9fe:a9fe", "::ffff:0:7f00:1", "::ffff:0:a00:1", "64:ff9b:1::7f00:1", "64:ff9b:1:a00:1::",
]
ALLOWED = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "100.128.0.1", "172.32.0.1"]
# literal forms in a URL that the system resolver reads as an IPv4 address
SPELLINGS = {"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1", "127.1": "127.0.0.1",
             "0xa9.0xfe.0xa9.0xfe": "169.254.169.254", "3232235777": "192.168.1.1", "[::ffff:7f00:1]": "127.0.0.1"}


def resolver_to(*addresses):
    def resolve(host, port, type=0, **_kw):
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [(family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]
    return resolve


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address):
    ip = ipaddress.ip_address(address)
    assert endpoint_guard.forbidden(ip, allow_loopback=False)
    with pytest.raises(endpoint_guard.Refused):
        endpoint_guard.resolve("https://hooks.example.org/x", False, resolver_to(address))
    with pytest.raises(BadRequest):
        endpoint_guard.check_syntax(f"https://{'[' + address + ']' if ip.version == 6 else address}/x", False)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_called_at_the_checked_address(address):
    target = endpoint_guard.resolve("https://hooks.example.org:8443/a/b?c=d", False, resolver_to(address))
    assert (target.host, target.port, target.address, target.path) == ("hooks.example.org", 8443, address, "/a/b?c=d")


@pytest.mark.parametrize("spelled,means", SPELLINGS.items())
def test_other_spellings_of_private_addresses(spelled, means):
    ip = endpoint_guard.literal_address(spelled)
    assert str(ip.ipv4_mapped if ip.version == 6 else ip) == means
    with pytest.raises(BadRequest):
        endpoint_guard.check_syntax(f"https://{spelled}/x", False)
    with pytest.raises(endpoint_guard.Refused):         # the real resolver reads it the same way
        endpoint_guard.resolve(f"https://{spelled}/x", False)


def test_one_private_answer_among_public_ones_is_refused():
    with pytest.raises(endpoint_guard.Refused):
        endpoint_guard.resolve("https://hooks.example.org/x", False, resolver_to("8.8.8.8", "10.0.0.1"))


def test_loopback_only_with_the_setting_and_http_only_to_loopback():
    assert endpoint_guard.forbidden(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert endpoint_guard.forbidden(ipaddress.ip_address("10.0.0.1"), allow_loopback=True)
    assert endpoint_guard.resolve("http://localhost:9/x", True, resolver_to("127.0.0.1")).address == "127.0.0.1"
    with pytest.raises(endpoint_guard.Refused):           # a name that is not loopback, rebinding to public
        endpoint_guard.resolve("http://localhost:9/x", True, resolver_to("8.8.8.8"))
    with pytest.raises(endpoint_guard.Refused):
        endpoint_guard.resolve("http://hooks.example.org/x", True, resolver_to("127.0.0.1"))


def test_a_name_resolving_to_loopback_is_refused_and_nothing_is_sent():
    receiver = Receiver()
    try:
        url = f"https://receiver.test:{receiver.port}/hook"
        outcome = transport.post(url, b"{}", (), 2, False, resolver=loopback_resolver)
        assert not outcome.ok and "loopback" in outcome.detail
        assert receiver.received == []
    finally:
        receiver.close()


def test_redirects_are_not_followed():
    target = Receiver()
    redirecting = Receiver(status=307, location=target.url)
    try:
        outcome = transport.post(redirecting.url, b"{}", (("X-A", "1"),), 2, True)
        assert not outcome.ok and "redirect" in outcome.detail
        assert len(redirecting.received) == 1 and target.received == []
    finally:
        target.close()
        redirecting.close()


def test_the_connection_goes_to_the_checked_address_with_the_urls_host():
    receiver = Receiver()
    try:
        url = f"http://localhost:{receiver.port}/hook?x=1"
        outcome = transport.post(url, b'{"a": 1}', (("X-Token", "t"),), 2, True, resolver=resolver_to("127.0.0.1"))
        assert outcome.ok
        path, headers, body = receiver.received[0]
        assert (path, body, headers["X-Token"]) == ("/hook?x=1", {"a": 1}, "t")
        assert headers["Host"] == f"localhost:{receiver.port}"
        assert headers["Content-Type"] == "application/fhir+json"
    finally:
        receiver.close()


def test_the_timeout_bounds_the_whole_delivery_not_each_read():
    """A receiver that answers one byte at a time (each within the socket timeout) cannot hold the
    worker longer than the Subscription's backport-timeout."""
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def trickle():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(40):             # 8 s of one header byte every 0.2 s
                try:
                    conn.sendall(b"X")
                except OSError:
                    return
                time.sleep(0.2)
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        outcome = transport.post(f"http://127.0.0.1:{port}/hook", b"{}", (), 1, True)
        assert not outcome.ok and time.monotonic() - started < 2.5, outcome
    finally:
        server.close()
        thread.join(10)


def test_https_goes_to_the_checked_address_and_verifies_the_urls_host(tmp_path):
    """The TLS connection is pinned to the checked address, sends the URL's host as server name and
    checks the certificate against it (a certificate for another name fails the delivery)."""
    import datetime
    import http.server
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.headers["Host"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = serving.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    trusting = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    port = server.server_address[1]
    try:
        ok = transport.post(f"https://hooks.test:{port}/h", b"{}", (), 5, True, resolver=loopback_resolver,
                            context=trusting)
        assert ok.ok and received == [(f"hooks.test:{port}", b"{}")], ok
        other = transport.post(f"https://other.test:{port}/h", b"{}", (), 5, True, resolver=loopback_resolver,
                               context=trusting)
        assert not other.ok and "certificate" in other.detail.lower() and len(received) == 1
    finally:
        server.shutdown()
        server.server_close()
