"""Feed state after unchanged polls (Store.record_unchanged_states) and writes that gather.

The shortcut for unchanged feeds must leave every feed row exactly as the general path
(`record_feed_states`) leaves it, whatever the row held before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from monitor import pipeline
from monitor.clock import FakeClock
from monitor.pipeline import Coalesced, Pipeline, PollOutcome, Writer
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store, StoreError
from tests.newsroom import Entry, Newsroom
from tests.pipeline_helpers import START, FeedSpec, feed_state, make_config, one_pass, run

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")

UNCHANGED = FeedStateUpdate(
    status=FeedStatus.OK,
    last_fetch=NOW,
    next_fetch=NOW + timedelta(minutes=15),
    error_count=0,
    etag='"e2"',
    last_modified="Sun, 01 Mar 2026 11:00:00 GMT",
    retry_after=NOW + timedelta(minutes=20),
    success=True,
)
FAILED = FeedStateUpdate(
    status=FeedStatus.ERROR,
    last_fetch=NOW - timedelta(hours=1),
    next_fetch=NOW,
    error_count=3,
    error="HTTP 503 Service Unavailable",
)
FIRST = replace(
    UNCHANGED,
    last_fetch=NOW - timedelta(days=1),
    etag='"e1"',
    body_hash="abc",
    title="A feed",
    site_url="https://news.example/",
    used_url="https://news.example/feed",
    warning="odd dates",
)


def rows(store: Store, names: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        row = store.conn.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()
        assert isinstance(row, sqlite3.Row)
        found = dict(row)
        del found["id"], found["name"]
        out.append(found)
    return out


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "m.db")
    store.sync_feeds([(name, "https://news.example/feed", "h") for name in ("a", "b")])
    return store


@pytest.mark.parametrize(
    "history",
    [[], [FIRST], [FIRST, FAILED], [FAILED]],
    ids=["new", "after a success", "failing", "never succeeded"],
)
@pytest.mark.parametrize(
    "update",
    [
        UNCHANGED,
        replace(UNCHANGED, body_hash="def", retry_after=None),  # the same body again
        replace(UNCHANGED, etag=None, last_modified=None),
        replace(UNCHANGED, title="other path"),  # not a plain success: written the general way
        FAILED,
    ],
    ids=["304", "same body", "no validators", "with a title", "an error"],
)
def test_rows_end_as_the_general_path_leaves_them(
    store: Store, history: list[FeedStateUpdate], update: FeedStateUpdate
) -> None:
    for earlier in history:
        assert store.record_feed_states([("a", earlier), ("b", earlier)]) == [None, None]
    ids = {s.name: s.id for s in store.feed_states().values()}
    assert store.record_feed_states([("a", update)]) == [None]
    assert store.record_unchanged_states([("b", ids["b"], update)]) == [None]
    first, second = rows(store, ["a", "b"])
    assert first == second
    assert first["polls"] == len(history) + 1


def test_an_unknown_feed_fails_alone(store: Store) -> None:
    ids = {s.name: s.id for s in store.feed_states().values()}
    results = store.record_unchanged_states(
        [("a", ids["a"], UNCHANGED), ("gone", 9999, UNCHANGED), ("b", ids["b"], UNCHANGED)]
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StoreError) and str(results[1]) == "unknown feed 'gone'"
    assert {s.etag for s in store.feed_states().values()} == {'"e2"'}


class Batches:
    """A `many` function that records the batches it was called with."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def __call__(self, args: list[str]) -> list[str | Exception]:
        self.seen.append(list(args))
        return [a.upper() for a in args]


def gathered(
    store: Store, main: Callable[[Coalesced[str, str]], Coroutine[Any, Any, T]], **kw: Any
) -> tuple[T, list[list[str]]]:
    """What `main` returns, given a Coalesced with these settings; and the batches it made."""
    batches = Batches()
    writer = Writer(store)
    try:
        return asyncio.run(main(Coalesced(writer, batches, **kw))), batches.seen
    finally:
        writer.close()


def test_calls_within_the_gathering_time_share_one_trip(store: Store) -> None:
    async def main(coalesced: Coalesced[str, str]) -> list[str]:
        first = asyncio.ensure_future(coalesced("a"))
        for _ in range(3):  # the gathering has begun: a plain Coalesced would be on its trip
            await asyncio.sleep(0)
        return [*await asyncio.gather(first, coalesced("b")), await coalesced("c")]

    assert gathered(store, main, gather=0.2) == (["A", "B", "C"], [["a", "b"], ["c"]])


def test_a_call_nothing_is_coming_to_join_goes_at_once(store: Store) -> None:
    async def main(coalesced: Coalesced[str, str]) -> str:
        return await asyncio.wait_for(coalesced("a"), 10)  # not the 60 s it may gather

    assert gathered(store, main, gather=60, coming=lambda queued: False) == ("A", [["a"]])


def test_the_gathering_ends_when_every_expected_call_is_in(store: Store) -> None:
    async def main(coalesced: Coalesced[str, str]) -> list[str]:
        first = asyncio.ensure_future(coalesced("a"))
        await asyncio.sleep(0)
        both = asyncio.gather(first, coalesced("b"))
        return list(await asyncio.wait_for(both, 10))

    # two calls expected: the second ends the wait, long before the 60 s
    found = gathered(store, main, gather=60, coming=lambda queued: queued < 2)
    assert found == (["A", "B"], [["a", "b"]])


def test_a_pass_of_unchanged_feeds_writes_together_and_a_lone_poll_does_not_wait(
    newsroom: Newsroom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline tells its unchanged-state writes how many polls are still under way."""
    monkeypatch.setattr(pipeline, "UNCHANGED_GATHER", 60.0)  # a wait nobody should sit out
    batches: list[int] = []
    plain = Store.record_unchanged_states

    def counted(self: Store, updates: Any) -> list[Exception | None]:
        batches.append(len(updates))
        return plain(self, updates)

    monkeypatch.setattr(Store, "record_unchanged_states", counted)
    feeds = []
    for n in range(4):
        url = newsroom.add_feed(f"/f{n}.xml", [Entry(title=f"t{n}", guid=f"g{n}", summary="s")])
        feeds.append(FeedSpec(f"f{n}", url, fetch_article=False))
    config = make_config(tmp_path, feeds)
    clock = FakeClock(START)
    assert {o.status for o in one_pass(config, clock).values()} == {"ok"}

    async def action(p: Pipeline) -> tuple[list[PollOutcome], PollOutcome]:
        together = await asyncio.wait_for(p.run_once(config.feeds), 30)
        alone = p.poll(config.feeds[0], ignore_backoff=True)
        return together, await asyncio.wait_for(alone, 30)

    together, alone = run(config, clock, action)
    assert {o.status for o in together} == {"unchanged"} and alone.status == "unchanged"
    assert sum(batches) == 5 and len(batches) <= 3  # not a trip per poll
    assert feed_state(config, "f0").status is FeedStatus.OK


def test_a_cancelled_caller_sends_what_is_gathered_before_the_writer_closes(
    store: Store,
) -> None:
    """As the daemon stops: it cancels the polls, then closes the writer. A write handed over
    must not be left waiting out the gathering time, and so never written."""
    batches = Batches()
    writer = Writer(store)
    coalesced: Coalesced[str, str] = Coalesced(writer, batches, gather=60)

    async def main() -> None:
        task = asyncio.ensure_future(coalesced("a"))
        for _ in range(3):  # the gathering has begun
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.close()  # waits for what was handed to it

    asyncio.run(main())
    assert batches.seen == [["a"]]
