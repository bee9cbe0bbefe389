"""Connection and HTTP-level faults, each polled beside a healthy feed in the same pass.

For each: the healthy feed is stored as usual, the faulty feed's error is recorded in plain words,
the daemon skips it while it backs off, and the next failure doubles the wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.config import Config
from monitor.pipeline import PollOutcome
from monitor.schedule import FeedStatus, Skip
from tests.newsroom import (
    UNRESOLVABLE_URL,
    CloseMidBody,
    Disconnect,
    Drip,
    Endless,
    Fault,
    Hang,
    Newsroom,
    Redirect,
    Status,
    unused_port_url,
)
from tests.pipeline_helpers import START, feed_state, make_config, one_pass, stored_items

INTERVAL = timedelta(minutes=10)


@dataclass(frozen=True)
class Case:
    """A faulty feed: where it is (given the room) and the error the user should read."""

    url: Callable[[Newsroom], str]
    error: Callable[[Newsroom], str]
    retry_after: timedelta | None = None  # the server's Retry-After, first time
    asks_again: timedelta = timedelta(0)  # the wait it asks for on the second failure


def at(path: str, fault: Fault, *, publish: bool = False) -> Callable[[Newsroom], str]:
    def place(room: Newsroom) -> str:
        if publish:
            room.publish(path, 2, seed=900)  # a real body for faults that stream it
        room.set_fault(path, fault)
        return room.url(path)

    return place


def loop(room: Newsroom) -> str:
    room.set_fault("/loop-a.xml", Redirect("/loop-b.xml"))
    room.set_fault("/loop-b.xml", Redirect("/loop-a.xml", status=301))
    return room.url("/loop-a.xml")


def body_size(room: Newsroom, path: str) -> int:
    resource = room.resource(path)
    assert resource is not None
    return len(resource.body)


def said(text: str) -> Callable[[Newsroom], str]:
    return lambda room: text


CASES = {
    "connection refused": Case(lambda room: unused_port_url(), said("connection refused")),
    "unresolvable host": Case(
        lambda room: UNRESOLVABLE_URL, said("host not found (DNS lookup failed)")
    ),
    "timeout (no answer)": Case(at("/hang.xml", Hang()), said("timed out after 1s")),
    "drip, one byte a second": Case(
        at("/drip.xml", Drip(chunk=1, interval=1.0), publish=True), said("timed out after 1s")
    ),
    "endless body": Case(at("/endless.xml", Endless(interval=0.05)), said("timed out after 1s")),
    "HTTP 500": Case(at("/500.xml", Status(500)), said("HTTP 500 Internal Server Error")),
    "HTTP 503 with Retry-After seconds": Case(
        at("/503.xml", Status(503, retry_after=3600)),
        said("HTTP 503 Service Unavailable"),
        retry_after=timedelta(hours=1),
        asks_again=timedelta(hours=1),
    ),
    "HTTP 429 with Retry-After date": Case(
        at("/429.xml", Status(429, retry_after=START + timedelta(minutes=45))),
        said("HTTP 429 Too Many Requests"),
        retry_after=timedelta(minutes=45),
    ),
    "HTTP 404": Case(at("/404.xml", Status(404)), said("HTTP 404 Not Found")),
    "redirect loop": Case(
        loop,
        lambda room: f"redirect loop: the server keeps redirecting to {room.url('/loop-a.xml')}",
    ),
    "cut off mid-body": Case(
        at("/cut.xml", CloseMidBody(after=100), publish=True),
        lambda room: (
            "the server broke the connection: peer closed connection without sending complete "
            f"message body (received 100 bytes, expected {body_size(room, '/cut.xml')})"
        ),
    ),
    "connection reset": Case(
        at("/reset.xml", Disconnect(reset=True)), said("the server reset the connection")
    ),
}


def daemon_pass(config: Config, clock: FakeClock) -> dict[str, PollOutcome]:
    return one_pass(config, clock, ignore_backoff=False)


@pytest.mark.parametrize("name", list(CASES))
def test_fault_is_recorded_backs_off_and_spares_the_other_feed(
    name: str, room: Newsroom, tmp_path: Path
) -> None:
    case = CASES[name]
    bad_url = case.url(room)
    config = make_config(tmp_path, [("good", room.url("/good.xml")), ("bad", bad_url)])
    clock = FakeClock(START)
    error = case.error(room)

    first = daemon_pass(config, clock)
    assert first["good"].status == "ok" and first["good"].new == 2
    assert {i["text_source"] for i in stored_items(config, "good")} == {"page"}
    assert first["bad"].status == "error" and first["bad"].error == error
    state = feed_state(config, "bad")
    assert state.status is FeedStatus.ERROR and state.last_error == error
    assert state.error_count == 1
    first_wait = max(INTERVAL, case.retry_after or INTERVAL)
    assert state.next_fetch == START + first_wait
    if case.retry_after:
        assert state.retry_after == START + case.retry_after

    clock.advance(first_wait / 2)  # not due yet: the daemon leaves it alone
    waiting = daemon_pass(config, clock)
    expected_skip = Skip.RETRY_AFTER if case.retry_after else Skip.BACKING_OFF
    assert waiting["bad"].skipped is expected_skip

    clock.set(START + first_wait)
    second = daemon_pass(config, clock)
    assert second["bad"].error == error
    state = feed_state(config, "bad")
    assert state.error_count == 2
    # exponential back-off, or the server's own wish when it asks for longer
    assert state.next_fetch == clock.now() + max(2 * INTERVAL, case.asks_again)


def test_gone_feed_stops_polling_and_says_so(room: Newsroom, tmp_path: Path) -> None:
    room.set_fault("/gone.xml", Status(410))
    config = make_config(
        tmp_path, [("good", room.url("/good.xml")), ("gone", room.url("/gone.xml"))]
    )
    clock = FakeClock(START)
    first = one_pass(config, clock)
    assert first["good"].new == 2
    assert first["gone"].status == "gone"
    state = feed_state(config, "gone")
    assert state.status is FeedStatus.GONE
    assert state.last_error == (
        "HTTP 410 Gone: the publisher has removed it; "
        "polling stopped until this feed's config entry changes"
    )
    for _ in range(2):  # neither the daemon nor `monitor once` asks again
        clock.advance(timedelta(days=30))
        assert daemon_pass(config, clock)["gone"].skipped is Skip.GONE
        assert one_pass(config, clock)["gone"].skipped is Skip.GONE
    assert len(room.requests_for("/gone.xml")) == 1


def test_retry_after_far_in_the_future_is_capped(room: Newsroom, tmp_path: Path) -> None:
    """A server cannot park a feed for years with one header."""
    room.set_fault("/busy.xml", Status(503, retry_after=datetime(2999, 1, 1, tzinfo=START.tzinfo)))
    config = make_config(tmp_path, [("busy", room.url("/busy.xml"))])
    one_pass(config, FakeClock(START))
    state = feed_state(config, "busy")
    assert state.retry_after == START + timedelta(days=7)


def test_hanging_feeds_do_not_make_their_neighbours_time_out(
    room: Newsroom, tmp_path: Path
) -> None:
    """Two hanging feeds hold both connection slots of the host; the feeds queued behind them
    wait their turn and then report what really happened, not a timeout of their own."""
    room.set_fault("/hang-1.xml", Hang())
    room.set_fault("/hang-2.xml", Hang())
    room.set_fault("/missing.xml", Status(404))
    config = make_config(
        tmp_path,
        [
            ("hang-1", room.url("/hang-1.xml")),
            ("hang-2", room.url("/hang-2.xml")),
            ("good", room.url("/good.xml")),
            ("missing", room.url("/missing.xml")),
        ],
    )
    outcomes = one_pass(config, FakeClock(START))
    assert outcomes["hang-1"].error == outcomes["hang-2"].error == "timed out after 1s"
    assert outcomes["missing"].error == "HTTP 404 Not Found"
    assert outcomes["good"].status == "ok"
    assert {i["text_source"] for i in stored_items(config, "good")} == {"page"}
