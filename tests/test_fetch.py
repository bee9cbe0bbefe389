"""Narrow unit tests of the fetcher with httpx.MockTransport (the newsroom tests use real sockets)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from monitor.clock import FakeClock
from monitor.fetch import Fetcher, parse_retry_after
from monitor.records import FetchResult, FetchStatus

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def respond(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    # A streamed body, as a real transport gives it (content= would count as already read).
    return httpx.Response(status, stream=httpx.ByteStream(body), headers=headers)


def fetch(handler: Handler, url: str = "https://news.example/feed", **kw: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(
            transport=httpx.MockTransport(handler), clock=FakeClock(NOW), max_body=1000
        ) as fetcher:
            return await fetcher.fetch(url, **kw)

    return asyncio.run(go())


def test_conditional_headers_are_sent_and_304_is_not_modified() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return respond(304, b"")

    result = fetch(handler, etag='"abc"', last_modified="Sun, 01 Mar 2026 10:00:00 GMT")
    assert result.status is FetchStatus.NOT_MODIFIED
    assert seen[0].headers["if-none-match"] == '"abc"'
    assert seen[0].headers["if-modified-since"] == "Sun, 01 Mar 2026 10:00:00 GMT"
    assert seen[0].headers["user-agent"].startswith("news-monitor/")


def test_ok_body_has_hash_and_validators() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return respond(200, b"<rss/>", headers={"ETag": '"v1"'})

    result = fetch(handler)
    assert result.status is FetchStatus.OK
    assert result.body == b"<rss/>" and result.etag == '"v1"'
    assert len(result.body_hash) == 64


def test_gzip_bomb_is_cut_off_without_expanding_it() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)

    def handler(request: httpx.Request) -> httpx.Response:
        return respond(200, bomb, headers={"Content-Encoding": "gzip"})

    result = fetch(handler)
    assert result.status is FetchStatus.ERROR
    assert "too large" in result.error


def test_gzip_body_is_decoded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return respond(200, gzip.compress(b"hello"), headers={"Content-Encoding": "gzip"})

    assert fetch(handler).body == b"hello"


def test_declared_oversize_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return respond(200, b"x" * 5000)

    result = fetch(handler)
    assert result.status is FetchStatus.ERROR and "too large" in result.error


def test_redirect_limit_and_loop() -> None:
    def chain(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.strip("/") or 0)
        return httpx.Response(302, headers={"Location": f"/{n + 1}"})

    result = fetch(chain, "https://news.example/0")
    assert result.status is FetchStatus.ERROR
    assert result.error == "too many redirects (more than 5)"

    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "/a" if request.url.path == "/b" else "/b"})

    result = fetch(loop, "https://news.example/a")
    assert "redirect loop" in result.error


def test_redirect_is_followed_to_a_final_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "https://other.example/new"})
        return respond(200, b"ok")

    result = fetch(handler, "https://news.example/old")
    assert result.final_url == "https://other.example/new"


def test_gone_and_http_errors_and_retry_after() -> None:
    result = fetch(lambda r: httpx.Response(410))
    assert result.status is FetchStatus.GONE
    result = fetch(lambda r: httpx.Response(503, headers={"Retry-After": "120"}))
    assert result.status is FetchStatus.ERROR and result.transient
    assert result.retry_after == NOW + timedelta(seconds=120)
    result = fetch(lambda r: httpx.Response(404))
    assert result.error == "HTTP 404 Not Found" and not result.transient


def test_network_errors_become_readable_results() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    assert fetch(refuse).error == "connection refused"

    def no_dns(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    assert fetch(no_dns).error == "host not found (DNS lookup failed)"


def test_non_http_schemes_are_refused() -> None:
    result = fetch(lambda r: httpx.Response(200), "file:///etc/passwd")
    assert result.status is FetchStatus.ERROR and "not an http(s) URL" in result.error


def test_retry_after_forms() -> None:
    assert parse_retry_after("60", NOW) == NOW + timedelta(seconds=60)
    assert parse_retry_after("Sun, 01 Mar 2026 13:00:00 GMT", NOW) == NOW + timedelta(hours=1)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("99999999", NOW) == NOW + timedelta(days=7)  # capped
