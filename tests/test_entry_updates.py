"""What counts as an update of a stored item (its title or text, not its date or link), what an
upgrade does with hashes stored before, and entries that carry nothing (a truncated feed)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.parse import parse_feed
from monitor.records import FeedEntry, ParsedFeed
from monitor.store import Store
from tests.newsroom import Delay, Entry, Newsroom
from tests.pipeline_helpers import START, FeedSpec, feed_row, make_config, one_pass, stored_items


def parsed(body: str, url: str = "https://x.example/f") -> ParsedFeed:
    feed = parse_feed(body.encode(), url=url)
    assert isinstance(feed, ParsedFeed)
    return feed


def rss(items: str) -> str:
    return f'<rss version="2.0"><channel><title>X</title><link>https://x.example/</link>{items}</channel></rss>'


def item(
    title: str, link: str, date: str = "Sun, 01 Mar 2026 12:00:00 GMT", text: str = "Body"
) -> str:
    return f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate><description>{text}</description></item>"


def one(body: str) -> FeedEntry:
    (entry,) = parsed(body).entries
    return entry


def test_a_new_date_or_tracking_link_is_no_update_a_new_title_or_text_is() -> None:
    base = one(rss(item("T", "https://x.example/a")))
    redated = one(rss(item("T", "https://x.example/a", date="Mon, 02 Mar 2026 09:00:00 GMT")))
    tracked = one(rss(item("T", "https://x.example/a?utm_source=rss")))
    assert redated.entry_hash == tracked.entry_hash == base.entry_hash
    assert tracked.key == base.key
    assert one(rss(item("T (corrected)", "https://x.example/a"))).entry_hash != base.entry_hash
    assert one(rss(item("T", "https://x.example/a", text="Fixed"))).entry_hash != base.entry_hash


def test_a_feed_that_redates_its_entries_every_poll_makes_no_updates(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    links = [newsroom.url(f"/a/{n}") for n in range(2)]
    entries = [
        Entry(title=f"Story {n}", link=link, summary=f"Text {n}", published=START)
        for n, link in enumerate(links)
    ]
    newsroom.add_feed("/feed.xml", entries)
    config = make_config(tmp_path, [FeedSpec("F", newsroom.url("/feed.xml"), fetch_article=False)])
    clock = FakeClock(START)
    assert one_pass(config, clock)["F"].new == 2
    for hours in (1, 2):  # every poll the feed says its entries were published just now
        clock.advance(timedelta(hours=1))
        later = START + timedelta(hours=hours)
        newsroom.set_entries("/feed.xml", [replace(e, published=later) for e in entries])
        outcome = one_pass(config, clock)["F"]
        assert (outcome.status, outcome.new, outcome.updated) == ("ok", 0, 0)

    # Upgrading: the stored hashes are of the old kind (SHA-256 over title, text, link and
    # date), which the re-dated entries no longer match.
    store = Store.open(config.database, create=False)
    for n, link in enumerate(links):
        old = hashlib.sha256(f"Story {n} as dated before".encode()).hexdigest()
        store.conn.execute("UPDATE items SET entry_hash = ? WHERE key = ?", (old, link))
    store.close()
    clock.advance(timedelta(hours=1))
    later = START + timedelta(hours=3)
    newsroom.set_entries("/feed.xml", [replace(e, published=later) for e in entries])
    assert one_pass(config, clock)["F"].updated == 0  # no wave of "updated" after an upgrade

    clock.advance(timedelta(hours=1))
    newsroom.set_entries(
        "/feed.xml", [replace(entries[0], title="Story 0 (corrected)"), entries[1]]
    )
    assert one_pass(config, clock)["F"].updated == 1


TRUNCATED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<link>http://x.example/</link><item><title>Full</title>"
    b"<link>http://x.example/a/1</link></item><item><title>Half an item"
)


def test_an_entry_that_carries_nothing_is_skipped_and_counted() -> None:
    feed = parse_feed(TRUNCATED, url="http://x.example/feed")
    assert isinstance(feed, ParsedFeed)
    assert [e.title for e in feed.entries] == ["Full"]
    assert "1 entry has no title, link, content or id and was skipped" in feed.warnings
    # A description of markup alone is content: kept (feedparser's own test cases expect it).
    image = parsed(rss('<item><description>&lt;img alt="x" /&gt;</description></item>'))
    assert len(image.entries) == 1 and image.warnings == ()


def test_a_truncated_feed_stores_no_blank_item(newsroom: Newsroom, tmp_path: Path) -> None:
    body = TRUNCATED.replace(b"http://x.example/a/1", newsroom.url("/a/1").encode())
    newsroom.add_raw("/cut.xml", body, "application/rss+xml")
    config = make_config(tmp_path, [FeedSpec("Cut", newsroom.url("/cut.xml"), fetch_article=False)])
    assert one_pass(config, FakeClock(START))["Cut"].new == 1
    assert [i["title"] for i in stored_items(config)] == ["Full"]
    assert (
        "1 entry has no title, link, content or id and was skipped"
        in (feed_row(config, "Cut")["last_warning"])
    )


def test_the_poll_line_gives_the_article_pages_time_beside_the_feeds(
    newsroom: Newsroom, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    newsroom.publish("/feed.xml", 1)
    (page,) = [e.link for e in newsroom.entries("/feed.xml")]
    assert page is not None
    newsroom.set_fault(page.removeprefix(newsroom.base_url), Delay(0.3))  # a slow article page
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))], timeout="5s")
    with caplog.at_level(logging.INFO, logger="monitor.poll"):
        outcome = one_pass(config, FakeClock(START))["F"]
    assert outcome.new == 1 and outcome.articles_duration >= 0.3 > outcome.duration
    (line,) = [r.getMessage() for r in caplog.records if r.name == "monitor.poll"]
    assert f"duration={outcome.duration:.3f}s articles={outcome.articles_duration:.3f}s" in line
