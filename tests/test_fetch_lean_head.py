"""The lean path's own request bytes and answer heads (`LeanRequest`, `parse_head`) against h11.

Feed polls write prebuilt request bytes and read a bodyless answer's head without h11; anything
else is handed to h11. These tests hold the shortcut to h11's behaviour: the same bytes sent, the
same header refusals, and every head it accepts read exactly as h11 reads it (the rest it must
leave to h11). End to end, odd 304s must come back from the lean path as httpx reports them.
"""

from __future__ import annotations

import random

import h11
import pytest

from monitor.fetch_lean import Head, Target, build_request, lean_target, parse_head
from monitor.records import FetchResult, FetchStatus
from tests.test_fetch_lean import RawServer, fetch_both, fetcher, run, same


def _target(url: str) -> Target:
    target = lean_target(url)
    assert target is not None
    return target


TARGET = _target("http://news.example:8080/feeds/all.xml?x=1&y=%C3%A9")
BASE = [
    (b"Accept", b"*/*"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", b"news-monitor/test"),
]


def h11_bytes(target: Target, headers: list[tuple[bytes, bytes]]) -> bytes:
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method=b"GET", target=target.target, headers=[(b"Host", target.host_header), *headers]
    )
    return (conn.send(request) or b"") + (conn.send(h11.EndOfMessage()) or b"")


def h11_refusal(target: Target, headers: list[tuple[bytes, bytes]]) -> str | None:
    try:
        h11_bytes(target, headers)
    except h11.LocalProtocolError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [(b"If-None-Match", b'W/"abc def"'), (b"If-Modified-Since", b"Mon, 02 Mar 2026 GMT")],
        [(b"X-Token", b"\xe9t\xe9\x80"), (b"accept", b"application/atom+xml"), (b"X-Empty", b"")],
        [(b"X-Tab", b"a\tb"), (b"X-Many", b"1"), (b"X-Many", b"2")],
    ],
)
def test_request_bytes_are_what_h11_writes(extra: list[tuple[bytes, bytes]]) -> None:
    request = build_request(TARGET, [*BASE, *extra])
    assert request.head == h11_bytes(TARGET, [*BASE, *extra])
    assert request.keep_alive
    assert (
        request.event().headers
        == h11.Request(method=b"GET", target=TARGET.target, headers=request.headers).headers
    )


@pytest.mark.parametrize(
    "bad",
    [
        (b"X-Bad", b"line\r\nInjected: 1"),
        (b"X-Bad", b" leading space"),
        (b"X-Bad", b"trailing space "),
        (b"X-Bad", b"nul\x00byte"),
        (b"Bad Name", b"v"),
        (b"Bad:Name", b"v"),
        (b"", b"v"),
        (b"Host", b"second.example"),
    ],
)
def test_headers_h11_refuses_are_refused_in_its_words(bad: tuple[bytes, bytes]) -> None:
    expected = h11_refusal(TARGET, [*BASE, bad])
    assert expected is not None
    with pytest.raises(h11.LocalProtocolError) as caught:
        build_request(TARGET, [*BASE, bad])
    assert str(caught.value) == expected


def test_a_request_asking_to_close_is_not_kept_alive() -> None:
    headers = [(b"Connection", b"Keep-Alive, CLOSE")]
    assert not build_request(TARGET, headers).keep_alive


# --------------------------------------------------------------------------- answer heads


def h11_reading(data: bytes) -> tuple[h11.Response | None, bool | None, str | None]:
    """What h11 makes of `data` as the answer to a GET: (final answer, whether the connection
    can be used again once it is over, or the error it raises)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=100 * 1024)
    conn.send(h11.Request(method=b"GET", target=b"/", headers=[(b"Host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.Response):
                break
        if not isinstance(event, h11.Response):
            return None, None, None
        end = conn.next_event()
    except h11.RemoteProtocolError as exc:
        return None, None, str(exc)
    if not isinstance(end, h11.EndOfMessage):
        return event, None, None
    reusable = (
        conn.our_state is h11.DONE and conn.their_state is h11.DONE and not conn.trailing_data[0]
    )
    return event, reusable, None


def agrees_with_h11(data: bytes) -> Head | None:
    """parse_head's reading of `data`, checked against h11's whenever it gives one."""
    head = parse_head(data)
    if head is None:
        return None
    event, reusable, error = h11_reading(data)
    assert error is None and event is not None, (data, error)
    assert (head.status_code, head.reason) == (event.status_code, bytes(event.reason))
    assert head.headers == list(event.headers)
    assert (head.keep_alive and head.end == len(data)) == reusable
    return head


PLAIN_304 = (
    b"HTTP/1.1 304 Not Modified\r\nServer: BaseHTTP/0.6 Python/3.11.7\r\n"
    b'Date: Mon, 02 Mar 2026 10:00:00 GMT\r\nETag: "e1"\r\n'
    b"Last-Modified: Mon, 02 Mar 2026 09:00:00 GMT\r\n\r\n"
)


def test_a_plain_304_is_read_as_h11_reads_it() -> None:
    head = agrees_with_h11(PLAIN_304)
    assert head is not None and head.status_code == 304 and head.keep_alive
    assert (b"etag", b'"e1"') in head.headers
    assert agrees_with_h11(b"HTTP/1.1 204\r\nX-Odd:   spaced  value \t\r\n\r\n") is not None
    assert agrees_with_h11(b"HTTP/1.1 304 OK\r\nContent-Length: 20000\r\n\r\n") is not None
    closing = agrees_with_h11(b"HTTP/1.1 304 Not Modified\r\nConnection: x, Close\r\n\r\n")
    assert closing is not None and not closing.keep_alive
    trailing = parse_head(PLAIN_304 + b"HTTP/1.1 200 OK\r\n")
    assert trailing is not None and trailing.end == len(PLAIN_304)


@pytest.mark.parametrize(
    "data",
    [
        PLAIN_304[:-2],  # not complete yet
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",  # a body to frame
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
        b"HTTP/1.0 304 Not Modified\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\nETag: x\n\n",  # bare line feeds
        b"HTTP/1.1 304 Not Modified\r\nX-Folded: a\r\n  b\r\n\r\n",  # obsolete line folding
        b"HTTP/1.1 304 Not Modified\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nX: a\x00b\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5, 5\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 30 Not Modified\r\n\r\n",
    ],
)
def test_anything_else_is_left_to_h11(data: bytes) -> None:
    assert parse_head(data) is None


def test_mutated_heads_are_read_as_h11_reads_them_or_left_to_it() -> None:
    """Random byte changes to a 304's head: whatever parse_head accepts, h11 reads the same."""
    rng = random.Random(7)
    alphabet = b' \t\r\n:,\x00\x7f\x80\xffaZ09-"HTTP/1.1 304'
    accepted = 0
    for _ in range(3000):
        data = bytearray(PLAIN_304[:-2] + b"Connection: keep-alive\r\nContent-Length: 12\r\n\r\n")
        for _ in range(rng.randint(1, 3)):
            spot = rng.randrange(len(data))
            action = rng.random()
            if action < 0.4:
                data[spot] = rng.choice(alphabet)
            elif action < 0.7:
                data.insert(spot, rng.choice(alphabet))
            else:
                del data[spot]
        accepted += agrees_with_h11(bytes(data)) is not None
    assert 100 < accepted < 3000  # both sides of the line were exercised


# --------------------------------------------------------------------------- end to end


ODD_304S = [
    b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\nETag: x\n\n",
    b"HTTP/1.1 304 Not Modified\r\nX-Folded: a\r\n  b\r\nETag: x\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nBad Header: x\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
    b"HTTP/1.0 304 Not Modified\r\nETag: x\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Type: text/xml\r\nRetry-After: 120\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nX-Big: " + b"v" * 90_000 + b"\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n",  # the server hangs up mid-head
]


@pytest.mark.parametrize("answer", ODD_304S)
def test_odd_304s_come_back_as_httpx_reports_them(answer: bytes) -> None:
    async def go() -> tuple[FetchResult, FetchResult]:
        async with RawServer(lambda c, r: (answer, True)) as server:
            mine, theirs, _ = await fetch_both(server.url(), etag="x")
            return mine, theirs

    mine, theirs = run(go)
    same(mine, theirs)


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        (PLAIN_304, 1),
        (b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n", 3),
        (b"HTTP/1.0 304 Not Modified\r\n\r\n", 3),
        (PLAIN_304 + b"HTTP/1.1 304 Not Modified\r\n\r\n", 3),  # stray bytes after the answer
    ],
)
def test_a_304_keeps_its_connection_only_when_h11_would(answer: bytes, connections: int) -> None:
    async def go() -> tuple[list[FetchResult], int]:
        async with RawServer(lambda c, r: (answer, False)) as server, fetcher() as f:
            results = [await f.fetch(server.url(), etag='"e1"') for _ in range(3)]
            return results, server.connections

    results, opened = run(go)
    assert {r.status for r in results} == {FetchStatus.NOT_MODIFIED}
    assert opened == connections
