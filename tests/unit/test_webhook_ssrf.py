"""The SSRF guard: every blocked range is refused and public addresses are allowed; the transport
checks at connect time, pins the vetted address (Host and TLS SNI stay the URL's), follows no
redirects and bounds the whole exchange."""

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailroom.domain.ssrf import block_reason, is_public
from mailroom.loops import run_on_thread_loop
from mailroom.webhook_http import new_client, post

BLOCKED = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("169.254.169.254", "link_local"),  # the instance metadata service
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.10", "reserved"),
    ("192.88.99.1", "reserved"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "reserved"),
    ("198.51.100.7", "reserved"),
    ("203.0.113.9", "reserved"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "ipv4_mapped"),
    ("::ffff:10.0.0.1", "ipv4_mapped"),
    ("::ffff:8.8.8.8", "ipv4_mapped"),  # refused even when the mapped address is public
    ("::127.0.0.1", "reserved"),  # IPv4-compatible
    ("100::1", "reserved"),
    ("2001:db8::1", "reserved"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("fe80::1", "link_local"),
    ("fe80::1%1", "link_local"),
    ("fec0::1", "link_local"),
    ("ff02::1", "multicast"),
    ("2002:7f00:0001::1", "embedded_loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "embedded_link_local"),  # 6to4 of 169.254.169.254
    ("64:ff9b::a00:1", "embedded_private"),  # NAT64 of 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"),  # Teredo
]
ALLOWED = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.215.14",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above
    "172.15.255.255",
    "172.32.0.0",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2002:0808:0808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked_ranges(address, reason):
    assert block_reason(address) == reason
    assert not is_public(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses(address):
    assert block_reason(address) is None
    assert is_public(ipaddress.ip_address(address))


# ----------------------------------------------------------------------------- the transport


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("location", "http://169.254.169.254/latest/meta-data")
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("content-length", "10")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            threading.Event().wait(3)
            return
        else:
            self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    _Handler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def run(coro):
    return run_on_thread_loop(coro)


async def _post(url: str, *, allow_private: bool, resolver=None, verify=True, time_limit: float = 15.0):
    kwargs = {"resolver": resolver} if resolver else {}
    async with new_client(allow_private=allow_private, verify=verify, **kwargs) as client:
        return await post(client, url, b"{}", {"content-type": "application/json"}, time_limit=time_limit)


def test_loopback_is_refused_before_connecting(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    result = run(_post(url, allow_private=False))
    assert result.status_code is None
    assert "not allowed (loopback)" in (result.error or "")
    assert _Handler.seen == []  # no connection was made


def test_a_name_resolving_to_a_private_address_is_refused_at_connect_time(server):
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "127.0.0.1"]  # one public, one internal: refused as a whole

    url = f"http://webhooks.example:{server.server_address[1]}/hook"
    result = run(_post(url, allow_private=False, resolver=rebinding))
    assert "resolves to 127.0.0.1" in (result.error or "")
    assert _Handler.seen == []


def test_allow_private_reaches_loopback(server):
    result = run(_post(f"http://127.0.0.1:{server.server_address[1]}/hook", allow_private=True))
    assert result.status_code == 204 and result.succeeded and result.error is None
    assert _Handler.seen[0]["user-agent"].startswith("Mailroom-Webhooks/")


def test_redirects_are_not_followed(server):
    result = run(_post(f"http://127.0.0.1:{server.server_address[1]}/redirect", allow_private=True))
    assert result.status_code == 302 and not result.succeeded
    assert result.error == "HTTP 302"
    assert len(_Handler.seen) == 1


def test_the_whole_exchange_is_time_limited(server):
    result = run(
        _post(f"http://127.0.0.1:{server.server_address[1]}/slow", allow_private=True, time_limit=0.5)
    )
    # The status line came in time; a 2xx counts even if the body trickles.
    assert result.status_code == 200 and result.duration_ms < 2000


def test_a_silent_endpoint_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        result = run(
            _post(f"http://127.0.0.1:{listener.getsockname()[1]}/", allow_private=True, time_limit=0.5)
        )
    finally:
        listener.close()
    assert result.status_code is None and "timed out" in (result.error or "")


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_the_vetted_address_is_pinned_and_tls_is_checked_for_the_host_name(tmp_path):
    cert, key = _certificate(tmp_path, "hooks.customer.test")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    _Handler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    client_context = ssl.create_default_context(cafile=str(cert))
    try:
        port = httpd.server_address[1]
        ok = run(
            _post(
                f"https://hooks.customer.test:{port}/h",
                allow_private=True,
                resolver=resolver,
                verify=client_context,
            )
        )
        # The certificate is for hooks.customer.test, not for another name resolving to the same address.
        wrong = run(
            _post(
                f"https://other.customer.test:{port}/h",
                allow_private=True,
                resolver=resolver,
                verify=client_context,
            )
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert ok.status_code == 204, ok.error
    assert lookups == ["hooks.customer.test", "other.customer.test"]  # one lookup per connection
    assert _Handler.seen[0]["host"] == f"hooks.customer.test:{port}"
    assert sni[0] == "hooks.customer.test"
    assert wrong.status_code is None and "certificate" in (wrong.error or "").lower()


def test_the_client_ignores_proxy_settings(monkeypatch, server):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy would connect on our behalf
    result = run(_post(f"http://127.0.0.1:{server.server_address[1]}/hook", allow_private=True))
    assert result.status_code == 204


def test_httpx_uses_the_guarded_pool():
    client = new_client(allow_private=False)
    transport = client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert type(transport._pool._network_backend).__name__ == "GuardedBackend"
