"""Shared helpers for pipeline tests: a config on disk, one pass, the stored feed state and items."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from monitor.clock import FakeClock
from monitor.config import Config, load_config
from monitor.pipeline import Pipeline, PollOutcome
from monitor.service import open_pipeline
from monitor.store import FeedState, Store

T = TypeVar("T")
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FeedSpec:
    name: str
    url: str
    fetch_article: bool = True


def make_config(
    tmp_path: Path,
    feeds: Sequence[FeedSpec | tuple[str, str]],
    *,
    timeout: str = "1s",
    interval: str = "10m",
    extra: str = "",
) -> Config:
    lines = [
        "database: ../state/monitor.db",
        "workers: 0",
        f"defaults: {{timeout: {timeout}, interval: {interval}, jitter: 0s}}",
        "feeds:",
    ]
    for spec in feeds:
        feed = spec if isinstance(spec, FeedSpec) else FeedSpec(*spec)
        lines += [f"  - name: {feed.name}", f"    url: {feed.url}"]
        if not feed.fetch_article:
            lines.append("    fetch_article: false")
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return load_config(path)


def run(
    config: Config,
    clock: FakeClock,
    action: Callable[[Pipeline], Coroutine[Any, Any, T]],
) -> T:
    async def go() -> T:
        async with open_pipeline(config, clock=clock, workers=0) as pipeline:
            return await action(pipeline)

    return asyncio.run(go())


def one_pass(
    config: Config, clock: FakeClock, *, ignore_backoff: bool = True
) -> dict[str, PollOutcome]:
    """Every feed polled in the same pass: as `monitor once` does, or (ignore_backoff=False)
    as the daemon does, skipping feeds that are not due."""

    async def action(p: Pipeline) -> list[PollOutcome]:
        return await p.run_once(config.feeds, ignore_backoff=ignore_backoff)

    return {o.feed: o for o in run(config, clock, action)}


def feed_state(config: Config, name: str) -> FeedState:
    store = Store.open(config.database, create=False)
    try:
        state = store.feed_state(name)
    finally:
        store.close()
    assert state is not None
    return state


def feed_row(config: Config, name: str) -> dict[str, Any]:
    """The feed as `monitor feeds` shows it (includes last_warning)."""
    store = Store.open(config.database, create=False)
    try:
        return next(r for r in store.feed_overview() if r["name"] == name)
    finally:
        store.close()


def stored_items(config: Config, feed: str | None = None) -> list[dict[str, Any]]:
    store = Store.open(config.database, create=False)
    try:
        return store.recent_items(feed=feed, limit=100_000)
    finally:
        store.close()


@dataclass
class Peak:
    traced: int = 0  # bytes, Python allocations (tracemalloc)
    rss_growth: int = 0  # bytes, resident set growth over the start (sampled)


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096


@contextmanager
def measure_peak(*, trace: bool = True) -> Iterator[Peak]:
    """Peak memory while the block runs: tracemalloc's peak, and the RSS growth sampled every 5 ms."""
    peak = Peak()
    start = _rss()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak.rss_growth = max(peak.rss_growth, _rss() - start)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if trace:
        tracemalloc.start()
    try:
        yield peak
    finally:
        if trace:
            peak.traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        stop.set()
        sampler.join()
        peak.rss_growth = max(peak.rss_growth, _rss() - start)


def warm_up(tmp_path: Path) -> None:
    """One ordinary pass, so lazy imports and language models are loaded before memory is traced."""
    from tests.newsroom import Newsroom

    with Newsroom() as room:
        room.publish("/warm.xml", 1)
        config = make_config(tmp_path, [("warm", room.url("/warm.xml"))])
        one_pass(config, FakeClock(START))
