"""The newsroom: a real HTTP/1.1 server on loopback that plays news sites for tests and benchmarks.

    with Newsroom() as room:
        room.publish("/rss", count=5, lang="ru")          # article pages + a feed listing them
        room.set_fault("/slow.xml", Delay(3.0))           # misbehave on one path
        ...poll room.url("/rss") with the code under test...
        assert all(r.conditional for r in room.requests_for("/rss")[1:])

Every resource carries an ETag and a Last-Modified date and answers conditional requests with 304
(switchable per path). Faults are small `Fault` objects set per path; add new kinds by subclassing
`Fault` and using the `Exchange` they are handed. Waits inside faults use `Exchange.wait`, which
returns early when the server stops or the client hangs up, so nothing outlives `stop()`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import Message
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from hashlib import blake2b
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from monitor.clock import Clock, SystemClock
from tests.newsroom_content import (
    FEED_CONTENT_TYPES,
    HOSTILE_KINDS,
    HTML_TYPE,
    XXE_PROBE_PATH,
    Entry,
    FeedFormat,
    FeedMeta,
    HostileKind,
    RealPage,
    Story,
    generic_homepage,
    hostile_feed,
    load_real_pages,
    make_story,
    render_article,
    render_feed,
    story_entry,
)

__all__ = [
    "HOSTILE_KINDS",
    "SHARED_DATA",
    "UNRESOLVABLE_URL",
    "XXE_PROBE_PATH",
    "CloseMidBody",
    "ContentType",
    "Delay",
    "Disconnect",
    "Drip",
    "Endless",
    "Entry",
    "Exchange",
    "Fault",
    "FeedFormat",
    "GzipBomb",
    "Hang",
    "HostileKind",
    "HtmlInstead",
    "LoggedRequest",
    "Newsroom",
    "Oversized",
    "Published",
    "RealPage",
    "Redirect",
    "Resource",
    "ServedCorpus",
    "Status",
    "Story",
    "Times",
    "Transcode",
    "make_story",
    "render_article",
    "story_entry",
    "unused_port_url",
]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UNRESOLVABLE_URL = "http://newsroom-test.invalid/feed.xml"  # .invalid never resolves (RFC 6761)
MAX_HOSTS = 10  # 127.0.0.1 ... 127.0.0.10

HeaderPairs = Sequence[tuple[str, str]]


def unused_port_url(path: str = "/feed.xml") -> str:
    """A loopback URL where nothing listens (connection refused), at least right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _pairs(headers: Mapping[str, str] | HeaderPairs | None) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(k), str(v)) for k, v in items)


def _split_target(path_or_url: str) -> str:
    """Path (and query) of a URL, or the path itself."""
    if "://" in path_or_url:
        parts = urlsplit(path_or_url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not path_or_url.startswith("/"):
        raise ValueError(f"path must start with '/': {path_or_url!r}")
    return path_or_url


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """What one path serves when no fault interferes."""

    body: bytes
    content_type: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    etag: str = '""'
    last_modified: int = 0  # epoch seconds
    conditional: bool = True  # honour If-None-Match / If-Modified-Since

    def validators(self) -> list[tuple[str, str]]:
        return [("ETag", self.etag), ("Last-Modified", formatdate(self.last_modified, usegmt=True))]

    def response_headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type), *self.validators(), *self.headers]


def _etag(body: bytes) -> str:
    return '"' + blake2b(body, digest_size=10).hexdigest() + '"'


def _not_modified(headers: Message, resource: Resource) -> bool:
    """RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or resource.etag in tags
    ims = headers.get("If-Modified-Since")
    if not ims:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    return resource.last_modified <= since.timestamp()


@dataclass(frozen=True)
class _Feed:
    fmt: FeedFormat
    meta: FeedMeta
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Published:
    """A generated story served as a page and listed in a feed."""

    story: Story
    entry: Entry
    path: str
    url: str


@dataclass(frozen=True)
class ServedCorpus:
    """The real extraction-dev pages as served: page id -> URL, and the feeds listing them."""

    pages: tuple[RealPage, ...]
    page_urls: Mapping[str, str]
    feed_urls: tuple[str, ...]


# --------------------------------------------------------------------------- request log


@dataclass(eq=False)
class LoggedRequest:
    """One request as the server saw it. `status` is set before the status line is sent."""

    method: str
    target: str  # path and query as requested
    path: str  # without the query
    headers: dict[str, str]  # lower-case names
    server: str  # "127.0.0.x:port" that took it
    time: float  # time.monotonic() on arrival
    status: int | None = None  # None while nothing was answered (e.g. Hang, Disconnect)
    finished: float | None = None
    bytes_sent: int = 0  # body bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def conditional(self) -> bool:
        return "if-none-match" in self.headers or "if-modified-since" in self.headers

    @property
    def host(self) -> str:
        return self.server.rsplit(":", 1)[0]


class _RequestLog:
    def __init__(self, limit: int | None) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)
        self._changed = threading.Condition()

    def add(self, entry: LoggedRequest) -> None:
        with self._changed:
            self._entries.append(entry)
            self._changed.notify_all()

    def touched(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def snapshot(self) -> list[LoggedRequest]:
        with self._changed:
            return list(self._entries)

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()

    def wait(self, ready: Callable[[Iterable[LoggedRequest]], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: ready(self._entries), timeout)


# --------------------------------------------------------------------------- exchange & faults


class Exchange:
    """One request being answered: the toolbox a `Fault` misbehaves with."""

    def __init__(
        self,
        newsroom: Newsroom,
        handler: _Handler,
        entry: LoggedRequest,
        resource: Resource | None,
    ) -> None:
        self.newsroom = newsroom
        self.entry = entry
        self.resource = resource
        self._handler = handler
        self._chunked = False
        self._send_body = False
        self.started = False
        self.complete = False
        self.bytes_sent = 0

    @property
    def method(self) -> str:
        return self.entry.method

    @property
    def path(self) -> str:
        return self.entry.path

    def header(self, name: str) -> str | None:
        return self._handler.headers.get(name)

    @property
    def base_url(self) -> str:
        return f"http://{self.entry.server}"

    def absolute(self, target: str) -> str:
        if "://" in target:
            return target
        return self.base_url + (target if target.startswith("/") else "/" + target)

    def start(self, status: int, headers: HeaderPairs = (), *, length: int | None) -> bool:
        """Send the status line and headers. `length=None` means a chunked body.

        Returns whether a body may follow (not for HEAD, 1xx, 204, 304)."""
        if self.started:
            raise RuntimeError("response already started")
        handler = self._handler
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        bodyless = status < 200 or status in (204, 304)
        if not bodyless:
            self._chunked = length is None
            if length is None:
                handler.send_header("Transfer-Encoding", "chunked")
            else:
                handler.send_header("Content-Length", str(length))
        self.entry.status = status  # before the bytes leave, so clients never see it unset
        self.started = True
        self._send_body = not bodyless and self.method != "HEAD"
        self.complete = not self._send_body
        handler.end_headers()
        return self._send_body

    def write(self, data: bytes) -> None:
        if not self._send_body or not data:
            return
        payload = b"%x\r\n%s\r\n" % (len(data), data) if self._chunked else data
        self._handler.wfile.write(payload)
        self.bytes_sent += len(data)

    def end(self) -> None:
        """Finish a streamed body (the last chunk of a chunked one)."""
        if self._send_body and self._chunked:
            self._handler.wfile.write(b"0\r\n\r\n")
        self.complete = True

    def respond(self, status: int, headers: HeaderPairs = (), body: bytes = b"") -> None:
        if self.start(status, headers, length=len(body)):
            self.write(body)
        self.complete = True

    def serve(self, resource: Resource | None) -> None:
        """The normal answer for `resource`: 404 if None, 304 when the client's copy is current."""
        if resource is None:
            self.respond(404, [("Content-Type", "text/plain; charset=utf-8")], b"not found\n")
        elif resource.conditional and resource.status == 200 and self._not_modified(resource):
            self.respond(304, resource.validators())
        else:
            self.respond(resource.status, resource.response_headers(), resource.body)

    def serve_normally(self) -> None:
        self.serve(self.resource)

    def _not_modified(self, resource: Resource) -> bool:
        return _not_modified(self._handler.headers, resource)

    def payload(self, body: bytes | None = None, content_type: str | None = None) -> Resource:
        """The body a streaming fault should send: its own, else the path's, else an empty feed."""
        if body is not None:
            return Resource(body, content_type or "application/octet-stream")
        if self.resource is not None:
            res = self.resource
            return replace(res, content_type=content_type) if content_type else res
        return Resource(_EMPTY_RSS, content_type or FEED_CONTENT_TYPES["rss"])

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; False early when the newsroom stops or the client hangs up."""
        stop = self.newsroom._stopping
        deadline = time.monotonic() + seconds
        poller = select.poll()  # not select(): descriptors go past 1024 under load
        try:
            poller.register(self._handler.connection, select.POLLIN)
        except (OSError, ValueError):
            return False
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if poller.poll(math.ceil(min(remaining, 0.5) * 1000)):
                if self._client_gone():
                    return False
                # The client sent more (pipelining); we cannot tell a hang-up, so just wait.
                return not stop.wait(max(0.0, deadline - time.monotonic()))
        return False

    def _client_gone(self) -> bool:
        try:
            peeked: bytes = self._handler.connection.recv(1, socket.MSG_PEEK)
            return peeked == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self, *, reset: bool = False) -> None:
        """Drop the connection now: a FIN, or with `reset` an RST (SO_LINGER 0)."""
        self._handler.close_connection = True
        sock = self._handler.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # close() would wait for the makefile() wrappers; close the descriptor itself.
                sock_fd = sock.detach()
                socket.close(sock_fd)
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


_EMPTY_RSS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Empty</title>'
    b"<link>http://127.0.0.1/</link><description>nothing</description></channel></rss>\n"
)


class Fault(ABC):
    """How one path misbehaves. Subclass, implement `serve`, and `set_fault(path, fault)`."""

    @abstractmethod
    def serve(self, ex: Exchange) -> None: ...


@dataclass(frozen=True)
class Redirect(Fault):
    """Redirect to `target` (a path on the same host, or a URL). Chains and loops: set several."""

    target: str
    status: int = 302
    absolute: bool = True  # Location as a full URL (False: exactly as given, e.g. relative)

    def serve(self, ex: Exchange) -> None:
        location = ex.absolute(self.target) if self.absolute else self.target
        body = f'<a href="{location}">moved</a>\n'.encode()
        ex.respond(self.status, [("Location", location), ("Content-Type", HTML_TYPE)], body)


@dataclass(frozen=True)
class Status(Fault):
    """Answer with an error status (500, 503, 429, 404, 410, ...), optionally with Retry-After."""

    code: int
    retry_after: int | datetime | None = None  # seconds, or an HTTP date
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def serve(self, ex: Exchange) -> None:
        headers = [("Content-Type", "text/plain; charset=utf-8"), *self.headers]
        if isinstance(self.retry_after, datetime):
            headers.append(("Retry-After", format_datetime(self.retry_after, usegmt=True)))
        elif self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        body = self.body
        if body is None:
            body = f"{self.code} {_phrase(self.code)}\n".encode()
        ex.respond(self.code, headers, body)


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Status"


@dataclass(frozen=True)
class Delay(Fault):
    """Wait before the first byte, then answer normally (or as `then`)."""

    seconds: float
    then: Fault | None = None

    def serve(self, ex: Exchange) -> None:
        if not ex.wait(self.seconds):
            return
        if self.then is None:
            ex.serve_normally()
        else:
            self.then.serve(ex)


@dataclass(frozen=True)
class Drip(Fault):
    """Send the body `chunk` bytes at a time, `interval` seconds apart (e.g. 1 byte a second).

    Like the other streaming faults it always answers 200, ignoring conditional headers."""

    chunk: int = 1
    interval: float = 1.0
    body: bytes | None = None  # default: the path's own body
    declare_length: bool = True

    def serve(self, ex: Exchange) -> None:
        res = ex.payload(self.body)
        length = len(res.body) if self.declare_length else None
        if not ex.start(200, res.response_headers(), length=length):
            return
        for offset in range(0, len(res.body), self.chunk):
            if offset and not ex.wait(self.interval):
                return
            ex.write(res.body[offset : offset + self.chunk])
        ex.end()


_BLOCK = 64 * 1024
_FILLER = (b"<!-- " + b"padding " * ((_BLOCK - 10) // 8)).ljust(_BLOCK - 4, b" ") + b" -->"


@dataclass(frozen=True)
class Oversized(Fault):
    """A body of `size` bytes (default 100 MB) generated while sending, never held in memory."""

    size: int = 100_000_000
    declare_length: bool = True  # False: chunked, so only counting can catch it
    content_type: str = FEED_CONTENT_TYPES["rss"]

    def serve(self, ex: Exchange) -> None:
        length = self.size if self.declare_length else None
        if not ex.start(200, [("Content-Type", self.content_type)], length=length):
            return
        head = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        remaining = self.size
        for block in itertools.chain([head], itertools.repeat(_FILLER)):
            if remaining <= 0:
                break
            piece = block[:remaining]
            ex.write(piece)
            remaining -= len(piece)
        ex.end()


_MIB = 1 << 20
_bomb_cache: dict[int, tuple[bytes, bytes, int, bytes]] = {}
_bomb_lock = threading.Lock()


def _bomb_parts(mebibytes: int) -> tuple[bytes, bytes, int, bytes]:
    """(head, repeated block, repeat count, tail) of a gzip stream of `mebibytes` MiB of zeros.

    With a full flush after every MiB each block compresses to the same bytes, so the stream
    is built from three compressions; only the CRC needs a pass over the (virtual) data."""
    with _bomb_lock:
        if mebibytes in _bomb_cache:
            return _bomb_cache[mebibytes]
        zeros = bytes(_MIB)
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        first, second, third = (
            deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH) for _ in range(3)
        )
        if second != third:  # pragma: no cover - zlib promises determinism
            raise RuntimeError("deflate blocks differ; cannot build a gzip bomb cheaply")
        crc = 0
        for _ in range(mebibytes):
            crc = zlib.crc32(zeros, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        trailer = struct.pack("<II", crc, (mebibytes * _MIB) & 0xFFFFFFFF)
        tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH) + trailer
        parts = (header + first, second, mebibytes - 1, tail)
        _bomb_cache[mebibytes] = parts
        return parts


@dataclass(frozen=True)
class GzipBomb(Fault):
    """`Content-Encoding: gzip` of about 1 MB that expands to `expanded` bytes (1 GiB) of zeros."""

    expanded: int = 1 << 30  # rounded up to whole MiB
    content_type: str = FEED_CONTENT_TYPES["rss"]

    def serve(self, ex: Exchange) -> None:
        head, block, count, tail = _bomb_parts(max(1, -(-self.expanded // _MIB)))
        length = len(head) + len(block) * count + len(tail)
        headers = [("Content-Type", self.content_type), ("Content-Encoding", "gzip")]
        if not ex.start(200, headers, length=length):
            return
        ex.write(head)
        batch = 64
        for done in range(0, count, batch):
            ex.write(block * min(batch, count - done))
        ex.write(tail)
        ex.end()


@dataclass(frozen=True)
class CloseMidBody(Fault):
    """Promise the whole body, send `after` bytes (default half), then drop the connection."""

    after: int | None = None
    reset: bool = False  # RST instead of FIN
    body: bytes | None = None

    def serve(self, ex: Exchange) -> None:
        res = ex.payload(self.body)
        cut = len(res.body) // 2 if self.after is None else self.after
        if ex.start(200, res.response_headers(), length=len(res.body)):
            ex.write(res.body[:cut])
        ex.close(reset=self.reset)


@dataclass(frozen=True)
class Disconnect(Fault):
    """Close the connection without answering (FIN, or RST with `reset`)."""

    reset: bool = False

    def serve(self, ex: Exchange) -> None:
        ex.close(reset=self.reset)


@dataclass(frozen=True)
class ContentType(Fault):
    """Serve the path's body under a wrong Content-Type (e.g. text/plain, image/png)."""

    value: str

    def serve(self, ex: Exchange) -> None:
        ex.serve(None if ex.resource is None else replace(ex.resource, content_type=self.value))


@dataclass(frozen=True)
class Transcode(Fault):
    """Re-encode the (UTF-8) body as `actual` while the header declares `declared`."""

    actual: str = "windows-1251"
    declared: str = "utf-8"

    def serve(self, ex: Exchange) -> None:
        res = ex.resource
        if res is None:
            ex.serve(None)
            return
        body = res.body.decode("utf-8").encode(self.actual, errors="xmlcharrefreplace")
        mime = res.content_type.split(";", 1)[0]
        content_type = f"{mime}; charset={self.declared}"
        ex.serve(replace(res, body=body, content_type=content_type, etag=_etag(body)))


@dataclass(frozen=True)
class HtmlInstead(Fault):
    """An HTML page (a front page by default) where a feed was expected."""

    html: str | None = None

    def serve(self, ex: Exchange) -> None:
        page = self.html if self.html is not None else generic_homepage("Front page")
        ex.respond(200, [("Content-Type", HTML_TYPE)], page.encode("utf-8"))


@dataclass(frozen=True)
class Hang(Fault):
    """Accept the request and never answer (until the client gives up or the server stops)."""

    seconds: float = 3600.0

    def serve(self, ex: Exchange) -> None:
        ex.wait(self.seconds)


@dataclass(frozen=True)
class Endless(Fault):
    """Headers, then a chunked body that never ends: `chunk` every `interval` seconds."""

    chunk: bytes = b" "
    interval: float = 1.0
    content_type: str = FEED_CONTENT_TYPES["rss"]

    def serve(self, ex: Exchange) -> None:
        if not ex.start(200, [("Content-Type", self.content_type)], length=None):
            return
        ex.write(b'<?xml version="1.0"?>\n<rss version="2.0"><channel>')
        while ex.wait(self.interval):
            ex.write(self.chunk)


class Times(Fault):
    """`fault` for the first `count` requests, then `then` (default: normal service)."""

    def __init__(self, fault: Fault, count: int, then: Fault | None = None) -> None:
        self.fault = fault
        self.then = then
        self._left = count
        self._lock = threading.Lock()

    def serve(self, ex: Exchange) -> None:
        with self._lock:
            active = self._left > 0
            if active:
                self._left -= 1
        chosen = self.fault if active else self.then
        if chosen is None:
            ex.serve_normally()
        else:
            chosen.serve(ex)


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # benchmarks open ~1,000 connections at once

    def __init__(self, address: tuple[str, int], newsroom: Newsroom) -> None:
        self.newsroom = newsroom
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # clients hanging up mid-response are routine here
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "newsroom/1.0"
    sys_version = ""
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.newsroom.idle_timeout)
        self.server.newsroom._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.newsroom._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log keeps what tests need."""

    def do_GET(self) -> None:
        self.server.newsroom._dispatch(self)

    do_HEAD = do_GET


# --------------------------------------------------------------------------- the newsroom


class Newsroom:
    """A threaded HTTP/1.1 news server on 127.0.0.1 (and optionally 127.0.0.2 ... .10).

    All hosts serve the same content; paths are shared. Use as a context manager."""

    def __init__(
        self,
        *,
        hosts: int = 1,
        clock: Clock | None = None,
        site_name: str = "Newsroom Daily",
        idle_timeout: float = 120.0,
        log_limit: int | None = None,
    ) -> None:
        """`hosts`: serve on 127.0.0.1 ... 127.0.0.<hosts>. `clock` dates Last-Modified.
        `idle_timeout`: seconds a silent connection is kept. `log_limit`: keep only the last N
        logged requests (0: log nothing), so long soaks stay small."""
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError(f"hosts must be 1..{MAX_HOSTS}")
        self.clock: Clock = clock or SystemClock()
        self.site_name = site_name
        self.idle_timeout = idle_timeout
        self._host_count = hosts
        self._lock = threading.Lock()
        self._resources: dict[str, Resource] = {}
        self._feeds: dict[str, _Feed] = {}
        self._faults: dict[str, Fault] = {}
        self._log = _RequestLog(log_limit)
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self.connections_accepted = 0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Newsroom:
        if self._servers:
            return self
        self._stopping.clear()
        try:
            first = _Server(("127.0.0.1", 0), self)
            self._servers.append(first)
            for n in range(2, self._host_count + 1):
                self._servers.append(self._bind(f"127.0.0.{n}", first.server_port))
        except BaseException:
            self._close_servers()
            raise
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"newsroom-{server.server_name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _bind(self, address: str, port: int) -> _Server:
        try:
            return _Server((address, port), self)  # same port on every host when possible
        except OSError:
            return _Server((address, 0), self)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, cut open connections, interrupt waiting faults, join the threads."""
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
        self._close_servers()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in [*self._threads, *connections.values()]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def _close_servers(self) -> None:
        for server in self._servers:
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> Newsroom:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _register(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections[sock] = threading.current_thread()
            self.connections_accepted += 1
        if self._stopping.is_set():  # accepted while stop() was cutting connections
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    # ----------------------------------------------------------------- addresses

    @property
    def base_urls(self) -> list[str]:
        if not self._servers:
            raise RuntimeError("newsroom is not running")
        return [f"http://{s.server_name}:{s.server_port}" for s in self._servers]

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    @property
    def hosts(self) -> list[str]:
        """Every served address as 127.0.0.x:port."""
        return [url.removeprefix("http://") for url in self.base_urls]

    def url(self, path: str, host: int = 0) -> str:
        """Absolute URL of `path` on host number `host` (0 = 127.0.0.1)."""
        return self.base_urls[host] + _split_target(path)

    # ----------------------------------------------------------------- content

    def add_raw(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: Mapping[str, str] | HeaderPairs | None = None,
        *,
        conditional: bool = True,
    ) -> str:
        """Serve `body` at `path` exactly as given; returns the URL."""
        self._put(path, body, content_type, status, _pairs(headers), conditional)
        return self.url(path)

    def add_page(
        self,
        path: str,
        html: str | bytes,
        *,
        content_type: str = HTML_TYPE,
        conditional: bool = True,
    ) -> str:
        body = html.encode("utf-8") if isinstance(html, str) else html
        return self.add_raw(path, body, content_type, conditional=conditional)

    def add_feed(
        self,
        path: str,
        entries: Sequence[Entry],
        fmt: FeedFormat = "rss",
        *,
        title: str | None = None,
        site_url: str | None = None,
        description: str = "Latest news",
        language: str | None = "en",
        conditional: bool = True,
    ) -> str:
        """Serve a feed of `entries` in `fmt` ("rss", "atom", "rdf", "json"); returns its URL."""
        path = _split_target(path)
        meta = FeedMeta(
            title=title or f"{self.site_name}: {path}",
            site_url=site_url or self.base_url + "/",
            feed_url=self.url(path),
            description=description,
            language=language,
            updated=self.clock.now(),
        )
        self._render_feed(path, _Feed(fmt, meta, tuple(entries)), conditional)
        return self.url(path)

    def set_entries(self, path: str, entries: Sequence[Entry]) -> None:
        """Replace the entries of an existing feed (ETag/Last-Modified change if the body does)."""
        self.update_feed(path, entries=entries)

    def update_feed(
        self,
        path: str,
        *,
        entries: Sequence[Entry] | None = None,
        prepend: Sequence[Entry] = (),
        keep: int | None = None,
        title: str | None = None,
        fmt: FeedFormat | None = None,
    ) -> None:
        """Change a feed: new `entries`, or `prepend` newer ones and `keep` only the first N."""
        path = _split_target(path)
        with self._lock:
            feed = self._feeds.get(path)
        if feed is None:
            raise KeyError(f"no feed at {path}")
        items = (*prepend, *(feed.entries if entries is None else entries))
        meta = replace(feed.meta, title=title or feed.meta.title, updated=self.clock.now())
        new = _Feed(fmt or feed.fmt, meta, items[:keep] if keep is not None else items)
        self._render_feed(path, new, None)

    def entries(self, path: str) -> tuple[Entry, ...]:
        with self._lock:
            return self._feeds[_split_target(path)].entries

    def _render_feed(self, path: str, feed: _Feed, conditional: bool | None) -> None:
        body = render_feed(feed.fmt, feed.meta, feed.entries)
        with self._lock:
            self._feeds[path] = feed
        self._put(path, body, FEED_CONTENT_TYPES[feed.fmt], 200, (), conditional)

    def add_hostile_feed(self, path: str, kind: HostileKind) -> str:
        """Serve one of the parser-hostile RSS documents of `HOSTILE_KINDS`; returns the URL."""
        body = hostile_feed(kind, self.base_url)
        return self.add_raw(path, body, FEED_CONTENT_TYPES["rss"])

    def add_article(self, path: str, story: Story, *, host: int = 0) -> Entry:
        """Serve `story` as a page at `path`; returns the entry a feed would list for it."""
        url = self.url(path, host)
        self.add_page(path, render_article(story, url))
        return story_entry(story, url, guid=url)

    def publish(
        self,
        feed_path: str,
        count: int = 5,
        *,
        lang: str = "en",
        fmt: FeedFormat = "rss",
        seed: int = 0,
        prefix: str | None = None,
        relative_links: bool = False,
        host: int = 0,
    ) -> list[Published]:
        """Generate `count` stories (seeds `seed`...), serve their pages and list them in the feed.

        An existing feed gets them prepended (a new poll sees them as new); otherwise it is
        created. The same seed and prefix give the same URL, so feeds can share articles."""
        prefix = prefix or f"/{lang}/news/"
        now = self.clock.now()
        items: list[Published] = []
        for i in range(count):
            story = make_story(seed + i, lang, published=now - timedelta(minutes=i))
            path = f"{prefix}{story.slug}"
            url = self.url(path, host)
            self.add_page(path, render_article(story, url))
            entry = story_entry(story, path if relative_links else url, guid=url)
            items.append(Published(story, entry, path, url))
        entries = [p.entry for p in items]
        with self._lock:
            exists = _split_target(feed_path) in self._feeds
        if exists:
            self.update_feed(feed_path, prepend=entries)
        else:
            self.add_feed(
                feed_path, entries, fmt, title=f"{self.site_name} ({lang})", language=lang
            )
        return items

    def serve_real_pages(
        self,
        data_dir: Path = SHARED_DATA,
        *,
        feeds: int = 3,
        fmt: FeedFormat = "rss",
        feed_prefix: str = "/real/feed-",
        spread_hosts: bool = False,
    ) -> ServedCorpus:
        """Serve the 91 extraction-dev pages at their original paths, listed in `feeds` feeds.

        `data_dir` is the shared data folder. With `spread_hosts`, page i is linked on host
        i mod hosts (content is the same on every host)."""
        pages = load_real_pages(data_dir)
        urls: dict[str, str] = {}
        per_feed: list[list[Entry]] = [[] for _ in range(feeds)]
        now = self.clock.now()
        for i, page in enumerate(pages):
            self.add_page(page.path, page.html)
            url = self.url(page.path, i % self._host_count if spread_hosts else 0)
            urls[page.id] = url
            entry = Entry(title=page.title, link=url, guid=url, published=now - timedelta(hours=i))
            per_feed[i % feeds].append(entry)
        feed_urls = tuple(
            self.add_feed(f"{feed_prefix}{n}.xml", items, fmt, title=f"Real pages {n}")
            for n, items in enumerate(per_feed)
        )
        return ServedCorpus(tuple(pages), urls, feed_urls)

    def remove(self, path: str) -> None:
        path = _split_target(path)
        with self._lock:
            self._resources.pop(path, None)
            self._feeds.pop(path, None)

    def resource(self, path: str) -> Resource | None:
        with self._lock:
            return self._resources.get(_split_target(path))

    def set_conditional(self, path: str, honour: bool) -> None:
        """`honour=False`: ignore If-None-Match / If-Modified-Since (always 200, same body)."""
        path = _split_target(path)
        with self._lock:
            self._resources[path] = replace(self._resources[path], conditional=honour)

    def _put(
        self,
        path: str,
        body: bytes,
        content_type: str,
        status: int,
        headers: tuple[tuple[str, str], ...],
        conditional: bool | None,
    ) -> None:
        path = _split_target(path)
        etag = _etag(body)
        now = int(self.clock.now().timestamp())
        with self._lock:
            old = self._resources.get(path)
            if old is not None and old.etag == etag:
                modified = old.last_modified
            else:
                # Strictly later on each change, so If-Modified-Since notices same-second edits.
                modified = now if old is None else max(now, old.last_modified + 1)
            if conditional is None:
                conditional = old.conditional if old is not None else True
            self._resources[path] = Resource(
                body, content_type, status, headers, etag, modified, conditional
            )

    # ----------------------------------------------------------------- faults

    def set_fault(self, path: str, fault: Fault | None) -> None:
        """Make `path` misbehave (None clears). Applies whether or not content exists there."""
        path = _split_target(path)
        with self._lock:
            if fault is None:
                self._faults.pop(path, None)
            else:
                self._faults[path] = fault

    def clear_fault(self, path: str) -> None:
        self.set_fault(path, None)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ----------------------------------------------------------------- log

    @property
    def log(self) -> list[LoggedRequest]:
        return self._log.snapshot()

    def requests_for(
        self, path: str, *, method: str | None = None, host: str | None = None
    ) -> list[LoggedRequest]:
        """Requests for `path` (with or without its query, or a full URL), oldest first."""
        target = _split_target(path)
        return [
            r
            for r in self._log.snapshot()
            if target in (r.target, r.path)
            and (method is None or r.method == method)
            and (host is None or r.host == host)
        ]

    def reset_log(self) -> None:
        self._log.clear()

    def wait_for_requests(
        self, path: str, count: int = 1, *, timeout: float = 10.0, finished: bool = False
    ) -> list[LoggedRequest]:
        """Block until `count` requests for `path` arrived (or `finished`); TimeoutError else."""
        target = _split_target(path)

        def ready(entries: Iterable[LoggedRequest]) -> bool:
            hits = [r for r in entries if target in (r.target, r.path)]
            return sum(1 for r in hits if not finished or r.finished is not None) >= count

        if not self._log.wait(ready, timeout):
            raise TimeoutError(f"fewer than {count} requests for {path} within {timeout}s")
        return self.requests_for(path)

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, handler: _Handler) -> None:
        target = handler.path
        path = target.split("?", 1)[0]
        entry = LoggedRequest(
            method=handler.command,
            target=target,
            path=path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            server=f"{handler.server.server_name}:{handler.server.server_port}",
            time=time.monotonic(),
        )
        self._log.add(entry)
        _drain_request_body(handler)
        with self._lock:
            fault = self._faults.get(target) or self._faults.get(path)
            resource = self._resources.get(target) or self._resources.get(path)
        ex = Exchange(self, handler, entry, resource)
        try:
            if fault is None:
                ex.serve_normally()
            else:
                fault.serve(ex)
        except OSError:
            handler.close_connection = True
        finally:
            if not ex.complete:
                handler.close_connection = True  # a half-sent response ruins the framing
            entry.bytes_sent = ex.bytes_sent
            entry.finished = time.monotonic()
            self._log.touched()


def _drain_request_body(handler: _Handler) -> None:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > 0:
        handler.rfile.read(length)
