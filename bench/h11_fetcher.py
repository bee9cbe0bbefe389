"""Prototype (benchmarks only): feed polls over h11 on asyncio streams, everything else via httpx.

Measured in bench/transports.py, httpx + httpcore cost about 0.9 ms CPU per 304 on this machine and
h11 (the HTTP/1.1 state machine httpcore itself uses) on plain asyncio streams about 0.2 ms. This
Fetcher subclass takes the fast path for the common case of a feed poll — plain http, no SSRF
guard, no extra headers, an answer of 200 or 304 — and hands everything else (https, redirects,
errors, compressed or oversized bodies) to the real Fetcher. It exists to measure what the change
proposed for monitor/fetch.py would buy end to end (`bench/polling.py --h11`); it is no product code:
no TLS, no pinning, and a failed fast path simply retries through httpx.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import h11

from monitor.fetch import FEED_ACCEPT, Fetcher, UrlGuard
from monitor.records import FetchResult, FetchStatus


class _Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _Conn:
    """One keep-alive HTTP/1.1 connection; h11 does the framing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)

    async def get(self, target: str, headers: list[tuple[str, str]], limit: int) -> _Answer:
        conn = self.h11
        data = conn.send(h11.Request(method="GET", target=target, headers=headers)) or b""
        self.writer.write(data + (conn.send(h11.EndOfMessage()) or b""))
        status, found, parts, size = 0, {}, [], 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await self.reader.read(65536)
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status, found = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise ValueError("too large for the fast path")
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # closed, or an informational answer: leave it to httpx
                raise ConnectionError(f"fast path cannot handle {type(event).__name__}")
        conn.start_next_cycle()
        return _Answer(status, found, b"".join(parts))

    def close(self) -> None:
        self.writer.close()


class H11FeedFetcher(Fetcher):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._idle: dict[str, list[_Conn]] = {}
        self._fast_global = asyncio.Semaphore(kwargs.get("max_connections", 20))
        self._fast_hosts: dict[str, asyncio.Semaphore] = {}
        self._fast_per_host = kwargs.get("per_host", 2)
        self._agent = self._client.headers["User-Agent"]

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
        parts = urlsplit(url)
        if guard is None and not headers and parts.scheme == "http" and parts.hostname:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    answer = await self._fast(parts, url, etag, last_modified, accept, max_body)
            except (OSError, ValueError, TimeoutError, h11.ProtocolError):
                answer = None
            result = _result(url, answer, time.perf_counter() - started)
            if result is not None:
                return result
        return await super().fetch(
            url,
            timeout=timeout,
            etag=etag,
            last_modified=last_modified,
            headers=headers,
            accept=accept,
            max_body=max_body,
            guard=guard,
        )

    async def _fast(
        self,
        parts: Any,
        url: str,
        etag: str | None,
        last_modified: str | None,
        accept: str,
        max_body: int | None,
    ) -> _Answer:
        netloc = parts.netloc
        host = self._fast_hosts.get(netloc)
        if host is None:
            host = self._fast_hosts[netloc] = asyncio.Semaphore(self._fast_per_host)
        request = [("Host", netloc), ("User-Agent", self._agent), ("Accept", accept)]
        if etag:
            request.append(("If-None-Match", etag))
        if last_modified:
            request.append(("If-Modified-Since", last_modified))
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        async with host, self._fast_global:
            idle = self._idle.setdefault(netloc, [])
            conn = idle.pop() if idle else None
            if conn is None:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
                conn = _Conn(reader, writer)
            try:
                answer = await conn.get(target, request, max_body or self.max_body)
            except BaseException:
                conn.close()
                raise
            idle.append(conn)
            return answer

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        await super().aclose()


def _result(url: str, answer: _Answer | None, duration: float) -> FetchResult | None:
    """A FetchResult for a 200 or 304 the fast path can vouch for; None: ask httpx."""
    if answer is None:
        return None
    if answer.status == 304:
        return FetchResult(url, url, FetchStatus.NOT_MODIFIED, 304, duration=duration)
    if answer.status != 200 or answer.headers.get(b"content-encoding"):
        return None
    text = {k.decode("latin-1"): v.decode("latin-1") for k, v in answer.headers.items()}
    return FetchResult(
        url=url,
        final_url=url,
        status=FetchStatus.OK,
        http_status=200,
        body=answer.body,
        content_type=text.get("content-type"),
        etag=text.get("etag"),
        last_modified=text.get("last-modified"),
        body_hash=hashlib.sha256(answer.body).hexdigest(),
        duration=duration,
    )
