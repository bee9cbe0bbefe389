"""The lean path for feed polls (h11 on asyncio sockets) on real loopback servers.

Most tests fetch the same URL twice, once with the lean path and once with `Fetcher(lean=False)`
(httpx only), and require the same FetchResult (duration aside): the pipeline must not be able to
tell them apart. Scripted byte-level servers (`RawServer`) cover what the newsroom cannot send:
garbage, close-delimited bodies, a keep-alive connection the server drops.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from monitor.clock import FakeClock
from monitor.fetch import Fetcher
from monitor.netguard import NetGuard
from monitor.records import FetchResult, FetchStatus
from tests.certs import self_signed
from tests.newsroom import (
    Drip,
    Fault,
    GzipBomb,
    Newsroom,
    Oversized,
    Redirect,
    Status,
    unused_port_url,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def fetcher(lean: bool = True, **kw: Any) -> Fetcher:
    return Fetcher(lean=lean, clock=FakeClock(NOW), max_body=kw.pop("max_body", 1_000_000), **kw)


async def fetch_both(
    url: str, *, connects: bool = True, **kw: Any
) -> tuple[FetchResult, FetchResult, int]:
    """(lean result, httpx result, connections the lean path opened); `connects`: whether the
    lean path is expected to have made its own connection (else httpx did all the work)."""
    async with fetcher() as lean, fetcher(lean=False) as plain:
        mine = await lean.fetch(url, **kw)
        theirs = await plain.fetch(url, **kw)
        assert lean._lean is not None
        assert (lean._lean.opened > 0) == connects
        return mine, theirs, lean._lean.opened


def same(mine: FetchResult, theirs: FetchResult) -> FetchResult:
    assert replace(mine, duration=0.0) == replace(theirs, duration=0.0)
    return mine


@pytest.fixture
def room() -> Any:
    with Newsroom(hosts=3) as newsroom:
        yield newsroom


# --------------------------------------------------------------------------- normal answers


def test_200_then_304_with_etag_and_last_modified(room: Newsroom) -> None:
    url = room.add_raw("/feed.xml", FEED, "application/rss+xml", headers={"Retry-After": "60"})

    async def go() -> tuple[FetchResult, FetchResult, FetchResult, FetchResult, int]:
        first, first_httpx, opened = await fetch_both(url)
        again, again_httpx, _ = await fetch_both(
            url, etag=first.etag, last_modified=first.last_modified
        )
        return first, first_httpx, again, again_httpx, opened

    first, first_httpx, again, again_httpx, opened = run(go)
    same(first, first_httpx)
    assert first.status is FetchStatus.OK and first.body == FEED and opened == 1
    assert first.etag and first.last_modified and first.content_type == "application/rss+xml"
    assert first.retry_after is not None
    same(again, again_httpx)
    assert again.status is FetchStatus.NOT_MODIFIED and again.http_status == 304
    lean_request = room.requests_for("/feed.xml")[2]
    assert lean_request.headers["if-none-match"] == first.etag
    assert lean_request.headers["if-modified-since"] == first.last_modified


def test_request_headers_are_the_ones_httpx_sends(room: Newsroom) -> None:
    url = room.add_raw("/feed.xml", FEED, "application/rss+xml")
    custom = {"user-agent": "custom/1", "X-Token": "abc", "accept": "application/atom+xml"}
    run(lambda: fetch_both(url, headers=custom, etag='"e"', last_modified="x"))
    lean_request, httpx_request = room.requests_for("/feed.xml")
    assert list(lean_request.headers.items()) == list(httpx_request.headers.items())
    assert lean_request.headers["user-agent"] == "custom/1"


def test_a_kept_request_follows_the_feeds_validators(room: Newsroom) -> None:
    url = room.add_raw("/feed.xml", FEED)

    async def go() -> None:
        async with fetcher() as f:
            for etag in ('"a"', '"a"', '"b"', None):
                await f.fetch(url, etag=etag)

    run(go)
    sent = [r.headers.get("if-none-match") for r in room.requests_for("/feed.xml")]
    assert sent == ['"a"', '"a"', '"b"', None]


def test_cookies_the_server_sets_are_sent_back_as_httpx_does(room: Newsroom) -> None:
    url = room.add_raw("/feed.xml", FEED, headers={"Set-Cookie": "session=abc; Path=/"})

    async def go() -> None:
        for lean in (True, False):
            async with fetcher(lean) as f:
                await f.fetch(url)
                await f.fetch(url)

    run(go)
    lean_requests, httpx_requests = (room.requests_for("/feed.xml")[i : i + 2] for i in (0, 2))
    assert lean_requests[1].headers.get("cookie") == "session=abc"
    assert [list(r.headers.items()) for r in lean_requests] == [
        list(r.headers.items()) for r in httpx_requests
    ]


def test_gzip_body_is_decoded(room: Newsroom) -> None:
    url = room.add_raw("/gz.xml", gzip.compress(FEED), headers={"Content-Encoding": "gzip"})
    mine, theirs, _ = run(lambda: fetch_both(url))
    assert same(mine, theirs).body == FEED


def test_chunked_body(room: Newsroom) -> None:
    room.add_raw("/chunked.xml", FEED * 50, "application/rss+xml")
    room.set_fault("/chunked.xml", Drip(chunk=700, interval=0.0, declare_length=False))
    mine, theirs, _ = run(lambda: fetch_both(room.url("/chunked.xml")))
    assert same(mine, theirs).body == FEED * 50


def test_keep_alive_connections_are_reused_within_the_per_host_limit(room: Newsroom) -> None:
    url = room.add_raw("/feed.xml", FEED)  # every host serves every path
    others = [room.url("/feed.xml", host=h) for h in (1, 2)]

    async def go() -> list[FetchResult]:
        async with fetcher(per_host=2) as f:
            one_by_one = [await f.fetch(url) for _ in range(5)]
            together = await asyncio.gather(*(f.fetch(u) for u in [url] * 8 + others * 3))
            return one_by_one + list(together)

    before = room.connections_accepted
    results = run(go)
    assert {r.status for r in results} == {FetchStatus.OK}
    # one connection for the sequential polls, one more for the second concurrent slot of
    # host 0, and at most two each for hosts 1 and 2
    assert room.connections_accepted - before <= 2 + 2 + 2
    assert room.connections_accepted - before >= 3


def test_connection_close_and_error_answers_are_not_reused(room: Newsroom) -> None:
    url = room.add_raw("/close.xml", FEED, headers={"Connection": "close"})
    room.set_fault("/gone", Status(404))

    async def go() -> tuple[list[FetchResult], int]:
        async with fetcher() as f:
            results = [await f.fetch(url), await f.fetch(url), await f.fetch(room.url("/gone"))]
            results.append(await f.fetch(url))
            assert f._lean is not None
            return results, f._lean.opened

    results, opened = run(go)
    assert [r.status for r in results] == [FetchStatus.OK] * 2 + [FetchStatus.ERROR, FetchStatus.OK]
    assert results[2].error == "HTTP 404 Not Found"
    assert opened == 4


def test_error_statuses_and_retry_after_match_httpx(room: Newsroom) -> None:
    room.set_fault("/busy", Status(503, retry_after=120))
    room.set_fault("/gone", Status(410))
    for path in ("/busy", "/gone"):
        same(*run(lambda p=path: fetch_both(room.url(p)))[:2])  # type: ignore[misc]


# --------------------------------------------------------------------------- limits, faults


def test_a_dripping_server_hits_the_deadline(room: Newsroom) -> None:
    room.add_raw("/drip.xml", FEED)
    room.set_fault("/drip.xml", Drip(chunk=1, interval=1.0))
    mine, theirs, _ = run(lambda: fetch_both(room.url("/drip.xml"), timeout=0.3))
    assert same(mine, theirs).error == "timed out after 0.3s"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Oversized(size=2_000_000), "response too large: 2.0 MB declared, limit 1.0 MB"),
        (
            Oversized(size=2_000_000, declare_length=False),
            "response too large: more than 1.0 MB; cut off",
        ),
        (GzipBomb(expanded=64 << 20), "response too large: more than 1.0 MB; cut off"),
    ],
)
def test_oversized_bodies_and_gzip_bombs_are_cut_off(
    room: Newsroom, fault: Fault, error: str
) -> None:
    room.set_fault("/big.xml", fault)
    mine, theirs, _ = run(lambda: fetch_both(room.url("/big.xml")))
    assert same(mine, theirs).error == error
    assert not mine.transient


def test_a_redirect_is_followed_through_httpx_without_asking_twice(room: Newsroom) -> None:
    url = room.add_raw("/feed.xml", FEED)
    room.set_fault("/old.xml", Redirect("/feed.xml", status=301))
    mine, theirs, _ = run(lambda: fetch_both(room.url("/old.xml")))
    assert same(mine, theirs).final_url == url and mine.body == FEED
    assert len(room.requests_for("/old.xml")) == 2  # once per fetcher


def test_refused_and_malformed_urls_match_httpx() -> None:
    for url in (unused_port_url(), "http://user:pw@127.0.0.1:1/feed", "ftp://x/feed"):
        mine, theirs, _ = run(lambda u=url: fetch_both(u, connects=False))  # type: ignore[misc]
        same(mine, theirs)
    assert mine.status is FetchStatus.ERROR


# --------------------------------------------------------------------------- byte-level servers


@dataclass
class RawServer:
    """Answers each request with `script(connection number, request number on it)`: bytes to
    send, and whether to close after them (None: close without answering)."""

    script: Callable[[int, int], tuple[bytes, bool] | None]
    context: ssl.SSLContext | None = None
    connections: int = 0
    requests: int = 0
    port: int = 0

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    def url(self, path: str = "/feed.xml") -> str:
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number, self.connections = self.connections, self.connections + 1
        try:
            for count in range(100):
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                answer = self.script(number, count) if head else None
                if answer is None:
                    break
                writer.write(answer[0])
                await writer.drain()
                if answer[1]:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def ok(body: bytes = FEED, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def both_raw(
    script: Callable[[int, int], tuple[bytes, bool] | None],
) -> tuple[FetchResult, FetchResult]:
    async with RawServer(script) as server:
        mine, theirs, _ = await fetch_both(server.url())
        return mine, theirs


def test_garbage_and_silent_hang_ups_match_httpx() -> None:
    for script in (
        lambda c, r: (b"garbage\r\n\r\n", True),
        lambda c, r: (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort", True),
        lambda c, r: None,
    ):
        mine, theirs = run(lambda s=script: both_raw(s))  # type: ignore[misc]
        assert same(mine, theirs).status is FetchStatus.ERROR
        assert mine.error and mine.error.startswith("the server broke the connection: ")


def test_close_delimited_and_http_1_0_bodies() -> None:
    for answer in (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + FEED,
        b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(FEED), FEED),
    ):
        mine, theirs = run(lambda a=answer: both_raw(lambda c, r: (a, True)))  # type: ignore[misc]
        assert same(mine, theirs).body == FEED


def test_a_stale_keep_alive_connection_is_replaced_once() -> None:
    """The server drops the idle connection as our next request arrives: sent again, fresh."""

    def script(connection: int, request: int) -> tuple[bytes, bool] | None:
        return None if (connection, request) == (0, 1) else (ok(), False)

    async def go(lean: bool) -> tuple[list[FetchResult], int, int]:
        async with RawServer(script) as server, fetcher(lean) as f:
            results = [await f.fetch(server.url()), await f.fetch(server.url())]
            return results, server.connections, server.requests

    results, connections, requests = run(lambda: go(True))
    assert [r.status for r in results] == [FetchStatus.OK, FetchStatus.OK]
    assert (connections, requests) == (2, 3)
    # httpx gives up on such a connection (why the lean path retries)
    results, _, _ = run(lambda: go(False))
    assert results[1].error == (
        "the server broke the connection: Server disconnected without sending a response."
    )


def test_a_connection_closed_while_idle_is_not_reused() -> None:
    async def go() -> tuple[list[FetchResult], int, int]:
        async with RawServer(lambda c, r: (ok(), True)) as server, fetcher() as f:
            results = [await f.fetch(server.url()) for _ in range(3)]
            return results, server.connections, server.requests

    results, connections, requests = run(go)
    assert {r.status for r in results} == {FetchStatus.OK}
    assert connections == requests == 3


def test_bytes_after_an_answer_close_the_connection() -> None:
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"

    async def go() -> tuple[list[FetchResult], int]:
        async with RawServer(lambda c, r: (ok() + extra, False)) as server, fetcher() as f:
            results = [await f.fetch(server.url()) for _ in range(2)]
            return results, server.connections

    results, connections = run(go)
    assert [r.body for r in results] == [FEED, FEED] and connections == 2


def test_a_304_declaring_the_stored_length_keeps_its_connection() -> None:
    answer = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 200000\r\n\r\n'

    async def go() -> tuple[list[FetchResult], int]:
        async with RawServer(lambda c, r: (answer, False)) as server, fetcher() as f:
            results = [await f.fetch(server.url(), etag='"v1"') for _ in range(3)]
            return results, server.connections

    results, connections = run(go)
    assert {r.status for r in results} == {FetchStatus.NOT_MODIFIED}
    assert connections == 1


def test_idle_connections_expire_and_the_global_limit_holds(room: Newsroom) -> None:
    room.add_raw("/feed.xml", FEED)
    urls = [room.url("/feed.xml", host=h) for h in range(3)]

    async def go() -> tuple[list[int], int]:
        async with fetcher(max_connections=2) as f:
            pool = f._lean
            assert pool is not None
            open_counts = []
            for url in urls:
                assert (await f.fetch(url)).status is FetchStatus.OK
                open_counts.append(len(pool._open))
                idle = [c for kept in pool._idle.values() for c in kept]
                assert set(idle) == set(pool._idle_order) <= pool._open  # none left behind
            now = pool.monotonic()
            pool.monotonic = lambda: now + 60  # every idle connection is now too old
            await f.fetch(urls[-1])
            return open_counts, pool.opened

    open_counts, opened = run(go)
    assert open_counts == [1, 2, 2]  # the third host's connection replaced the oldest idle one
    assert opened == 4


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    return self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1", "IP:127.0.0.1")


def test_tls_with_verification_and_keep_alive(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    def script(connection: int, request: int) -> tuple[bytes, bool]:
        if request == 0:
            return ok(extra=b'ETag: "v1"\r\n'), False
        return b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n', False

    async def go() -> tuple[list[FetchResult], FetchResult, FetchResult, int]:
        async with RawServer(script, server_context) as server:
            async with fetcher(ssl_context=trusting) as f:
                first = await f.fetch(server.url())
                second = await f.fetch(server.url(), etag=first.etag)
            connections = server.connections
            # certifi's roots do not trust it: the lean path cannot connect, httpx says why
            mine, theirs, _ = await fetch_both(server.url(), connects=False)
            return [first, second], mine, theirs, connections

    (first, second), mine, theirs, connections = run(go)
    assert first.body == FEED and second.status is FetchStatus.NOT_MODIFIED
    assert connections == 1
    error = same(mine, theirs).error or ""
    assert error.startswith("TLS error: ") and "CERTIFICATE_VERIFY_FAILED" in error


def test_a_pinned_tls_connection_is_kept_for_the_next_request_pinned_there(
    certificate: tuple[Path, Path],
) -> None:
    """The peer address a reused connection is checked against is read through TLS too."""
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    def script(connection: int, request: int) -> tuple[bytes, bool]:
        return ok(), False

    async def go() -> tuple[list[FetchResult], int]:
        async with RawServer(script, server_context) as server:
            async with fetcher(ssl_context=trusting) as f:
                guard = pin_to(["127.0.0.1"])
                results = [await f.fetch(server.url(), guard=guard) for _ in range(2)]
            return results, server.connections

    results, connections = run(go)
    assert [r.body for r in results] == [FEED, FEED]
    assert connections == 1


def test_guarded_requests_take_the_lean_path_to_the_pinned_address_only(room: Newsroom) -> None:
    url = room.add_raw("/story", FEED)
    port = url.rsplit(":", 1)[1].split("/")[0]
    named = f"http://pinned.invalid:{port}/story"  # never resolves: only the pin can reach it
    second = room.url("/story", host=1)

    def pin_to(addresses: list[str]) -> Callable[[str], Awaitable[list[str]]]:
        async def guard(_: str) -> list[str]:
            return addresses

        return guard

    async def go() -> tuple[list[FetchResult], int]:
        async with fetcher() as f:
            results = [
                await f.fetch(named, guard=pin_to(["127.0.0.1"])),
                # nothing listens on the first pinned address (the newsroom is on .1 to .3):
                # the next one is tried
                await f.fetch(second, guard=pin_to(["127.0.0.9", "127.0.0.2"])),
            ]
            assert f._lean is not None and not f._prepared  # articles' requests are not kept
            return results, f._lean.opened

    before = room.connections_accepted
    (by_name, by_second), opened = run(go)
    assert by_name.status is FetchStatus.OK and by_name.body == FEED
    assert by_second.status is FetchStatus.OK
    assert opened == 2 and room.connections_accepted - before == 2  # httpx sent nothing
    (request,) = room.requests_for("/story", host="127.0.0.1")
    assert request.header("host") == f"pinned.invalid:{port}"  # the name, not the address
    assert [r.host for r in room.requests_for("/story")] == ["127.0.0.1", "127.0.0.2"]


def test_guarded_lean_requests_are_refused_before_connecting_and_after_a_redirect(
    room: Newsroom,
) -> None:
    """Through NetGuard, as the pipeline fetches article links from a feed on 127.0.0.1."""
    feed = room.url("/feed.xml")
    room.add_raw("/story", FEED)
    room.set_fault("/away", Redirect(room.url("/story", host=1)))

    async def go() -> tuple[list[FetchResult], int]:
        guard = NetGuard()
        async with fetcher() as f:
            results = [
                await f.fetch(room.url("/story", host=1), guard=guard.for_article(feed)),
                await f.fetch(room.url("/away"), guard=guard.for_article(feed)),
                await f.fetch(room.url("/story"), guard=guard.for_article(feed)),
            ]
            assert f._lean is not None
            return results, f._lean.opened

    room.reset_log()
    (private, redirected, own), opened = run(go)
    assert private.status is FetchStatus.ERROR
    assert private.error == "refused: article link points to a loopback address (127.0.0.2)"
    assert redirected.status is FetchStatus.ERROR
    assert redirected.error == (
        "refused: article link was redirected to a loopback address (127.0.0.2)"
    )
    assert own.status is FetchStatus.OK and own.body == FEED  # the feed's own host: allowed
    assert opened >= 1  # the first hops went the lean way
    assert [r.host for r in room.log] == ["127.0.0.1", "127.0.0.1"]  # never 127.0.0.2
    assert [r.path for r in room.log] == ["/away", "/story"]


def pin_to(addresses: list[str]) -> Callable[[str], Awaitable[list[str]]]:
    """A guard that allows exactly these addresses (as NetGuard does for a host whose DNS
    answers mix addresses it allows and refuses)."""

    async def guard(_: str) -> list[str]:
        return addresses

    return guard


@pytest.mark.parametrize("lean", [True, False])
def test_a_pinned_request_never_reuses_a_connection_to_an_address_it_was_not_pinned_to(
    room: Newsroom, lean: bool
) -> None:
    """A kept-alive connection to 127.0.0.1 (a trusted feed's, then an article's pinned there)
    must not carry a request the guard pinned to 127.0.0.2 only: same origin, other address."""
    room.add_raw("/feed.xml", FEED)
    room.add_raw("/story", FEED)
    port = room.url("/story").rsplit(":", 1)[1].split("/")[0]
    feed, story = f"http://localhost:{port}/feed.xml", f"http://localhost:{port}/story"

    async def go() -> list[FetchResult]:
        async with fetcher(lean=lean) as f:
            return [
                await f.fetch(feed),  # unguarded: DNS says 127.0.0.1 (the room is not on ::1)
                await f.fetch(story, guard=pin_to(["127.0.0.2"])),
                await f.fetch(story, guard=pin_to(["127.0.0.1"])),
                await f.fetch(story, guard=pin_to(["127.0.0.3"])),
            ]

    room.reset_log()
    results = run(go)
    assert [r.status for r in results] == [FetchStatus.OK] * 4
    assert [r.host for r in room.log] == ["127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.3"]


def test_an_empty_pin_is_refused_without_a_connection(room: Newsroom) -> None:
    url = room.add_raw("/story", FEED)

    async def nowhere(_: str) -> list[str]:
        return []

    async def go() -> tuple[FetchResult, int]:
        async with fetcher() as f:
            result = await f.fetch(url, guard=nowhere)
            assert f._lean is not None
            return result, f._lean.opened

    room.reset_log()
    result, opened = run(go)
    assert (result.status, result.error) == (
        FetchStatus.ERROR,
        "refused: no address left to connect to",
    )
    assert opened == 0 and room.log == []


def test_without_h11s_grammar_module_feed_polls_go_through_httpx(room: Newsroom) -> None:
    """The lean path leans on a private h11 module: an h11 without it must cost speed, not start-up."""
    url = room.add_raw("/feed.xml", FEED, "application/rss+xml")
    script = f"""
import asyncio
import h11._abnf
del h11._abnf.field_value  # an h11 that renamed its grammar: the names are gone
from monitor import fetch_lean
from monitor.fetch import Fetcher
from monitor.netguard import NetGuard

async def go():
    async with Fetcher() as f:
        result = await f.fetch({url!r})
        print(fetch_lean.AVAILABLE, f._lean is None, result.status.name, result.body == {FEED!r})

asyncio.run(go())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "OK", "True"]
