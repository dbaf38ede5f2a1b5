"""URL fetching for datasets: SSRF guard, address pinning, redirects and limits, against real loopback servers.

Only loopback traffic ever leaves these tests: DNS is replaced by a table (unknown names fail), and the
connect layer is wrapped so any non-loopback connect is blocked and recorded instead of attempted.
"""

from __future__ import annotations

import asyncio
import http.server
import io
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import httpcore
import pytest
from PIL import Image

from genfoundry.datasets.ssrf import ip_literal, parse_networks, refusal_reason
from genfoundry.datasets.url_fetch import FetchClient, FetchPolicy, FetchResult, fetch_all, fetch_image

LOOPBACK = ("127.0.0.0/8",)
StartServer = Callable[..., "_Server"]


def _image_bytes(fmt: str) -> bytes:
    image = Image.new("RGB", (16, 16))
    image.putdata([(x * 16, y * 16, 128) for y in range(16) for x in range(16)])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


PNG = _image_bytes("PNG")
JPEG = _image_bytes("JPEG")
HTML = b"<html><body>not an image</body></html>"
ENDLESS_TOTAL = 64 * 1024 * 1024


# --- loopback HTTP servers -------------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int = 0, *, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.address_family = family
        self.connections: list[Any] = []
        self.requests: list[tuple[str, str | None]] = []
        self.stop = threading.Event()
        self.endless_done = threading.Event()
        self.endless_sent = 0
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.sni: list[str | None] = []
        super().__init__((host, port), _Handler)
        self.host = host
        self.port = self.server_address[1]
        self.scheme = "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections.append(client_address)
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose in these tests


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host")))
        path, _, query = self.path.partition("?")
        route = getattr(self, "route_" + path.strip("/").replace("-", "_"), None)
        try:
            if route is None:
                self.send_body(404, "text/html", b"<html>missing</html>")
            else:
                route(parse_qs(query))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_body(self, status: int, content_type: str | None, body: bytes, **headers: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def route_png(self, query: dict[str, list[str]]) -> None:
        self.send_body(200, "image/png", PNG)

    def route_jpeg(self, query: dict[str, list[str]]) -> None:
        self.send_body(200, "image/jpeg; qs=0.9", JPEG)  # parameters must be ignored

    def route_html(self, query: dict[str, list[str]]) -> None:
        self.send_body(200, "text/html; charset=utf-8", HTML)

    def route_html_as_jpeg(self, query: dict[str, list[str]]) -> None:
        self.send_body(200, "image/jpeg", HTML)

    def route_redirect(self, query: dict[str, list[str]]) -> None:
        self.send_body(302, None, b"", Location=query["to"][0])

    def route_loop(self, query: dict[str, list[str]]) -> None:
        self.send_body(302, None, b"", Location="/loop")

    def route_huge(self, query: dict[str, list[str]]) -> None:
        # Declares 5 GB, sends nothing, hangs up: the client must refuse on the header alone.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5000000000\r\n\r\n")
        self.close_connection = True

    def route_chunked(self, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(PNG), 100):
            piece = PNG[start : start + 100]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def route_endless(self, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = PNG[:8] + bytes(65536 - 8)
        try:
            while self.server.endless_sent < ENDLESS_TOTAL and not self.server.stop.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.server.endless_sent += len(chunk)
                chunk = bytes(65536)
        finally:
            self.server.endless_done.set()
        self.close_connection = True

    def route_slow(self, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(PNG[:8])
        for byte in PNG[8:100]:  # one byte a second: never a 10 s read gap, so only the total deadline stops it
            if self.server.stop.wait(1.0):
                break
            self.wfile.write(bytes([byte]))
        self.close_connection = True

    def route_delay(self, query: dict[str, list[str]]) -> None:
        with self.server.lock:
            self.server.active += 1
            self.server.max_active = max(self.server.max_active, self.server.active)
        time.sleep(0.3)
        with self.server.lock:
            self.server.active -= 1
        self.send_body(200, "image/png", PNG)


@pytest.fixture
def servers() -> Iterator[StartServer]:
    """Start loopback servers on demand; all are stopped when the test ends."""
    started: list[tuple[_Server, threading.Thread]] = []

    def start(host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None) -> _Server:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = _Server(host, port, family=family)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: server.sni.append(name)
            server.socket = tls.wrap_socket(server.socket, server_side=True)
            server.scheme = "https"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server(servers: StartServer) -> _Server:
    return servers()


# --- DNS table and connect guard (autouse: nothing here may reach past loopback) ----------------------------


@dataclass
class FakeDns:
    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """getaddrinfo from a table: each name answers its lists in turn (the last one repeats); unknown names fail."""
    fake = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        fake.calls.append(name)
        if name in fake.answers:
            queue = fake.answers[name]
            ips = queue.pop(0) if len(queue) > 1 else queue[0]
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port), 0, 0))
                if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port)))
                for ip in ips
            ]
        if name == "localhost" or ip_literal(name) is not None:
            return real(host, port, family, type, proto, flags)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@dataclass
class ConnectGuard:
    attempts: list[tuple[str, int]] = field(default_factory=list)
    blocked: list[tuple[str, int]] = field(default_factory=list)
    expect_blocked: bool = False


def _is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host.split("%")[0]).is_loopback


@pytest.fixture(autouse=True)
def connect_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectGuard]:
    """Record every connect the fetcher makes; block (never attempt) any that is not to loopback."""
    guard = ConnectGuard()
    real_backend_connect = httpcore.AnyIOBackend.connect_tcp
    real_socket_connect = socket.socket.connect

    async def backend_connect(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        guard.attempts.append((host, port))
        if not _is_loopback(host):
            guard.blocked.append((host, port))
            raise httpcore.ConnectError(f"connection to {host} blocked by the test")
        return await real_backend_connect(self, host, port, *args, **kwargs)

    def socket_connect(sock: socket.socket, address: Any) -> Any:
        assert _is_loopback(address[0]), f"socket connect to {address} outside loopback"
        return real_socket_connect(sock, address)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", backend_connect)
    monkeypatch.setattr(socket.socket, "connect", socket_connect)
    yield guard
    assert guard.expect_blocked or not guard.blocked, f"unexpected connects outside loopback: {guard.blocked}"


def fetch(url: str, policy: FetchPolicy | None = None) -> FetchResult:
    return asyncio.run(fetch_image(url, policy=policy or FetchPolicy()))


# --- address policy (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared address space"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "private"),
        ("198.18.0.1", "private"),
        ("::ffff:127.0.0.1", "embeds 127.0.0.1, which is loopback"),
        ("::ffff:169.254.169.254", "embeds 169.254.169.254, which is a cloud metadata"),
        ("64:ff9b::a00:1", "embeds 10.0.0.1, which is private"),
        ("2002:7f00:1::", "embeds 127.0.0.1, which is loopback"),
        ("::127.0.0.1", "embeds 127.0.0.1, which is loopback"),
    ],
)
def test_refusal_reason_names_the_kind_of_address(address: str, kind: str) -> None:
    reason = refusal_reason(ipaddress.ip_address(address))
    assert reason is not None and kind in reason and reason.endswith("(not allowed)")


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_refusal_reason_accepts_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allowed_networks_open_only_what_they_list() -> None:
    allowed = parse_networks(["127.0.0.1/32", "10.1.0.0/16", "::1/128"])
    assert refusal_reason(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("::1"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("10.1.2.3"), allowed) is None
    assert refusal_reason(ipaddress.ip_address("127.0.0.2"), allowed) == "address 127.0.0.2 is loopback (not allowed)"
    assert "private" in (refusal_reason(ipaddress.ip_address("10.2.0.1"), allowed) or "")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"),
        ("example.com", None),
        ("0.cafe", None),
        ("1e100.net", None),
    ],
)
def test_ip_literal_reads_numeric_hosts_like_inet_aton(host: str, expected: str | None) -> None:
    literal = ip_literal(host)
    assert (str(literal) if literal is not None else None) == expected


def test_policy_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="not a network"):
        FetchPolicy(allowed_networks=("127.0.0.0/33",))
    with pytest.raises(ValueError, match="not the single string"):
        FetchPolicy(allowed_networks="127.0.0.0/8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http and https"):
        FetchPolicy(allowed_schemes=("http", "ftp"))
    with pytest.raises(ValueError, match="max_bytes"):
        FetchPolicy(max_bytes=0)


# --- fetching from real loopback servers -------------------------------------------------------------------


def test_png_and_jpeg_download_when_loopback_is_allowed(server: _Server) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK)
    png = fetch(f"{server.url}/png", policy)
    jpeg = fetch(f"{server.url}/jpeg", policy)
    assert png.ok and png.data == PNG and png.content_type == "image/png" and png.reason is None
    assert jpeg.ok and jpeg.data == JPEG and jpeg.content_type == "image/jpeg"
    assert png.final_url == f"{server.url}/png"
    chunked = fetch(f"{server.url}/chunked", policy)
    assert chunked.ok and chunked.data == PNG


def test_loopback_is_refused_without_the_allowlist_and_never_connected(
    server: _Server, connect_guard: ConnectGuard
) -> None:
    result = fetch(f"{server.url}/png")
    assert not result.ok and result.data is None
    assert result.reason == "address 127.0.0.1 is loopback (not allowed)"
    assert connect_guard.attempts == [] and server.connections == []


def test_ipv6_loopback_refused_and_allowed_when_listed(servers: StartServer, connect_guard: ConnectGuard) -> None:
    try:
        server = servers("::1")
    except OSError:
        pytest.skip("IPv6 loopback cannot be bound here")
    refused = fetch(f"{server.url}/png")
    assert refused.reason == "address ::1 is loopback (not allowed)"
    assert connect_guard.attempts == [] and server.connections == []
    allowed = fetch(f"{server.url}/png", FetchPolicy(allowed_networks=("::1/128",)))
    assert allowed.ok and allowed.data == PNG


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data", "address 169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data", "cloud metadata"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://10.0.0.1/", "address 10.0.0.1 is private"),
        ("http://192.168.0.1:8080/x.png", "private"),
        ("http://100.64.0.1", "address 100.64.0.1 is shared address space (CGNAT)"),
        ("http://[::ffff:127.0.0.1]/", "embeds 127.0.0.1, which is loopback"),
        ("http://2130706433/", "address 127.0.0.1 is loopback"),
        ("http://0x7f.1/", "address 127.0.0.1 is loopback"),
        ("http://127.1/", "address 127.0.0.1 is loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[fe80::1]/", "link-local"),
        ("https://127.0.0.1/", "loopback"),
    ],
)
def test_forbidden_ip_literals_are_refused_before_any_lookup_or_connect(
    url: str, kind: str, dns: FakeDns, connect_guard: ConnectGuard
) -> None:
    result = fetch(url)
    assert not result.ok and result.reason is not None
    assert kind in result.reason and result.reason.endswith("(not allowed)")
    assert dns.calls == [] and connect_guard.attempts == []


def test_host_names_resolving_to_forbidden_addresses_are_refused(dns: FakeDns, connect_guard: ConnectGuard) -> None:
    dns.answers["evil.example"] = [["127.0.0.1"]]
    dns.answers["metadata.example"] = [["169.254.169.254"]]
    # One bad address among good ones is enough: the connection could fall back to it.
    dns.answers["mixed.example"] = [["93.184.216.34", "10.1.2.3"]]
    assert fetch("http://localhost/x.png").reason in {
        "host localhost: address 127.0.0.1 is loopback (not allowed)",
        "host localhost: address ::1 is loopback (not allowed)",
    }
    assert fetch("http://evil.example/x.png").reason == "host evil.example: address 127.0.0.1 is loopback (not allowed)"
    assert "cloud metadata" in (fetch("http://metadata.example/").reason or "")
    assert fetch("http://mixed.example/").reason == "host mixed.example: address 10.1.2.3 is private (not allowed)"
    unresolved = fetch("http://nowhere.example/")
    assert unresolved.reason == "could not resolve host nowhere.example (Name or service not known)"
    assert connect_guard.attempts == []


def test_dns_rebinding_cannot_redirect_the_connection(dns: FakeDns, connect_guard: ConnectGuard) -> None:
    # First answer public, later answers loopback (allowlisted, so a second lookup would be obeyed).
    dns.answers["rebind.example"] = [["93.184.216.34"], ["127.0.0.1"]]
    connect_guard.expect_blocked = True
    result = fetch("http://rebind.example/x.png", FetchPolicy(allowed_networks=LOOPBACK))
    assert not result.ok and "blocked by the test" in (result.reason or "")
    assert dns.calls.count("rebind.example") == 1
    assert connect_guard.attempts == [("93.184.216.34", 80)]


def test_connection_goes_to_the_checked_address_with_the_original_host_header(
    servers: StartServer, dns: FakeDns, connect_guard: ConnectGuard
) -> None:
    first = servers("127.0.0.1")
    try:
        second = servers("127.0.0.2", first.port)
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound on the same port here")
    dns.answers["img.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    result = fetch(f"http://img.test:{first.port}/png", FetchPolicy(allowed_networks=LOOPBACK))
    assert result.ok and result.data == PNG
    assert dns.calls.count("img.test") == 1
    assert connect_guard.attempts == [("127.0.0.1", first.port)]
    assert len(first.connections) == 1 and second.connections == []
    assert first.requests == [("/png", f"img.test:{first.port}")]


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"),
            *("-addext", f"subjectAltName=DNS:{name}"),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_sni_and_certificate_check_use_the_original_host_name(
    servers: StartServer, dns: FakeDns, connect_guard: ConnectGuard, tmp_path: Path
) -> None:
    key, cert = _self_signed(tmp_path, "img.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server = servers(tls=server_tls)
    dns.answers["img.test"] = [["127.0.0.1"]]
    dns.answers["other.test"] = [["127.0.0.1"]]
    policy = FetchPolicy(allowed_networks=LOOPBACK)

    async def run() -> tuple[FetchResult, FetchResult, FetchResult]:
        async with FetchClient(policy, verify=ssl.create_default_context(cafile=str(cert))) as client:
            good = await fetch_image(f"https://img.test:{server.port}/png", policy=policy, client=client)
            wrong_name = await fetch_image(f"https://other.test:{server.port}/png", policy=policy, client=client)
            by_ip = await fetch_image(f"https://127.0.0.1:{server.port}/png", policy=policy, client=client)
        return good, wrong_name, by_ip

    good, wrong_name, by_ip = asyncio.run(run())
    assert good.ok and good.data == PNG
    assert server.requests[0] == ("/png", f"img.test:{server.port}")
    # The certificate is for img.test only: the same server reached as other.test or by IP must fail to verify.
    assert not wrong_name.ok and "certificate is not valid for 'other.test'" in (wrong_name.reason or "")
    assert not by_ip.ok and "certificate is not valid for '127.0.0.1'" in (by_ip.reason or "")
    assert server.sni[:2] == ["img.test", "other.test"]
    assert {host for host, _ in connect_guard.attempts} == {"127.0.0.1"}


def test_redirects_are_followed_and_rechecked_at_every_hop(servers: StartServer, connect_guard: ConnectGuard) -> None:
    first = servers("127.0.0.1")
    try:
        other = servers("127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound here")
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32",))

    def via(target: str) -> FetchResult:
        return fetch(f"{first.url}/redirect?to={quote(target, safe='')}", policy)

    followed = via("/png")
    assert followed.ok and followed.data == PNG and followed.final_url == f"{first.url}/png"

    to_private = via("http://10.0.0.1/x")
    assert to_private.reason == "redirect to http://10.0.0.1/x refused: address 10.0.0.1 is private (not allowed)"
    assert to_private.final_url == "http://10.0.0.1/x"

    to_loopback = via(f"{other.url}/png")
    assert to_loopback.reason == (f"redirect to {other.url}/png refused: address 127.0.0.2 is loopback (not allowed)")
    assert other.connections == []

    assert via("ftp://x/y").reason == "redirect to ftp://x/y refused: scheme ftp is not allowed"
    assert via("file:///etc/passwd").reason == "redirect to file:///etc/passwd refused: scheme file is not allowed"
    assert {host for host, _ in connect_guard.attempts} == {"127.0.0.1"}


def test_redirect_loop_stops_at_max_redirects(server: _Server) -> None:
    result = fetch(f"{server.url}/loop", FetchPolicy(allowed_networks=LOOPBACK))
    assert result.reason == "too many redirects (more than 5)"
    assert [path for path, _ in server.requests] == ["/loop"] * 6


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme file is not allowed"),
        ("ftp://x/y", "scheme ftp is not allowed"),
        ("data:image/png;base64,iVBORw0KGgo=", "scheme data is not allowed"),
        ("gopher://127.0.0.1:70/_x", "scheme gopher is not allowed"),
        ("javascript:alert(1)", "scheme javascript is not allowed"),
        ("", "URL is empty"),
        ("example.com/a.png", "URL has no scheme (expected http or https)"),
        ("http:///a.png", "URL has no host"),
        ("http://" + "a" * 2050 + ".com/", "URL is too long (2062 characters; the limit is 2048)"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str, connect_guard: ConnectGuard) -> None:
    result = fetch(url)
    assert not result.ok and result.reason == reason
    assert connect_guard.attempts == []


def test_invalid_url_syntax_is_a_reason_not_an_exception() -> None:
    result = fetch("http://[::1/x")
    assert not result.ok and (result.reason or "").startswith("invalid URL")


def test_declared_content_length_over_the_cap_is_refused_before_reading(server: _Server) -> None:
    result = fetch(f"{server.url}/huge", FetchPolicy(allowed_networks=LOOPBACK))
    assert result.reason == "response too large: Content-Length 5000000000 > 33554432"


def test_body_without_length_is_cut_off_at_the_cap(server: _Server) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK, max_bytes=256 * 1024)
    result = fetch(f"{server.url}/endless", policy)
    assert result.reason == "response too large: more than 262144 bytes"
    assert server.endless_done.wait(10)
    assert server.endless_sent < ENDLESS_TOTAL


def test_html_is_refused_whatever_its_content_type(server: _Server) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK)
    assert fetch(f"{server.url}/html", policy).reason == "content type text/html is not an allowed image type"
    assert fetch(f"{server.url}/html-as-jpeg", policy).reason == "not an image (content starts with <html><body>)"


def test_http_errors_are_reported_by_status(server: _Server) -> None:
    result = fetch(f"{server.url}/missing", FetchPolicy(allowed_networks=LOOPBACK))
    assert not result.ok and result.reason == "HTTP 404"


def test_slow_server_is_cut_off_without_holding_up_the_others(server: _Server) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK, total_timeout_s=2)
    urls = [f"{server.url}/slow", f"{server.url}/png", f"{server.url}/jpeg", f"{server.url}/missing"]
    finished: list[int] = []
    results = asyncio.run(fetch_all(urls, policy=policy, on_result=lambda index, _: finished.append(index)))
    assert [r.url for r in results] == urls
    # The total deadline ended the slow one (it sends a byte a second, never a read gap long enough to time out).
    assert results[0].reason == "timed out after 2 s" and results[0].final_url == urls[0]
    assert results[1].ok and results[2].ok and results[3].reason == "HTTP 404"
    # Listed first, the slow one finished last: the others were reported as they finished, not after it.
    assert sorted(finished[:3]) == [1, 2, 3] and finished[3] == 0


def test_fetch_all_bounds_concurrency(server: _Server) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK, concurrency=2)
    results = asyncio.run(fetch_all([f"{server.url}/delay"] * 6, policy=policy))
    assert all(r.ok for r in results)
    assert server.max_active == 2


def test_on_result_exception_stops_fetch_all(server: _Server) -> None:
    def explode(index: int, result: FetchResult) -> None:
        raise RuntimeError("job cancelled")

    policy = FetchPolicy(allowed_networks=LOOPBACK)
    with pytest.raises(RuntimeError, match="job cancelled"):
        asyncio.run(fetch_all([f"{server.url}/png"] * 3, policy=policy, on_result=explode))


def test_client_must_match_the_policy() -> None:
    async def run() -> None:
        async with FetchClient(FetchPolicy()) as client:
            await fetch_image("http://example.com/", policy=FetchPolicy(max_bytes=10), client=client)

    with pytest.raises(ValueError, match="different FetchPolicy"):
        asyncio.run(run())
