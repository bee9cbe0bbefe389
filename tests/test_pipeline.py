"""End to end: the pipeline against the loopback newsroom, with a SQLite database on disk."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.clock import FakeClock
from monitor.config import Config
from monitor.pipeline import Pipeline, PollOutcome
from monitor.schedule import FeedStatus, Skip
from monitor.service import open_pipeline
from tests import pipeline_helpers
from tests.newsroom import Delay, Entry, Newsroom, Oversized, Redirect, Status, Times
from tests.pipeline_helpers import START, feed_state, one_pass, run, stored_items


def make_config(tmp_path: Path, feeds: list[tuple[str, str]], extra: str = "") -> Config:
    return pipeline_helpers.make_config(tmp_path, feeds, timeout="2s", extra=extra)


def once(config: Config, clock: FakeClock) -> dict[str, PollOutcome]:
    return one_pass(config, clock)


def items(config: Config) -> list[dict[str, Any]]:
    return stored_items(config)


def test_first_pass_stores_articles_second_pass_is_conditional(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    en = newsroom.publish("/en.xml", 4, lang="en")
    ru = newsroom.publish("/ru.atom", 3, lang="ru", fmt="atom", seed=100)
    ko = newsroom.publish("/ko.json", 2, lang="ko", fmt="json", seed=200)
    config = make_config(
        tmp_path,
        [
            ("English", newsroom.url("/en.xml")),
            ("Russian", newsroom.url("/ru.atom")),
            ("Korean", newsroom.url("/ko.json")),
        ],
    )
    clock = FakeClock(START)
    first = once(config, clock)
    assert {o.status for o in first.values()} == {"ok"}
    assert sum(o.new for o in first.values()) == 9
    stored = {i["url"]: i for i in items(config)}
    for published in (*en, *ru, *ko):
        item = stored[published.url]
        assert item["text_source"] == "page"
        # the article's own paragraphs are there, the page chrome and comments are not
        assert published.story.paragraphs[1][:60] in item["text"]
        assert not any(c[:40] in item["text"] for c in published.story.comments)
        assert item["title"] == published.story.title
    assert {stored[p.url]["language"] for p in ru} == {"ru"}
    assert {stored[p.url]["language"] for p in ko} == {"ko"}

    newsroom.reset_log()
    clock.advance(timedelta(minutes=30))
    second = once(config, clock)
    assert {o.status for o in second.values()} == {"unchanged"}
    assert sum(o.new for o in second.values()) == 0
    feed_requests = [r for r in newsroom.log if r.path in ("/en.xml", "/ru.atom", "/ko.json")]
    assert len(feed_requests) == 3
    assert all(r.conditional and r.status == 304 for r in feed_requests)
    assert len(newsroom.log) == 3  # no article page fetched again
    assert len(items(config)) == 9


def test_unchanged_body_without_conditional_support_costs_no_parsing(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    newsroom.publish("/feed.xml", 2)
    newsroom.set_conditional("/feed.xml", False)
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))])
    clock = FakeClock(START)
    assert once(config, clock)["F"].new == 2
    outcome = once(config, clock)["F"]
    assert outcome.status == "unchanged"  # same hash: not parsed
    assert newsroom.requests_for("/feed.xml")[-1].status == 200


def test_new_entries_on_a_later_pass_are_added(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/feed.xml", 2)
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))])
    clock = FakeClock(START)
    once(config, clock)
    newsroom.publish("/feed.xml", 3, seed=50)
    assert once(config, clock)["F"].new == 3
    assert len(items(config)) == 5


def test_redirected_feed_is_followed(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/new-home.xml", 2)
    newsroom.set_fault("/old.xml", Redirect("/new-home.xml", status=301))
    config = make_config(tmp_path, [("F", newsroom.url("/old.xml"))])
    outcome = once(config, FakeClock(START))["F"]
    assert outcome.status == "ok" and outcome.new == 2


def test_timeout_and_oversize_fail_only_their_feed(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/good.xml", 2)
    newsroom.set_fault("/slow.xml", Delay(10))
    newsroom.set_fault("/huge.xml", Oversized(50_000_000))
    config = make_config(
        tmp_path,
        [
            ("good", newsroom.url("/good.xml")),
            ("slow", newsroom.url("/slow.xml")),
            ("huge", newsroom.url("/huge.xml")),
        ],
        extra="fetch: {max_body: 1MB}\n",
    )
    outcomes = once(config, FakeClock(START))
    assert outcomes["good"].status == "ok" and outcomes["good"].new == 2
    assert outcomes["slow"].status == "error" and outcomes["slow"].error == "timed out after 2s"
    assert outcomes["huge"].status == "error" and "too large" in (outcomes["huge"].error or "")
    state = feed_state(config, "huge")
    assert state.status is FeedStatus.ERROR and "too large" in state.last_error


def test_entries_without_links_duplicate_guids_and_relative_links(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    published = newsroom.publish("/rel.xml", 2, relative_links=True)
    entries = [
        Entry(title="No link at all", guid="urn:x:1", summary="Text of the linkless entry."),
        Entry(title="Dup A", guid="urn:x:dup", summary="First with this guid."),
        Entry(title="Dup B", guid="urn:x:dup", summary="Second with this guid."),
    ]
    newsroom.update_feed("/rel.xml", prepend=entries)
    config = make_config(tmp_path, [("F", newsroom.url("/rel.xml"))])
    outcome = once(config, FakeClock(START))["F"]
    assert outcome.status == "ok"
    stored = items(config)
    urls = {i["url"] for i in stored}
    assert {p.url for p in published} <= urls  # relative links resolved against the feed
    linkless = [i for i in stored if i["title"] == "No link at all"]
    assert len(linkless) == 1 and linkless[0]["text_source"] == "feed"
    assert linkless[0]["text"] == "Text of the linkless entry."
    assert len([i for i in stored if i["guid"] == "urn:x:dup"]) == 1
    assert len(stored) == 4


def test_page_that_fails_falls_back_to_feed_text(newsroom: Newsroom, tmp_path: Path) -> None:
    (published,) = newsroom.publish("/feed.xml", 1)
    newsroom.set_fault(published.path, Status(404))
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))])
    once(config, FakeClock(START))
    (item,) = items(config)
    assert item["text_source"] == "feed"
    assert item["extract_error"] == "page: HTTP 404 Not Found"
    assert item["text"]  # the feed's summary


def test_same_article_in_two_feeds_is_one_item(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/a.xml", 2, seed=7)
    newsroom.publish("/b.xml", 2, seed=7)  # same seeds and prefix: the same article URLs
    config = make_config(tmp_path, [("A", newsroom.url("/a.xml")), ("B", newsroom.url("/b.xml"))])
    once(config, FakeClock(START))
    stored = items(config)
    assert len(stored) == 2
    assert all(sorted(i["feeds"]) == ["A", "B"] for i in stored)


def test_dead_feed_backs_off_and_recovers(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/feed.xml", 2)
    newsroom.set_fault("/feed.xml", Times(Status(500), 2))
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))])
    feed = config.feeds[0]
    clock = FakeClock(START)

    def poll() -> PollOutcome:
        async def action(p: Pipeline) -> PollOutcome:
            return await p.poll(feed)  # as the daemon does: back-off respected

        return run(config, clock, action)

    assert poll().error == "HTTP 500 Internal Server Error"
    state = feed_state(config, "F")
    assert state.error_count == 1 and state.next_fetch == START + timedelta(minutes=10)
    clock.advance(timedelta(minutes=10))
    assert poll().status == "error"
    state = feed_state(config, "F")
    assert state.error_count == 2 and state.next_fetch == clock.now() + timedelta(minutes=20)
    clock.advance(timedelta(minutes=10))
    assert poll().skipped is Skip.BACKING_OFF
    clock.advance(timedelta(minutes=10))
    recovered = poll()
    assert recovered.status == "ok" and recovered.new == 2
    state = feed_state(config, "F")
    assert state.status is FeedStatus.OK and state.error_count == 0


def test_gone_feed_stops_and_retry_after_is_honoured(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.set_fault("/gone.xml", Status(410))
    newsroom.set_fault("/busy.xml", Status(503, retry_after=3600))
    config = make_config(
        tmp_path, [("gone", newsroom.url("/gone.xml")), ("busy", newsroom.url("/busy.xml"))]
    )
    clock = FakeClock(START)
    first = once(config, clock)
    assert first["gone"].status == "gone"
    assert first["busy"].status == "error"
    clock.advance(timedelta(minutes=5))
    second = once(config, clock)
    assert second["gone"].skipped is Skip.GONE
    assert second["busy"].skipped is Skip.RETRY_AFTER
    clock.advance(timedelta(hours=1))
    assert once(config, clock)["busy"].status == "error"  # asked again once the pause is over


def test_html_page_url_discovers_its_feed(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/real-feed.xml", 2)
    href = newsroom.url("/real-feed.xml")
    newsroom.add_page(
        "/",
        f'<html><head><link rel="alternate" type="application/rss+xml" href="{href}">'
        "</head><body>Home</body></html>",
    )
    config = make_config(tmp_path, [("Site", newsroom.url("/"))])
    clock = FakeClock(START)
    outcome = once(config, clock)["Site"]
    assert outcome.status == "ok" and outcome.new == 2 and outcome.used_url == href
    newsroom.reset_log()
    again = once(config, clock)["Site"]
    assert again.status == "unchanged"
    assert [r.path for r in newsroom.log] == ["/real-feed.xml"]  # the discovered feed is remembered


@pytest.mark.parametrize("workers", [1])
def test_extraction_in_a_process_pool(newsroom: Newsroom, tmp_path: Path, workers: int) -> None:
    newsroom.publish("/feed.xml", 3)
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))])

    async def go() -> list[PollOutcome]:
        async with open_pipeline(config, clock=FakeClock(START), workers=workers) as p:
            return await p.run_once(config.feeds)

    (outcome,) = asyncio.run(go())
    assert outcome.new == 3
    assert {i["text_source"] for i in items(config)} == {"page"}


def test_article_fetches_per_poll_are_capped(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/flood.xml", 5)
    config = make_config(
        tmp_path, [("F", newsroom.url("/flood.xml"))], extra="fetch: {max_articles_per_poll: 2}\n"
    )
    assert once(config, FakeClock(START))["F"].new == 5
    sources = sorted(i["text_source"] for i in items(config))
    assert sources == ["feed", "feed", "feed", "page", "page"]
    capped = [i for i in items(config) if i["text_source"] == "feed"]
    assert all(
        i["extract_error"] == "page not fetched: over 2 new entries in one poll" for i in capped
    )


def test_a_page_too_short_to_tell_gets_its_html_lang(newsroom: Newsroom, tmp_path: Path) -> None:
    """The page's <html lang> reaches the poll's language detection (done with its matching)."""
    # Digits and a few letters: too little for the classifier, so <html lang> decides.
    text = "2026 — 1 234 567 — 89 10 11 — 12 13 14 — 15 16 17 — 18 19 20 — 21 22 23"
    page = newsroom.add_page(
        "/ko/story.html",
        f'<html lang="ko"><head><title>t</title></head><body><article><p>{text}</p>'
        f"<p>{text} 24 25</p></article></body></html>",
    )
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>k</title>'
        f"<item><title>1 2 3</title><link>{page}</link><guid>{page}</guid></item>"
        "</channel></rss>"
    )
    newsroom.add_raw("/ko.xml", rss.encode(), content_type="application/rss+xml")
    config = make_config(tmp_path, [("Korean", newsroom.url("/ko.xml"))])
    once(config, FakeClock(START))
    (item,) = items(config)
    assert item["text_source"] == "page" and "1 234 567" in item["text"]
    assert item["language"] == "ko"
