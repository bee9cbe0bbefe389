"""A feed of 20,000 entries (about 4 MB of RSS): read, stored, other feeds unharmed, memory bounded.

Measured on the development machine (report in the closing note): feedparser alone takes about
7 s on this document, one pass with `fetch_article: false` about 15 s, with RSS growing about
160 MB. With article fetching on, the same pass fetches 20,000 pages (about 90 s): slow test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.schedule import FeedStatus
from tests.newsroom import Newsroom
from tests.pipeline_helpers import (
    START,
    FeedSpec,
    feed_state,
    make_config,
    measure_peak,
    one_pass,
    stored_items,
)

MB = 10**6
ENTRIES = 20_000


def poll_huge(
    room: Newsroom, tmp_path: Path, *, fetch_article: bool, timeout: str
) -> tuple[float, int]:
    url = room.add_hostile_feed("/huge.xml", "huge")
    config = make_config(
        tmp_path,
        [("good", room.url("/good.xml")), FeedSpec("huge", url, fetch_article=fetch_article)],
        timeout=timeout,
    )
    started = time.perf_counter()
    with measure_peak(trace=False) as peak:  # tracemalloc would make this pass 5x slower
        outcomes = one_pass(config, FakeClock(START))
    elapsed = time.perf_counter() - started
    assert outcomes["good"].status == "ok" and outcomes["good"].new == 2
    assert {i["text_source"] for i in stored_items(config, "good")} == {"page"}
    assert outcomes["huge"].status == "ok" and outcomes["huge"].new == ENTRIES
    assert feed_state(config, "huge").status is FeedStatus.OK
    assert len(stored_items(config, "huge")) == ENTRIES
    print(f"\n20,000-entry feed: pass {elapsed:.1f} s, RSS grew {peak.rss_growth / MB:.0f} MB")
    return elapsed, peak.rss_growth


@pytest.mark.usefixtures("warmed")
def test_feed_of_20000_entries_is_read_with_memory_bounded(room: Newsroom, tmp_path: Path) -> None:
    _, rss_growth = poll_huge(room, tmp_path, fetch_article=False, timeout="10s")
    # ~4 MB of XML; the entries, their records and one transaction of 20,000 items.
    assert rss_growth < 400 * MB


@pytest.mark.slow
@pytest.mark.usefixtures("warmed")
def test_feed_of_20000_entries_with_article_fetching(room: Newsroom, tmp_path: Path) -> None:
    """Every entry links to a page (404 here): 20,000 page requests in one poll."""
    _, rss_growth = poll_huge(room, tmp_path, fetch_article=True, timeout="10s")
    assert len(room.requests_for("/huge.xml")) == 1
    assert len([r for r in room.log if r.path.startswith("/h/")]) == ENTRIES
    assert rss_growth < 600 * MB
