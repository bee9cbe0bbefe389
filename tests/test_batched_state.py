"""Feed state read and written for many polls in one writer trip (pipeline.Coalesced, Store)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.pipeline import Coalesced, Writer
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store, StoreError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def update(etag: str) -> FeedStateUpdate:
    return FeedStateUpdate(
        status=FeedStatus.OK,
        last_fetch=NOW,
        next_fetch=NOW + timedelta(minutes=15),
        error_count=0,
        etag=etag,
        success=True,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "m.db")
    store.sync_feeds([(f"f{n}", f"https://news.example/{n}.xml", "h") for n in range(3)])
    return store


def test_states_are_read_by_name_in_order_with_none_for_unknown(store: Store) -> None:
    states = store.feed_states_named(["f2", "nope", "f0", "f2"])
    assert [s.name if s else None for s in states] == ["f2", None, "f0", "f2"]


def test_many_feed_states_are_written_and_an_unknown_feed_fails_alone(store: Store) -> None:
    results = store.record_feed_states(
        [("f0", update('"a"')), ("gone-from-config", update('"b"')), ("f2", update('"c"'))]
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], StoreError)
    states = store.feed_states()
    assert (states["f0"].etag, states["f1"].etag, states["f2"].etag) == ('"a"', None, '"c"')
    assert states["f0"].status is FeedStatus.OK and states["f2"].next_fetch == NOW + timedelta(
        minutes=15
    )


class Recorder:
    """A `many` function that records each batch it was called with, on the writer thread."""

    def __init__(self, fail: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail = fail

    def __call__(self, args: Sequence[str]) -> list[str | Exception]:
        self.batches.append(list(args))
        self.threads.add(threading.current_thread().name)
        if "boom" in args:
            raise RuntimeError("the whole batch failed")
        return [ValueError(a) if a == self.fail else a.upper() for a in args]


def test_concurrent_calls_share_one_writer_call_and_each_gets_its_own_result(
    store: Store,
) -> None:
    recorder = Recorder(fail="b")
    writer = Writer(store)
    coalesced: Coalesced[str, str] = Coalesced(writer, recorder)

    async def main() -> list[str | BaseException]:
        return await asyncio.gather(*(coalesced(x) for x in "abc"), return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert recorder.batches == [["a", "b", "c"]]  # one trip for three callers
    assert recorder.threads == {"monitor-writer_0"}
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError)  # only its own caller hears of its failure


def test_calls_made_while_a_batch_runs_go_in_the_next_one(store: Store) -> None:
    recorder = Recorder()
    writer = Writer(store)
    coalesced: Coalesced[str, str] = Coalesced(writer, recorder)

    async def main() -> tuple[str, list[str]]:
        first = asyncio.ensure_future(coalesced("a"))
        await asyncio.sleep(0)  # the first batch is now on the writer thread
        later = await asyncio.gather(coalesced("b"), coalesced("c"))
        return await first, list(later)

    try:
        first, later = asyncio.run(main())
    finally:
        writer.close()
    assert (first, later) == ("A", ["B", "C"])
    assert recorder.batches == [["a"], ["b", "c"]]


def test_a_failing_batch_fails_every_caller_in_it_and_the_next_batch_still_runs(
    store: Store,
) -> None:
    recorder = Recorder()
    writer = Writer(store)
    coalesced: Coalesced[str, str] = Coalesced(writer, recorder)

    async def main() -> tuple[list[str | BaseException], str]:
        failed = await asyncio.gather(coalesced("boom"), coalesced("x"), return_exceptions=True)
        return list(failed), await coalesced("y")

    try:
        failed, after = asyncio.run(main())
    finally:
        writer.close()
    assert all(isinstance(r, RuntimeError) for r in failed)
    assert after == "Y"
