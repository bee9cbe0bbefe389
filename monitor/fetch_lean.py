"""The lean HTTP/1.1 path for feed polls and article pages: h11 on asyncio sockets, a keep-alive
pool per origin.

httpx + httpcore cost about 1 ms CPU per unchanged (304) feed; most of it is generality a feed
poll does not need (request/response models, anyio cancel scopes, a pool scanned on every
request). This module does the one exchange a feed poll is — a GET — with h11 (the same HTTP/1.1
state machine httpcore uses, so framing and its error messages are the same) on an asyncio
protocol. `monitor.fetch.Fetcher` decides per request whether to use it and turns what comes back
into the same `FetchResult` the httpx path makes. The first hop of an article link (third-party
input) goes this way too: the SSRF guard has checked its host, and a new connection goes only to
the addresses it allowed (`LeanPool.request`'s `addresses`), as the httpx path pins them.

Errors are raised as the httpx exceptions httpx would raise for the same trouble, so the
Fetcher's error texts are unchanged. A connection that cannot be made raises `ConnectFailed`: the
Fetcher then repeats the hop through httpx, whose own error text is the one reported.

The usual answer to a poll is a 304 whose head arrives in one piece. For it, h11's per-event
machinery (about half of what a poll costs) is skipped: the request is written from bytes made
once (`LeanRequest`, checked against h11's own grammar), and a complete, plainly well-formed
answer head without a body is read by one match of h11's grammar (`parse_head`). Anything else
(a body, a split or odd head, an informational answer) is handed to h11 from its first byte,
so what h11 accepts, refuses and says is unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h11
import httpx

# h11's grammar, so the fast path accepts exactly what h11 itself would parse the same way. It is
# a private module: should a later h11 move it, `AVAILABLE` is False and the Fetcher sends feed
# polls through httpx (slower, same results) instead of failing to start.
try:
    from h11._abnf import field_name, field_value, header_field, reason_phrase, request_target
except ImportError:  # pragma: no cover - depends on the installed h11
    AVAILABLE = False
    field_name = field_value = header_field = reason_phrase = request_target = r"(?!)"
else:
    AVAILABLE = True

# httpcore's values, so the two paths frame and expire connections alike.
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection may wait for its next request
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
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
        self.peer: IPAddress | None = None  # the address it went to, whatever the URL's host
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
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and peername:
            self.peer = parse_ip(str(peername[0]))

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
    """An answer whose head has arrived; the body is read with `read_chunk`.

    Read either by h11 (`event` given) or, for a bodyless answer, from a `Head` (`parse_head`):
    then `after` is what came after the head, and `keep` whether the request allowed keep-alive."""

    __slots__ = ("_conn", "_keep_alive", "headers", "reason_phrase", "status_code")

    def __init__(
        self, conn: _Connection, event: h11.Response | Head, after: bytes = b"", keep: bool = True
    ) -> None:
        self._conn: _Connection | None = conn
        self.status_code = event.status_code
        # httpx takes the server's own reason phrase, as ASCII.
        self.reason_phrase = bytes(event.reason).decode("ascii", errors="ignore")
        if isinstance(event, Head):
            self.headers = ResponseHeaders(event.headers)
            # Bytes after the answer would be read as the next answer: close (as h11 would).
            self._keep_alive: bool | None = keep and event.keep_alive and not after
        else:
            self.headers = ResponseHeaders(list(event.headers))
            self._keep_alive = None  # h11 decides

    async def read_chunk(self) -> bytes:
        """The next piece of the (still encoded) body; b"" at its end."""
        conn = self._conn
        if conn is None:
            return b""
        if self._keep_alive is not None:  # a bodyless answer read without h11: it is over
            self._release()
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
        """Back to the pool when the connection can carry another request (h11's rules)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._keep_alive is not None:
            reusable = self._keep_alive
        else:
            state = conn.h11
            # Bytes after the answer (h11 holds them) would be read as the next answer: close.
            reusable = (
                state.our_state is h11.DONE
                and state.their_state is h11.DONE
                and not state.trailing_data[0]
            )
            if reusable:
                state.start_next_cycle()
        if reusable:
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

    async def request(
        self, request: LeanRequest, addresses: Sequence[str] | None = None
    ) -> LeanResponse:
        """Send the request and wait for the answer's head.

        A reused connection that turns out closed by the server is replaced once by a fresh one
        (a GET may safely be sent again: nothing of it was answered). `addresses`: a new
        connection goes to one of these (tried in order) instead of resolving the host; the
        Host header and TLS (SNI, certificate) still use the host's name, and only an idle
        connection to one of them is reused: the pool is per host name, and one kept from a
        feed or from another article may have gone to an address the guard refused this time."""
        conn = self._take_idle(request.target.origin, addresses)
        if conn is not None:
            try:
                return await self._exchange(conn, request)
            except _Stale:
                pass
        conn = await self._connect(request.target, addresses)
        try:
            return await self._exchange(conn, request)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from None

    async def _exchange(self, conn: _Connection, request: LeanRequest) -> LeanResponse:
        try:
            assert conn.transport is not None
            conn.received = 0
            conn.transport.write(request.head)
            data = await _receive(conn, stale_check=conn.exchanges > 0)
            if not data:
                if conn.exchanges:
                    raise _Stale
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            head = parse_head(data)
            if head is not None:
                return LeanResponse(conn, head, data[head.end :], request.keep_alive)
            # h11 reads this answer from its first byte: first it learns what was sent.
            state = conn.h11
            state.send(request.event())
            state.send(_END)
            state.receive_data(data)
            while True:
                event = _next_event(conn)
                if event is h11.NEED_DATA:
                    data = await _receive(conn)
                    if not data and state.their_state is h11.SEND_RESPONSE:
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

    def _take_idle(
        self, origin: tuple[str, str, int], addresses: Sequence[str] | None = None
    ) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = self.monotonic()
        allowed = None if addresses is None else {parse_ip(a) for a in addresses} - {None}
        # The most recently used first: the least likely to be closed.
        for conn in reversed(list(idle)):
            if not conn.usable(now):
                conn.close()  # it forgets itself
            elif allowed is None or conn.peer in allowed:
                idle.remove(conn)
                self._idle_order.pop(conn, None)
                if not idle:
                    self._idle.pop(origin, None)
                return conn
        return None

    def _put_idle(self, conn: _Connection) -> None:
        conn.idle_since = self.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._idle_order[conn] = None

    async def _connect(self, target: Target, addresses: Sequence[str] | None = None) -> _Connection:
        while len(self._open) >= self.max_connections and self._idle_order:
            next(iter(self._idle_order)).close()  # the longest idle; it forgets itself
        _, host, port = target.origin
        context = self._ssl_context if target.tls else None
        loop = asyncio.get_running_loop()
        error: Exception | None = None
        for address in (host,) if addresses is None else addresses:
            conn = _Connection(self, target.origin)
            try:
                await loop.create_connection(
                    lambda: conn,  # noqa: B023 (called before the next round)
                    address,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                    happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                conn.close()
                error = exc
                continue
            self._open.add(conn)
            self.opened += 1
            return conn
        raise ConnectFailed(str(error or "no address to connect to")) from error

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


class LeanRequest:
    """A feed poll's GET: the bytes h11 would write for it, made once and checked as h11 checks
    them, and the request event h11 needs when it reads the answer itself."""

    __slots__ = ("_event", "head", "headers", "keep_alive", "target")

    def __init__(
        self, target: Target, headers: list[tuple[bytes, bytes]], lines: list[bytes]
    ) -> None:
        self.target = target
        self.headers = headers
        self.head = b"".join((b"GET %s HTTP/1.1\r\n" % target.target, *lines, b"\r\n"))
        self.keep_alive = b"close" not in _comma_values(headers, b"connection")
        self._event: h11.Request | None = None

    def event(self) -> h11.Request:
        if self._event is None:
            self._event = h11.Request(
                method=b"GET", target=self.target.target, headers=self.headers
            )
        return self._event


def build_request(target: Target, headers: list[tuple[bytes, bytes]]) -> LeanRequest:
    """The GET, Host first as httpx sends it. Raises h11.LocalProtocolError, with h11's words,
    for what h11 (hence httpx too) would not send: before anything is connected or sent."""
    full = [(b"Host", target.host_header), *headers]
    lines = [_header_line(name, value) for name, value in full]
    if sum(name.lower() == b"host" for name, _ in full) > 1:
        raise h11.LocalProtocolError("Found multiple Host: headers")
    if not _TARGET.fullmatch(target.target):
        raise h11.LocalProtocolError("Illegal target characters")
    return LeanRequest(target, full, lines)


@functools.lru_cache(maxsize=1024)
def _header_line(name: bytes, value: bytes) -> bytes:
    """One header as h11 writes it, checked as h11 checks it. Cached: most of a poll's headers
    are the same for every feed."""
    if not _FIELD_NAME.fullmatch(name):
        raise h11.LocalProtocolError(f"Illegal header name {name!r}")
    if not _FIELD_VALUE.fullmatch(value):
        raise h11.LocalProtocolError(f"Illegal header value {value!r}")
    if name.lower() in _FRAMING:  # a body's framing: h11 would change what it sends
        raise h11.LocalProtocolError(f"not sent by the lean path: {name!r}")
    return b"%s: %s\r\n" % (name, value)


_FIELD_NAME = re.compile(field_name.encode("ascii"))
_FIELD_VALUE = re.compile(field_value.encode("ascii"))
_TARGET = re.compile(request_target.encode("ascii"))
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Head:
    """A final answer's head read without h11, and where the bytes after it start."""

    status_code: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]  # (lower-case name, value), as h11 gives them
    keep_alive: bool
    end: int


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


# A whole HTTP/1.1 status line and header block, CRLF line ends, no folded lines.
_STATUS_LINE = rf"HTTP/1\.1 (?P<status>[0-9]{{3}})(?: (?P<reason>{reason_phrase}))?\r\n"
_HEAD = re.compile(
    (_STATUS_LINE + rf"(?P<fields>(?:{_unnamed(header_field)}\r\n)*)\r\n").encode("ascii")
)
_BODYLESS = frozenset({204, 304})  # to a GET, h11 frames these as having no body
_BODYLESS_CODES = frozenset(b"%d" % code for code in _BODYLESS)
_CONTENT_LENGTH = re.compile(rb"[0-9]{1,20}")


def parse_head(data: bytes) -> Head | None:
    """The head of a bodyless final answer (204, 304) that starts `data`, read as h11 reads it;
    None for anything else (incomplete, a body to frame, anything unusual): h11's to read."""
    if data[9:12] not in _BODYLESS_CODES:  # where the head below puts the status code
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    end += 4
    match = _HEAD.fullmatch(data, 0, end)
    if match is None:
        return None
    status = int(match["status"])
    if status not in _BODYLESS:
        return None
    headers: list[tuple[bytes, bytes]] = []
    seen_length = False
    for line in match["fields"].split(b"\r\n")[:-1]:
        raw_name, _, raw_value = line.partition(b":")
        name, value = raw_name.lower(), raw_value.strip(b" \t")
        if name == b"content-length":  # h11 checks it even where it frames no body
            if seen_length or not _CONTENT_LENGTH.fullmatch(value):
                return None
            seen_length = True
        elif name == b"transfer-encoding":
            return None
        headers.append((name, value))
    keep_alive = b"close" not in _comma_values(headers, b"connection")
    return Head(status, match["reason"] or b"", headers, keep_alive, end)


def parse_ip(text: str) -> IPAddress | None:
    """An address as ipaddress reads it (scope and IPv4-mapped form aside), so that the guard's,
    the resolver's and the socket's spellings compare equal; None for what is not an address."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _comma_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """h11's `get_comma_header`: the lower-cased, comma-separated values of a header."""
    out = []
    for key, value in headers:
        if key.lower() == name:
            out += [part.strip() for part in value.lower().split(b",") if part.strip()]
    return out


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
