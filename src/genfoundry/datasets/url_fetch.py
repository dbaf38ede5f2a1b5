"""Downloading user-listed image URLs safely: SSRF guard, pinned addresses, size, time and type limits.

Every connection goes through `_PinnedBackend`, an httpcore network backend that resolves the host once,
checks every address against the policy (`ssrf.py`) and then connects to one of those same addresses, so a
second DNS answer can never redirect the connection (no DNS rebinding). httpx still sees the original URL,
so the Host header, TLS SNI and certificate verification all use the original host name. Redirects are
followed here, hop by hop, so each hop passes the scheme check and, on connecting, the address check.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from genfoundry.datasets.ssrf import AddressRefused, IPNetwork, parse_networks, resolve_checked

MAX_URL_LENGTH = 2048
# Enough bytes to tell every accepted format apart (WEBP needs 12).
_SNIFF_BYTES = 12
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_SUPPORTED_SCHEMES = frozenset({"http", "https"})
# Identity encoding: the size cap then counts what the server sends, and no gzip bomb inflates in memory.
_REQUEST_HEADERS = {"User-Agent": "genfoundry-dataset-fetch/1", "Accept": "image/*", "Accept-Encoding": "identity"}


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for downloading user-supplied image URLs; `allowed_networks` opens private CIDRs on purpose."""

    allowed_networks: tuple[str, ...] = ()
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 60.0
    max_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    allowed_schemes: tuple[str, ...] = ("http", "https")
    allowed_content_types: tuple[str, ...] = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
        "image/tiff",
    )
    concurrency: int = 8
    networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check values at construction, so a bad setting fails at start-up, not on the first URL."""
        for name in ("allowed_networks", "allowed_schemes", "allowed_content_types"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} must be a sequence of strings, not the single string {value!r}")
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "networks", parse_networks(self.allowed_networks))
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s", "max_bytes", "concurrency"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, got {self.max_redirects!r}")
        unsupported = set(self.allowed_schemes) - _SUPPORTED_SCHEMES
        if unsupported:
            raise ValueError(f"allowed_schemes may only hold http and https, got {sorted(unsupported)}")
        object.__setattr__(self, "allowed_content_types", tuple(t.lower() for t in self.allowed_content_types))


@dataclass(frozen=True)
class FetchResult:
    """What happened to one URL: the image bytes, or the reason it was refused."""

    url: str
    ok: bool
    data: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    final_url: str | None = None
    reason: str | None = None


class FetchClient(httpx.AsyncClient):
    """An httpx client whose every connection passes the SSRF guard of `policy`; share it across fetches.

    `verify` replaces the system CA bundle (an operator's private CA, or a test's self-signed certificate).
    """

    def __init__(self, policy: FetchPolicy, *, verify: ssl.SSLContext | None = None) -> None:
        super().__init__(
            transport=_PinnedTransport(policy, verify or _default_ssl_context()),
            headers=_REQUEST_HEADERS,
            timeout=httpx.Timeout(
                connect=policy.connect_timeout_s,
                read=policy.read_timeout_s,
                write=policy.read_timeout_s,
                pool=policy.connect_timeout_s,
            ),
            follow_redirects=False,
            # Environment proxies would resolve the host themselves, after our check: never use them.
            trust_env=False,
        )
        self.policy = policy


async def fetch_image(url: str, *, policy: FetchPolicy, client: FetchClient | None = None) -> FetchResult:
    """Download one image URL under `policy`; a per-URL problem is a result with a reason, never an exception."""
    if client is None:
        async with FetchClient(policy) as own_client:
            return await fetch_image(url, policy=policy, client=own_client)
    if client.policy != policy:
        raise ValueError("the FetchClient was built for a different FetchPolicy")
    trail = _Trail(url)
    try:
        async with asyncio.timeout(policy.total_timeout_s):
            data, content_type = await _download(url.strip(), policy, client, trail)
    except TimeoutError:
        reason = f"timed out after {policy.total_timeout_s:g} s"
    except (_FetchFailed, AddressRefused) as exc:
        reason = exc.reason
    except httpx.HTTPError as exc:
        reason = _describe_http_error(exc, policy)
    except httpx.InvalidURL as exc:
        reason = f"invalid URL: {exc}"
    else:
        return FetchResult(url=url, ok=True, data=data, content_type=content_type, final_url=trail.url)
    return FetchResult(url=url, ok=False, final_url=trail.url, reason=reason)


async def fetch_all(
    urls: Sequence[str],
    *,
    policy: FetchPolicy,
    on_result: Callable[[int, FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Download `urls` concurrently (at most `policy.concurrency` at once), results in input order.

    `on_result(index, result)` is called as each URL finishes; an exception it raises cancels the rest and
    propagates, which is how a job can stop the download.
    """
    semaphore = asyncio.Semaphore(policy.concurrency)

    async def fetch_one(index: int, url: str, client: FetchClient) -> FetchResult:
        async with semaphore:
            result = await fetch_image(url, policy=policy, client=client)
        if on_result is not None:
            on_result(index, result)
        return result

    try:
        async with FetchClient(policy) as client, asyncio.TaskGroup() as group:
            tasks = [group.create_task(fetch_one(index, url, client)) for index, url in enumerate(urls)]
    except BaseExceptionGroup as errors:
        # fetch_image returns every per-URL failure, so only on_result can fail a task, and the group
        # cancels the rest at once: hand the caller that one exception, not a group.
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]


class _FetchFailed(Exception):
    """A per-URL refusal or failure; `reason` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Trail:
    """The URL currently being fetched, kept outside the deadline so a timed-out result can still name it."""

    url: str


async def _download(url: str, policy: FetchPolicy, client: FetchClient, trail: _Trail) -> tuple[bytes, str]:
    """Follow redirects by hand (each hop re-checked) and return the image bytes and content type."""
    target = _check_url(url, policy)
    redirects = 0
    while True:
        trail.url = str(target)
        try:
            response = await client.send(client.build_request("GET", target), stream=True)
        except AddressRefused as exc:
            if redirects == 0:
                raise
            raise _FetchFailed(f"redirect to {target} refused: {exc.reason}") from None
        try:
            if not response.is_redirect:
                return await _read_image(response, policy)
            if redirects >= policy.max_redirects:
                raise _FetchFailed(f"too many redirects (more than {policy.max_redirects})")
            redirects += 1
            location = response.headers["location"]
            try:
                next_url = str(target.join(location))
            except httpx.InvalidURL:
                raise _FetchFailed(f"redirect to an invalid URL: {location[:200]}") from None
            try:
                target = _check_url(next_url, policy)
            except _FetchFailed as exc:
                raise _FetchFailed(f"redirect to {location[:200]} refused: {exc.reason}") from None
        finally:
            await response.aclose()


def _check_url(url: str, policy: FetchPolicy) -> httpx.URL:
    """Parse `url` and check its length, scheme and host (the address is checked when connecting)."""
    if not url:
        raise _FetchFailed("URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise _FetchFailed(f"URL is too long ({len(url)} characters; the limit is {MAX_URL_LENGTH})")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _FetchFailed(f"invalid URL: {exc}") from None
    if not parsed.scheme:
        raise _FetchFailed(f"URL has no scheme (expected {' or '.join(policy.allowed_schemes)})")
    if parsed.scheme not in policy.allowed_schemes:
        raise _FetchFailed(f"scheme {parsed.scheme} is not allowed")
    if not parsed.host:
        raise _FetchFailed("URL has no host")
    return parsed


async def _read_image(response: httpx.Response, policy: FetchPolicy) -> tuple[bytes, str]:
    """Check status, headers and magic bytes, and read the body under the size cap."""
    if response.status_code != 200:
        raise _FetchFailed(f"HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in policy.allowed_content_types:
        raise _FetchFailed(f"content type {content_type or '(none)'} is not an allowed image type")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _FetchFailed(f"content encoding {encoding} is not supported")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise _FetchFailed(f"response too large: Content-Length {declared} > {policy.max_bytes}")
    body = bytearray()
    sniffed = False
    async for chunk in response.aiter_raw():
        body += chunk
        # Counted on bytes received, since Content-Length may be absent (chunked) or wrong.
        if len(body) > policy.max_bytes:
            raise _FetchFailed(f"response too large: more than {policy.max_bytes} bytes")
        if not sniffed and len(body) >= _SNIFF_BYTES:
            _check_magic(bytes(body[:_SNIFF_BYTES]))
            sniffed = True
    if not body:
        raise _FetchFailed("empty response body")
    if not sniffed:
        _check_magic(bytes(body))
    return bytes(body), content_type


def _check_magic(head: bytes) -> None:
    """Refuse content whose first bytes are not one of the accepted image formats, whatever its headers say."""
    if head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return
    preview = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in head[:_SNIFF_BYTES])
    raise _FetchFailed(f"not an image (content starts with {preview})")


def _describe_http_error(exc: httpx.HTTPError, policy: FetchPolicy) -> str:
    """A short reason for a transport failure."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {policy.connect_timeout_s:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timed out (no data for {policy.read_timeout_s:g} s)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {_innermost_error(exc)}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"bad response from server: {exc}"
    return f"download failed: {exc}"


def _innermost_error(exc: BaseException) -> str:
    """The text of the deepest cause, e.g. "Connection refused" under anyio's "All connection attempts failed"."""
    while True:
        # httpcore and anyio chain by context as often as by cause, so follow either.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, BaseExceptionGroup):
            cause = cause.exceptions[0]
        if cause is None:
            break
        exc = cause
    if isinstance(exc, ssl.SSLError):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi CAs), built once because loading the bundle is slow."""
    return httpx.create_ssl_context()


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks each host itself, then connects only to the addresses it checked."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first reachable checked address of `host`, never resolving it a second time."""
        addresses = await resolve_checked(host, port, self._allowed, timeout=timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a user URL's target."""
        raise AddressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate retry back-off sleeps to the real backend."""
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool rebuilt on `_PinnedBackend`."""

    def __init__(self, policy: FetchPolicy, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx 0.28 takes no network backend, so the pool it built is swapped for one on ours. If a future
        # httpx renames `_pool`, fail here rather than fetch through an unguarded pool.
        if type(getattr(self, "_pool", None)) is not httpcore.AsyncConnectionPool:
            raise RuntimeError("unsupported httpx version: cannot install the SSRF-guarded connection pool")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=None,
            max_keepalive_connections=policy.concurrency,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(policy.networks),
        )
