"""HTTP fetching: one shared httpx.AsyncClient, politely and defensively.

Conditional GET, redirects followed by hand (counted, each hop checked), a deadline over the whole
exchange (so a server dripping bytes cannot hold a poll forever), a streamed body-size cap applied after
decompression (so a gzip bomb is cut off too), global and per-host concurrency limits, Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import ssl
import time
import zlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Self
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from monitor import __version__
from monitor.clock import Clock, SystemClock
from monitor.records import FetchResult, FetchStatus

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.5, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
DEFAULT_USER_AGENT = f"news-monitor/{__version__} (self-hosted news monitor; polite feed reader)"
MAX_RETRY_AFTER = timedelta(days=7)
_CHUNK = 64 * 1024

# Called with each URL before it is requested (the SSRF guard, monitor.netguard, hooks in here);
# raises FetchRefused, or returns the checked addresses the connection must go to (None: any).
UrlGuard = Callable[[str], Awaitable[Sequence[str] | None]]


class FetchRefused(Exception):
    """A URL that must not be fetched (scheme, address)."""


class _TooLarge(Exception):
    pass


class Fetcher:
    def __init__(
        self,
        *,
        max_connections: int = 20,
        per_host: int = 2,
        max_redirects: int = 5,
        max_body: int = 10 * 10**6,
        user_agent: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`transport` replaces the network entirely (tests); then guard pins are not enforced.
        `network_backend` is what the pinning backend connects through (default: anyio)."""
        self.max_redirects = max_redirects
        self.max_body = max_body
        self.clock = clock or SystemClock()
        self._global = asyncio.Semaphore(max_connections)
        self._per_host_limit = per_host
        # Only hosts with requests in flight or queued: article links name ever new hosts.
        self._per_host: dict[str, _HostSlots] = {}
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.AsyncClient(
            transport=transport or pinning_transport(limits, network_backend),
            follow_redirects=False,
            headers={
                "User-Agent": user_agent or DEFAULT_USER_AGENT,
                "Accept-Encoding": "gzip, deflate",
            },
            trust_env=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        timeout: float = 20.0,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str = FEED_ACCEPT,
        max_body: int | None = None,
        guard: UrlGuard | None = None,
    ) -> FetchResult:
        """Fetch `url`; never raises for network or HTTP trouble — it comes back as an ERROR result."""
        started = time.perf_counter()
        request_headers = {"Accept": accept, **(headers or {})}
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        try:
            result = await self._follow(
                url, request_headers, _Budget(timeout), max_body or self.max_body, guard
            )
        except TimeoutError:
            result = _error(url, url, f"timed out after {timeout:g}s")
        except FetchRefused as exc:
            result = _error(url, url, f"refused: {exc}", transient=False)
        except _TooLarge as exc:
            result = _error(url, url, str(exc), transient=False)
        except httpx.HTTPError as exc:
            result = _error(url, url, describe_http_error(exc))
        except (ValueError, httpx.InvalidURL) as exc:  # a malformed link or Location header
            result = _error(url, url, f"bad URL: {exc}", transient=False)
        return _with_duration(result, time.perf_counter() - started)

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        budget: _Budget,
        max_body: int,
        guard: UrlGuard | None,
    ) -> FetchResult:
        current, visited = url, [url]
        for _ in range(self.max_redirects + 1):
            _check_scheme(current)
            async with budget.running():
                pinned = await guard(current) if guard is not None else None
            async with self._slot(current), budget.running():
                request = self._client.build_request(
                    "GET", current, headers=headers, timeout=budget.seconds
                )
                with _pinned(current, pinned):
                    response = await self._client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        target = urljoin(current, response.headers["location"])
                        if target in visited:
                            message = f"redirect loop: the server keeps redirecting to {target}"
                            return _error(url, current, message, False)
                        visited.append(target)
                        current = target
                        continue
                    return await self._finish(url, current, response, max_body)
                finally:
                    await response.aclose()
        return _error(url, current, f"too many redirects (more than {self.max_redirects})", False)

    @contextlib.asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        """Hold a per-host and a global connection slot (in that order)."""
        host = urlsplit(url).hostname or ""
        slots = self._per_host.get(host)
        if slots is None:
            slots = self._per_host[host] = _HostSlots(asyncio.Semaphore(self._per_host_limit))
        slots.users += 1
        try:
            async with slots.semaphore, self._global:
                yield
        finally:
            slots.users -= 1
            if slots.users == 0:
                del self._per_host[host]

    async def _finish(
        self, url: str, final_url: str, response: httpx.Response, max_body: int
    ) -> FetchResult:
        status = response.status_code
        base = FetchResult(
            url=url,
            final_url=final_url,
            status=FetchStatus.ERROR,
            http_status=status,
            content_type=response.headers.get("content-type"),
            retry_after=parse_retry_after(response.headers.get("retry-after"), self.clock.now()),
        )
        if status == 304:
            # Read the (empty) body to its end so the connection goes back to the pool: an
            # unread 304 makes httpcore close it, and every poll would open a new connection.
            with contextlib.suppress(httpx.HTTPError, _TooLarge):  # then it just closes
                await _read_body(response, 64 * 1024)
            return replace(base, status=FetchStatus.NOT_MODIFIED)
        if status == 410:
            message = "HTTP 410 Gone: the publisher has removed it"
            return replace(base, status=FetchStatus.GONE, error=message, transient=False)
        if status >= 400:
            message = f"HTTP {status} {response.reason_phrase}".strip()
            transient = status in (408, 425, 429) or status >= 500
            return replace(base, error=message, transient=transient)
        body = await _read_body(response, max_body)
        return replace(
            base,
            status=FetchStatus.OK,
            body=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            body_hash=hashlib.sha256(body).hexdigest(),
        )


# host -> the addresses its connections must go to, for the request hop in progress (per task).
_PINS: ContextVar[Mapping[str, Sequence[str]] | None] = ContextVar("monitor_pins", default=None)


@contextlib.contextmanager
def _pinned(url: str, addresses: Sequence[str] | None) -> Iterator[None]:
    """While the hop runs, new connections to its host go only to `addresses` (None: unpinned)."""
    if addresses is None:
        yield
        return
    if not addresses:
        raise FetchRefused("no address left to connect to")
    host = httpx.URL(url).raw_host.decode("ascii")
    token = _PINS.set({host: tuple(addresses)})
    try:
        yield
    finally:
        _PINS.reset(token)


class PinningBackend(httpcore.AsyncNetworkBackend):
    """Connects a pinned host to the addresses the guard checked, never to a fresh DNS answer.

    The URL keeps its host name, so the Host header, TLS SNI and certificate check use the name,
    and pooled connections stay per host name."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pins = _PINS.get()
        if pins is None:  # an unguarded request (a configured feed)
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = pins.get(host)
        if not addresses:  # fail closed: a guarded request must never resolve on its own
            raise httpcore.ConnectError(f"refused: {host} was not checked before connecting")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for every fetcher: building one costs tens of milliseconds."""
    return httpx.create_ssl_context(trust_env=False)


def pinning_transport(
    limits: httpx.Limits, inner: httpcore.AsyncNetworkBackend | None = None
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, its connection pool built on the PinningBackend.

    httpx has no public hook for a network backend, so its pool is replaced; the check below makes
    an httpx upgrade that changes this fail loudly instead of silently not pinning."""
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits, trust_env=False)
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError("this httpx version has no AsyncHTTPTransport._pool to pin addresses")
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=PinningBackend(inner),
    )
    return transport


class _Budget:
    """The time one fetch may spend on the network, across its redirect hops.

    Waiting for a connection slot is not counted: a hanging server on one host must not make the
    requests queued politely behind it look like timeouts of their own."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.left = seconds

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(self.left, 0.0)):
                yield
        finally:
            self.left -= time.monotonic() - started


@dataclass
class _HostSlots:
    semaphore: asyncio.Semaphore
    users: int = 0  # holding or waiting


async def _read_body(response: httpx.Response, max_body: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if (
        declared.isdigit()
        and int(declared) > max_body
        and not response.headers.get("content-encoding")
    ):
        raise _TooLarge(f"response too large: {_mb(int(declared))} declared, limit {_mb(max_body)}")
    decoder = _Decoder(response.headers.get("content-encoding", ""), max_body)
    async for chunk in response.aiter_raw(_CHUNK):
        decoder.feed(chunk)
    return decoder.finish()


class _Decoder:
    """Decompress gzip/deflate incrementally, never producing more than the limit."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        encoding = encoding.strip().lower()
        self._z: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()

    def feed(self, data: bytes) -> None:
        if self._z is None:
            self._add(data)
            return
        try:
            while data:
                # In small steps: one big step costs twice its size while zlib builds it.
                out = self._z.decompress(data, min(_CHUNK * 4, self.limit - self.size + 1))
                self._add(out)
                data = self._z.unconsumed_tail
        except zlib.error as exc:
            raise httpx.DecodingError(f"bad compressed body: {exc}") from exc

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLarge(f"response too large: more than {_mb(self.limit)}; cut off")
        self.parts.append(data)

    def finish(self) -> bytes:
        if self._z is not None:
            self._add(self._z.flush())
        return b"".join(self.parts)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    try:
        if value.isdigit():
            when = now + timedelta(seconds=int(value))
        else:
            when = parsedate_to_datetime(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return min(when, now + MAX_RETRY_AFTER)


def describe_http_error(exc: httpx.HTTPError) -> str:
    """Network errors in words a user understands."""
    text = str(exc) or exc.__class__.__name__
    lowered = text.lower()
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        if (
            "name or service not known" in lowered
            or "nodename nor servname" in lowered
            or ("name resolution" in lowered or "no address associated" in lowered)
        ):
            return "host not found (DNS lookup failed)"
        if "refused" in lowered or _os_errno(exc) == errno.ECONNREFUSED:
            return "connection refused"
        reason = _OS_REASONS.get(_os_errno(exc) or 0)
        if reason:
            return reason
        if "ssl" in lowered or "certificate" in lowered:
            return f"TLS error: {text}"
        return f"could not connect: {text}"
    if isinstance(exc, httpx.NetworkError):  # reading or writing after the connection was made
        reason = _OS_REASONS.get(_os_errno(exc) or 0)
        return reason or "the connection failed while the response was being read"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "location header" in lowered:
            return f"bad redirect: {text}"
        return f"the server broke the connection: {text}"
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the response: {text}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"bad URL: {text}"
    return f"{exc.__class__.__name__}: {text}"


_OS_REASONS = {
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "timed out while connecting",
    errno.ECONNRESET: "the server reset the connection",
}


def _os_errno(exc: BaseException) -> int | None:
    """The errno of the first OSError behind `exc` (anyio hides it behind a generic message)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current.errno
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(f"not an http(s) URL: {url[:100]}")


def _error(url: str, final_url: str, message: str, transient: bool = True) -> FetchResult:
    return FetchResult(
        url=url, final_url=final_url, status=FetchStatus.ERROR, error=message, transient=transient
    )


def _with_duration(result: FetchResult, duration: float) -> FetchResult:
    return replace(result, duration=duration)


def _mb(size: int) -> str:
    return f"{size / 10**6:.1f} MB"
