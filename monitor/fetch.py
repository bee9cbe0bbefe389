"""HTTP fetching: one shared httpx.AsyncClient, politely and defensively.

Conditional GET, redirects followed by hand (counted, each hop checked), a deadline over the whole
exchange (so a server dripping bytes cannot hold a poll forever), a streamed body-size cap applied after
decompression (so a gzip bomb is cut off too), global and per-host concurrency limits, Retry-After.

The first hop of every GET (feed polls, and article pages pinned to the SSRF guard's addresses)
takes a lean path first: h11 on asyncio sockets with a keep-alive pool per origin
(monitor.fetch_lean), about a quarter of httpx's CPU per request. It sends the same request and
makes the same FetchResult; redirect hops, a connection that cannot be made, and a header or URL it
does not handle go through httpx. A pinned request reuses no connection to another address.
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
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urljoin, urlsplit

import h11
import httpcore
import httpx

from monitor import __version__, fetch_lean
from monitor.clock import Clock, SystemClock
from monitor.fetch_lean import (
    ConnectFailed,
    LeanPool,
    LeanRequest,
    LeanResponse,
    build_request,
    lean_target,
)
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


# Request headers the lean path leaves to httpx: framing and connection management (h11 and the
# pool own them), Host (httpx would send the given one), Cookie (httpx merges its cookie jar).
_HTTPX_ONLY_HEADERS = frozenset(
    {
        "host",
        "cookie",
        "connection",
        "keep-alive",
        "content-length",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-connection",
        "proxy-authorization",
    }
)
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})  # httpx's `Response.is_redirect`
_PREPARED_MAX = 8192  # feed URLs whose lean request is kept ready (about 1 kB each)


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
        ssl_context: ssl.SSLContext | None = None,
        lean: bool = True,
        proxy: str | None = None,
        no_proxy: Sequence[str] = (),
    ) -> None:
        """`transport` replaces the network entirely (tests); then guard pins are not enforced.
        `network_backend` is what the pinning backend connects through (default: anyio).
        `ssl_context`: the TLS trust and settings (default: certifi's roots, verifying).
        `lean=False`, a `transport` or a `network_backend` send feed polls through httpx too, as
        does an h11 without the grammar module the lean path checks requests and answers with.
        `proxy`: an HTTP(S) forward proxy for every request but those to loopback and to the
        `no_proxy` hosts (and their subdomains; "*": none); its requests go through httpx."""
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
        context = ssl_context or _ssl_context()
        direct = transport or _ByPin(
            pinning_transport(limits, network_backend, context),
            # Not kept alive: httpx pools per host name, so a kept connection could later carry
            # a request pinned elsewhere (see _ByPin).
            pinning_transport(
                httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
                network_backend,
                context,
            ),
        )
        mounts = _proxy_mounts(proxy, no_proxy, direct, limits, network_backend, context)
        self._client = httpx.AsyncClient(
            transport=direct,
            mounts=mounts,
            follow_redirects=False,
            headers={
                "User-Agent": user_agent or DEFAULT_USER_AGENT,
                "Accept-Encoding": "gzip, deflate",
            },
            trust_env=False,
        )
        self._lean: LeanPool | None = None
        # URL -> (request headers, the lean request ready to send, or None: httpx sends it)
        self._prepared: dict[str, tuple[tuple[tuple[str, str], ...], LeanRequest | None]] = {}
        direct_only = transport is None and network_backend is None and not mounts
        if lean and fetch_lean.AVAILABLE and direct_only:
            self._lean = LeanPool(max_connections, context)
        # The client's own headers as httpx holds them: (name, value, lower-case name).
        self._base_headers = [
            (k, v, k.decode("ascii").lower()) for k, v in self._client.headers.raw
        ]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
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
        for hop in range(self.max_redirects + 1):
            _check_scheme(current)
            pinned = None
            if guard is not None:
                async with budget.running():
                    pinned = await guard(current)
            async with self._slot(current), budget.running():
                step: FetchResult | str | None = None
                if hop == 0 and self._lean is not None:
                    step = await self._lean_hop(url, headers, max_body, pinned)
                if step is None:
                    step = await self._httpx_hop(url, current, headers, budget, max_body, pinned)
            if isinstance(step, FetchResult):
                return step
            if step in visited:
                message = f"redirect loop: the server keeps redirecting to {step}"
                return _error(url, current, message, False)
            visited.append(step)
            current = step
        return _error(url, current, f"too many redirects (more than {self.max_redirects})", False)

    async def _httpx_hop(
        self,
        url: str,
        current: str,
        headers: dict[str, str],
        budget: _Budget,
        max_body: int,
        pinned: Sequence[str] | None,
    ) -> FetchResult | str:
        """One request through httpx: the result, or the URL a redirect points to."""
        request = self._client.build_request(
            "GET", current, headers=headers, timeout=budget.seconds
        )
        with _pinned(current, pinned):
            response = await self._client.send(request, stream=True)
        try:
            if response.is_redirect and "location" in response.headers:
                return urljoin(current, response.headers["location"])
            return await self._finish(url, current, _HttpxAnswer(response), max_body)
        finally:
            await response.aclose()

    async def _lean_hop(
        self,
        url: str,
        headers: dict[str, str],
        max_body: int,
        pinned: Sequence[str] | None = None,
    ) -> FetchResult | str | None:
        """The first hop of a fetch on the lean path; None: do it through httpx instead.

        Only what cannot have reached the server falls back (an unusual URL or header, a
        connection that could not be made), so the server never sees the request twice.
        `pinned`: the addresses the guard allowed (an article link): a new connection goes to
        one of them only, never to a fresh DNS answer, as with httpx (`PinningBackend`)."""
        assert self._lean is not None
        if pinned is not None and not pinned:
            raise FetchRefused("no address left to connect to")
        # An article's URL is fetched once: its request is not kept ready like a feed's.
        prepared = self._prepare_lean(url, headers, keep=pinned is None)
        if prepared is None:
            return None
        try:
            response = await self._lean.request(prepared, pinned)
        except ConnectFailed:
            return None
        try:
            if "set-cookie" in response.headers:
                self._keep_cookies(url, response)
            if response.status_code in _REDIRECT_CODES and "location" in response.headers:
                location = response.headers.get("location") or ""
                _check_location(url, location)
                return urljoin(url, location)
            return await self._finish(url, url, _LeanAnswer(response), max_body)
        finally:
            response.close()  # a no-op once the body was read and the connection pooled

    def _prepare_lean(
        self, url: str, headers: dict[str, str], keep: bool = True
    ) -> LeanRequest | None:
        """The parsed URL and the checked request, or None if httpx should send it.

        Kept per URL and headers (`keep`): an unchanged feed sends the same request (same ETag)
        each poll, and h11 checks every header of a new one. Not kept while httpx holds cookies,
        which may change what it would send."""
        cookies = len(self._client.cookies.jar) > 0
        key = tuple(headers.items())
        kept = self._prepared.get(url) if keep else None
        if not cookies and kept is not None and kept[0] == key:
            return kept[1]
        prepared: LeanRequest | None = None
        target = lean_target(url)
        lean_headers = self._lean_headers(url, headers) if target is not None else None
        if target is not None and lean_headers is not None:
            with contextlib.suppress(h11.LocalProtocolError):
                prepared = build_request(target, lean_headers)
        if keep and not cookies:
            if len(self._prepared) >= _PREPARED_MAX:
                self._prepared.clear()
            self._prepared[url] = (key, prepared)  # one per URL: its latest ETag
        return prepared

    def _lean_headers(self, url: str, headers: dict[str, str]) -> list[tuple[bytes, bytes]] | None:
        """The request headers httpx would send, Host aside: the client's own, with the request's
        replacing same-named ones and appended in their order (httpx's `Headers.update`)."""
        names = {name.lower() for name in headers}
        if not names.isdisjoint(_HTTPX_ONLY_HEADERS):
            return None
        if len(self._client.cookies.jar):  # httpx would add a Cookie header: let it say which
            return _without_host(self._client.build_request("GET", url, headers=headers))
        try:
            extra = [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]
        except UnicodeEncodeError:  # httpx refuses these its own way: let it
            return None
        kept = [(k, v) for k, v, lower in self._base_headers if lower not in names]
        return kept + extra

    def _keep_cookies(self, url: str, response: LeanResponse) -> None:
        """Store what the server set, as httpx does for every response it receives."""
        raw = [(k, v) for k, v in response.headers.raw]
        answer = httpx.Response(
            response.status_code, headers=raw, request=httpx.Request("GET", url)
        )
        self._client.cookies.extract_cookies(answer)

    def _slot(self, url: str) -> _Slot:
        """Hold a per-host and a global connection slot (in that order)."""
        return _Slot(self, _split(url)[1])

    async def _finish(
        self, url: str, final_url: str, answer: _Answer, max_body: int
    ) -> FetchResult:
        status = answer.status_code
        headers = answer.headers
        content_type = headers.get("content-type")
        retry_after = parse_retry_after(headers.get("retry-after"), self.clock.now())
        if status == 304:
            # Read the (empty) body to its end so the connection goes back to the pool: an
            # unread 304 makes httpcore close it, and every poll would open a new connection.
            with contextlib.suppress(httpx.HTTPError):  # then it just closes
                await answer.drain()
            return FetchResult(
                url,
                final_url,
                FetchStatus.NOT_MODIFIED,
                status,
                content_type=content_type,
                retry_after=retry_after,
            )
        if status >= 400:
            outcome, transient = FetchStatus.ERROR, status in (408, 425, 429) or status >= 500
            message = f"HTTP {status} {answer.reason_phrase}".strip()
            if status == 410:
                outcome, transient = FetchStatus.GONE, False
                message = "HTTP 410 Gone: the publisher has removed it"
            return FetchResult(
                url,
                final_url,
                outcome,
                status,
                content_type=content_type,
                retry_after=retry_after,
                error=message,
                transient=transient,
            )
        body = await answer.read_body(max_body)
        return FetchResult(
            url,
            final_url,
            FetchStatus.OK,
            status,
            body=body,
            content_type=content_type,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            body_hash=hashlib.sha256(body).hexdigest(),
            retry_after=retry_after,
        )


class _Headers(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None: ...


class _Answer(Protocol):
    """An answer whose head has arrived, from httpx or from the lean path."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> _Headers: ...
    async def read_body(self, max_body: int) -> bytes: ...
    async def drain(self) -> None:
        """Read a bodiless answer (a 304) to its end; a Content-Length it carries describes
        the stored copy, not a body to come."""


class _HttpxAnswer:
    __slots__ = ("response",)

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def reason_phrase(self) -> str:
        return self.response.reason_phrase

    @property
    def headers(self) -> _Headers:
        return self.response.headers

    async def read_body(self, max_body: int) -> bytes:
        decoder = _decoder_for(self.response.headers, max_body)
        async for chunk in self.response.aiter_raw(_CHUNK):
            decoder.feed(chunk)
        return decoder.finish()

    async def drain(self) -> None:
        async for _ in self.response.aiter_raw(_CHUNK):
            pass


class _LeanAnswer:
    __slots__ = ("headers", "reason_phrase", "response", "status_code")

    def __init__(self, response: LeanResponse) -> None:
        self.response = response
        self.status_code = response.status_code
        self.reason_phrase = response.reason_phrase
        self.headers: _Headers = response.headers

    async def read_body(self, max_body: int) -> bytes:
        decoder = _decoder_for(self.headers, max_body)
        while chunk := await self.response.read_chunk():
            decoder.feed(chunk)
        return decoder.finish()

    async def drain(self) -> None:
        while await self.response.read_chunk():
            pass


def _check_location(current: str, location: str) -> None:
    """Raise what httpx raises for a Location it cannot follow: it builds the next request (so
    parses the Location) for every redirect it receives, followed or not."""
    try:
        target = httpx.URL(location)
    except httpx.InvalidURL as exc:
        raise httpx.RemoteProtocolError(f"Invalid URL in location header: {exc}.") from None
    base = httpx.URL(current)
    if target.scheme and not target.host:
        target = target.copy_with(host=base.host)
    if target.is_relative_url:
        base.join(target)


def _without_host(request: httpx.Request) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]


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

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend | None = None, proxy_host: str | None = None
    ) -> None:
        """`proxy_host`: requests go through this proxy, which resolves their hosts itself; a
        guarded request may connect to it once the guard has checked the request's host."""
        self.inner = inner or httpcore.AnyIOBackend()
        self.proxy_host = proxy_host

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
        addresses = (host,) if host == self.proxy_host else pins.get(host)
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


class _ByPin(httpx.AsyncBaseTransport):
    """Unpinned requests (feeds) through one pool, pinned ones (article links) through another
    that keeps no connection: httpx reuses an idle connection by host name alone, and one opened
    to a DNS answer for a feed, or pinned for another article, may go to an address this
    request's guard refused."""

    def __init__(self, unpinned: httpx.AsyncBaseTransport, pinned: httpx.AsyncBaseTransport):
        self.unpinned = unpinned
        self.pinned = pinned

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.unpinned if _PINS.get() is None else self.pinned
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self.unpinned.aclose()
        await self.pinned.aclose()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for every fetcher: building one costs tens of milliseconds."""
    return httpx.create_ssl_context(trust_env=False)


def pinning_transport(
    limits: httpx.Limits,
    inner: httpcore.AsyncNetworkBackend | None = None,
    ssl_context: ssl.SSLContext | None = None,
    proxy: str | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, its connection pool built on the PinningBackend.

    httpx has no public hook for a network backend, so its pool is replaced; the check below makes
    an httpx upgrade that changes this fail loudly instead of silently not pinning.
    `proxy`: through this forward proxy: plain-HTTP requests are forwarded, HTTPS ones tunnelled
    (CONNECT), so TLS is still verified end to end against the site's own name."""
    context = ssl_context or _ssl_context()
    # The user:password of a proxy URL become Proxy-Authorization.
    settings = httpx.Proxy(proxy) if proxy else None
    transport = httpx.AsyncHTTPTransport(
        verify=context, limits=limits, trust_env=False, proxy=settings
    )
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError("this httpx version has no AsyncHTTPTransport._pool to pin addresses")
    if settings is None:
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinningBackend(inner),
        )
    else:
        transport._pool = httpcore.AsyncHTTPProxy(
            proxy_url=str(settings.url),
            proxy_auth=settings.raw_auth,
            proxy_headers=settings.headers.raw,
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinningBackend(inner, proxy_host=settings.url.host),
        )
    return transport


def _proxy_mounts(
    proxy: str | None,
    no_proxy: Sequence[str],
    direct: httpx.AsyncBaseTransport,
    limits: httpx.Limits,
    inner: httpcore.AsyncNetworkBackend | None,
    context: ssl.SSLContext,
) -> dict[str, httpx.AsyncBaseTransport | None]:
    """httpx mounts: everything through the proxy but loopback and the `no_proxy` hosts."""
    if not proxy or "*" in no_proxy:
        return {}
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        "all://": pinning_transport(limits, inner, context, proxy)
    }
    for host in ("localhost", "127.0.0.1", "::1", *no_proxy):
        mounts[_direct_pattern(host)] = direct
    return mounts


def _direct_pattern(host: str) -> str:
    """httpx's mount pattern for a host: "*name" is the name and its subdomains."""
    host = host.strip().lstrip(".").lower()
    if ":" in host:  # an IPv6 address has no subdomains
        return f"all://[{host.strip('[]')}]"
    return f"all://*{host}"


class _Budget:
    """The time one fetch may spend on the network, across its redirect hops.

    Waiting for a connection slot is not counted: a hanging server on one host must not make the
    requests queued politely behind it look like timeouts of their own."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.left = seconds

    def running(self) -> _Running:
        """`async with budget.running():` the block spends from the budget, and is cut off with
        TimeoutError when it runs out."""
        return _Running(self)


class _Running:
    # A class, not an async generator: this runs twice per poll, and a generator-based context
    # manager costs several times as much.
    __slots__ = ("_budget", "_started", "_timeout")

    def __init__(self, budget: _Budget) -> None:
        self._budget = budget
        self._started = 0.0
        self._timeout: asyncio.Timeout | None = None

    async def __aenter__(self) -> None:
        self._started = time.monotonic()
        self._timeout = asyncio.timeout(max(self._budget.left, 0.0))
        await self._timeout.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            assert self._timeout is not None
            await self._timeout.__aexit__(kind, exc, tb)  # raises TimeoutError if it fired
        finally:
            self._budget.left -= time.monotonic() - self._started


class _Slot:
    """A per-host and a global connection slot, taken in that order (see `Fetcher._slot`)."""

    __slots__ = ("_fetcher", "_host", "_slots")

    def __init__(self, fetcher: Fetcher, host: str) -> None:
        self._fetcher = fetcher
        self._host = host
        slots = fetcher._per_host.get(host)
        if slots is None:
            slots = fetcher._per_host[host] = _HostSlots(asyncio.Semaphore(fetcher._per_host_limit))
        self._slots = slots

    async def __aenter__(self) -> None:
        slots = self._slots
        slots.users += 1
        try:
            await slots.semaphore.acquire()
            try:
                await self._fetcher._global.acquire()
            except BaseException:
                slots.semaphore.release()
                raise
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._fetcher._global.release()
        self._slots.semaphore.release()
        self._leave()

    def _leave(self) -> None:
        """Only hosts with requests in flight or queued keep their slots."""
        slots = self._slots
        slots.users -= 1
        if slots.users == 0 and self._fetcher._per_host.get(self._host) is slots:
            del self._fetcher._per_host[self._host]


@dataclass
class _HostSlots:
    semaphore: asyncio.Semaphore
    users: int = 0  # holding or waiting


def _decoder_for(headers: _Headers, max_body: int) -> _Decoder:
    """A decoder for the body these headers announce; refuses a declared oversize at once."""
    declared = headers.get("content-length") or ""
    encoding = headers.get("content-encoding") or ""
    if declared.isdigit() and int(declared) > max_body and not encoding:
        raise _TooLarge(f"response too large: {_mb(int(declared))} declared, limit {_mb(max_body)}")
    return _Decoder(encoding, max_body)


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


@functools.lru_cache(maxsize=4096)
def _split(url: str) -> tuple[str, str]:
    """(scheme, host name) of a URL; cached, as feed URLs are polled again and again."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname or ""


def _check_scheme(url: str) -> None:
    scheme = _split(url)[0]
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
