"""The lean HTTP/1.1 path for feed polls: h11 on asyncio sockets, a keep-alive pool per origin.

httpx + httpcore cost about 1 ms CPU per unchanged (304) feed; most of it is generality a feed
poll does not need (request/response models, anyio cancel scopes, a pool scanned on every
request). This module does the one exchange a feed poll is — a GET of a trusted, configured URL
— with h11 (the same HTTP/1.1 state machine httpcore uses, so framing and its error messages are
the same) on an asyncio protocol. `monitor.fetch.Fetcher` decides per request whether to use it
and turns what comes back into the same `FetchResult` the httpx path makes.

Errors are raised as the httpx exceptions httpx would raise for the same trouble, so the
Fetcher's error texts are unchanged. A connection that cannot be made raises `ConnectFailed`: the
Fetcher then repeats the hop through httpx, whose own error text is the one reported.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import h11
import httpx

# httpcore's values, so the two paths frame and expire connections alike.
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection may wait for its next request
_MAX_INCOMPLETE_EVENT = 100 * 1024
_PAUSE_AT = 1 << 20  # stop reading the socket while this much is buffered and unread
_HAPPY_EYEBALLS_DELAY = 0.25  # as anyio's connect_tcp


class ConnectFailed(Exception):
    """No connection could be made; nothing was sent (the caller may try another way)."""


class _Stale(Exception):
    """A reused connection ended before any byte of the answer: the server had closed it."""


@dataclass(frozen=True, slots=True)
class Target:
    """What the lean path needs of a URL, as httpx itself parses and normalises it."""

    origin: tuple[str, str, int]  # scheme, host (IDNA, no brackets), port
    tls: bool
    host_header: bytes  # httpx's `url.netloc`: host, and the port when not the default
    target: bytes  # path and query, percent-encoded as httpx sends them


@functools.lru_cache(maxsize=16384)
def lean_target(url: str) -> Target | None:
    """The parsed URL, or None when only httpx should fetch it (user info, odd schemes).

    Cached: feed URLs are a fixed, configured set, polled again and again."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None
    scheme = parsed.scheme
    if scheme not in ("http", "https") or not parsed.raw_host or parsed.userinfo:
        return None
    tls = scheme == "https"
    port = parsed.port or (443 if tls else 80)
    host = parsed.raw_host.decode("ascii")
    return Target((scheme, host, port), tls, parsed.netloc, parsed.raw_path)


class ResponseHeaders:
    """Response headers read as httpx reads them: case-insensitive, repeats joined by ", ",
    decoded as ASCII, else UTF-8, else Latin-1 (decided over the whole header block)."""

    __slots__ = ("_encoding", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw  # (lower-case name, value), as h11 gives them
        self._encoding: str | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("ascii")
        values = [v for k, v in self.raw if k == key]
        if not values:
            return default
        encoding = self._encoding or self._find_encoding()
        return ", ".join(v.decode(encoding) for v in values)

    def __contains__(self, name: str) -> bool:
        key = name.lower().encode("ascii")
        return any(k == key for k, _ in self.raw)

    def _find_encoding(self) -> str:
        for encoding in ("ascii", "utf-8"):
            try:
                for key, value in self.raw:
                    key.decode(encoding)
                    value.decode(encoding)
            except UnicodeDecodeError:
                continue
            self._encoding = encoding
            return encoding
        self._encoding = "iso-8859-1"
        return self._encoding


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: h11 does the framing, this buffers what the socket gives."""

    def __init__(self, pool: LeanPool, origin: tuple[str, str, int]) -> None:
        self.pool = pool
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_INCOMPLETE_EVENT)
        self.transport: asyncio.Transport | None = None
        self.exchanges = 0  # answers completed on it (more than 0: a reused connection)
        self.received = 0  # bytes received during the current exchange
        self.idle_since = 0.0
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    # -------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None:
            self._error = exc
        self._wake()
        self.pool._forget(self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -------------------------------------------------------------- use

    def usable(self, now: float) -> bool:
        """An idle connection fit to carry another request (the server has not closed it)."""
        transport = self.transport
        return (
            transport is not None
            and not transport.is_closing()
            and not self._eof
            and not self._chunks  # unasked-for bytes: the framing would be off
            and now - self.idle_since < KEEPALIVE_EXPIRY
        )

    async def receive(self) -> bytes:
        """What the socket gave since the last call; b"" once it has closed."""
        while not self._chunks:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        self.received += len(data)
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        """Drop the connection (abort: nothing more will be read or written on it)."""
        if self.transport is not None:
            self.transport.abort()
        self.pool._forget(self)


class LeanResponse:
    """An answer whose head has arrived; the body is read with `read_chunk`."""

    __slots__ = ("_conn", "headers", "reason_phrase", "status_code")

    def __init__(self, conn: _Connection, event: h11.Response) -> None:
        self._conn: _Connection | None = conn
        self.status_code = event.status_code
        # httpx takes the server's own reason phrase, as ASCII.
        self.reason_phrase = bytes(event.reason).decode("ascii", errors="ignore")
        self.headers = ResponseHeaders(list(event.headers))

    async def read_chunk(self) -> bytes:
        """The next piece of the (still encoded) body; b"" at its end."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            while True:
                event = _next_event(conn)
                if event is h11.NEED_DATA:
                    conn.h11.receive_data(await _receive(conn))
                elif isinstance(event, h11.Data):
                    return bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._release()
                    return b""
                else:  # h11 raises before giving anything else after a response head
                    raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}")
        except BaseException:
            self.close()
            raise

    def _release(self) -> None:
        """Back to the pool when h11 says the connection can carry another request."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        state = conn.h11
        # Bytes after the answer (h11 holds them) would be read as the next answer: close.
        if (
            state.our_state is h11.DONE
            and state.their_state is h11.DONE
            and not state.trailing_data[0]
        ):
            state.start_next_cycle()
            conn.exchanges += 1
            conn.pool._put_idle(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Give the connection up without reading the rest (as httpx does with an unread body)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class LeanPool:
    """Keep-alive connections per origin; at most `max_connections` open at once in all.

    The Fetcher's slots bound how many requests run per host and in all; this pool only keeps
    the idle connections between them, closing the longest idle one when a new connection would
    go over the limit, and any that idled longer than KEEPALIVE_EXPIRY."""

    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext) -> None:
        self.max_connections = max_connections
        ssl_context.set_alpn_protocols(["http/1.1"])  # as httpcore does, on the same context
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_order: OrderedDict[_Connection, None] = OrderedDict()
        self._open: set[_Connection] = set()
        self.opened = 0  # connections made, for tests and benchmarks
        self.monotonic: Callable[[], float] = time.monotonic

    async def request(self, target: Target, request: h11.Request) -> LeanResponse:
        """Send the request and wait for the answer's head.

        A reused connection that turns out closed by the server is replaced once by a fresh one
        (a GET may safely be sent again: nothing of it was answered)."""
        conn = self._take_idle(target.origin)
        if conn is not None:
            try:
                return await self._exchange(conn, request)
            except _Stale:
                pass
        conn = await self._connect(target)
        try:
            return await self._exchange(conn, request)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from None

    async def _exchange(self, conn: _Connection, request: h11.Request) -> LeanResponse:
        try:
            state = conn.h11
            data = (state.send(request) or b"") + (state.send(_END) or b"")
            assert conn.transport is not None
            conn.received = 0
            conn.transport.write(data)
            while True:
                event = _next_event(conn)
                if event is h11.NEED_DATA:
                    data = await _receive(conn, stale_check=conn.exchanges > 0)
                    if not data and state.their_state is h11.SEND_RESPONSE:
                        if conn.exchanges and not conn.received:
                            raise _Stale
                        raise httpx.RemoteProtocolError(
                            "Server disconnected without sending a response."
                        )
                    state.receive_data(data)
                elif isinstance(event, h11.Response):
                    return LeanResponse(conn, event)
                # an informational answer (100, 103): the real one follows
        except BaseException:
            conn.close()
            raise

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = self.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closed
            self._idle_order.pop(conn, None)
            if conn.usable(now):
                return conn
            conn.close()
        self._idle.pop(origin, None)
        return None

    def _put_idle(self, conn: _Connection) -> None:
        conn.idle_since = self.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._idle_order[conn] = None

    async def _connect(self, target: Target) -> _Connection:
        while len(self._open) >= self.max_connections and self._idle_order:
            next(iter(self._idle_order)).close()  # the longest idle; it forgets itself
        _, host, port = target.origin
        context = self._ssl_context if target.tls else None
        loop = asyncio.get_running_loop()
        conn = _Connection(self, target.origin)
        try:
            await loop.create_connection(
                lambda: conn,
                host,
                port,
                ssl=context,
                server_hostname=host if context is not None else None,
                happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            conn.close()
            raise ConnectFailed(str(exc)) from exc
        self._open.add(conn)
        self.opened += 1
        return conn

    def _forget(self, conn: _Connection) -> None:
        """Called when a connection closes, from either side; it may have been idle."""
        self._open.discard(conn)
        if conn not in self._idle_order:
            return
        del self._idle_order[conn]
        idle = self._idle.get(conn.origin, [])
        if conn in idle:
            idle.remove(conn)
        if not idle:
            self._idle.pop(conn.origin, None)

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._idle.clear()
        self._idle_order.clear()


def build_request(target: Target, headers: list[tuple[bytes, bytes]]) -> h11.Request:
    """The GET, Host first as httpx sends it. Raises h11.LocalProtocolError for a header that
    h11 (hence httpx too) will not send: before anything is connected or sent."""
    return h11.Request(
        method=b"GET", target=target.target, headers=[(b"Host", target.host_header), *headers]
    )


_END = h11.EndOfMessage()


def _next_event(conn: _Connection) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
    try:
        return conn.h11.next_event()
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc


async def _receive(conn: _Connection, stale_check: bool = False) -> bytes:
    try:
        return await conn.receive()
    except OSError as exc:
        if stale_check and not conn.received:
            raise _Stale from exc
        raise httpx.ReadError(str(exc)) from exc
