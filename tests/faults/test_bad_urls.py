"""Malformed links and Location headers are errors of one fetch, never a crashed poll."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.fetch import Fetcher
from monitor.netguard import NetGuard
from monitor.records import FetchResult, FetchStatus
from tests.newsroom import Entry, Newsroom, Redirect
from tests.pipeline_helpers import START, feed_state, make_config, one_pass, stored_items

FEED = "http://news.example/feed.xml"


async def no_such_host(host: str, port: int) -> list[str]:
    """Like the system resolver offline: names are IDNA-encoded, then not found."""
    host.encode("idna")
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def fetch(url: str, *, guarded: bool) -> FetchResult:
    async def go() -> FetchResult:
        guard = NetGuard(no_such_host).for_article(FEED) if guarded else None
        async with Fetcher() as fetcher:
            return await fetcher.fetch(url, timeout=2, guard=guard)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("url", "feed_error", "article_error"),
    [
        ("http://[::1", "bad URL: Invalid IPv6 URL", "bad URL: Invalid IPv6 URL"),
        (
            "http://xn--/a",
            "bad URL: Malformed A-label, no Punycode eligible content found",
            "host not found (DNS lookup failed)",
        ),
        (
            "http://\x00.example/a",
            "bad URL: Invalid non-printable ASCII character in URL, '\\x00' at position 7.",
            "refused: article link points to an invalid URL",
        ),
        (
            "http://a..b/c",
            "host not found (DNS lookup failed)",
            "refused: the link's host name is not valid (a..b)",
        ),
    ],
)
def test_malformed_urls_come_back_as_errors_not_exceptions(
    url: str, feed_error: str, article_error: str
) -> None:
    for guarded, error in ((False, feed_error), (True, article_error)):
        result = fetch(url, guarded=guarded)
        assert result.status is FetchStatus.ERROR
        assert result.error == error


def test_a_malformed_location_header_is_a_bad_redirect(newsroom: Newsroom) -> None:
    newsroom.set_fault("/moved", Redirect("http://[::1", absolute=False))
    result = fetch(newsroom.url("/moved"), guarded=False)
    assert result.error == "bad redirect: Invalid URL in location header: Invalid port: ':1'."


def test_a_configured_feed_url_that_cannot_be_encoded_is_recorded_in_words(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, [("F", "http://xn--/feed.xml")])
    outcome = one_pass(config, FakeClock(START))["F"]
    assert outcome.status == "error"
    assert feed_state(config, "F").last_error == (
        "bad URL: Malformed A-label, no Punycode eligible content found"
    )


def test_articles_with_unusable_links_fall_back_to_the_feed_text(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    entries = [
        Entry(title="Odd A", link="http://xn--/a", guid="a", summary="Text A"),
        Entry(title="Odd B", link="http://a..b/c", guid="b", summary="Text B"),
    ]
    published = newsroom.publish("/feed.xml", 1)
    newsroom.update_feed("/feed.xml", prepend=entries)
    config = make_config(tmp_path, [("F", newsroom.url("/feed.xml"))])
    outcome = one_pass(config, FakeClock(START))["F"]
    assert outcome.status == "ok" and outcome.new == 3
    by_title = {i["title"]: i for i in stored_items(config)}
    assert by_title["Odd A"]["text_source"] == "feed" and by_title["Odd A"]["text"] == "Text A"
    assert by_title["Odd B"]["text_source"] == "feed"
    assert by_title[published[0].story.title]["text_source"] == "page"
