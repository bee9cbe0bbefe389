"""Frozen records handed from one pipeline stage to the next.

fetch -> FetchResult; parse -> ParsedFeed(FeedEntry...); extract -> Article;
match -> TopicMatch; cluster -> Assignment; store writes them in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class FetchStatus(StrEnum):
    OK = "ok"  # a body arrived (2xx)
    NOT_MODIFIED = "not_modified"  # 304
    ERROR = "error"  # network error, timeout, oversized, 4xx/5xx
    GONE = "gone"  # 410


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status: FetchStatus
    http_status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    retry_after: datetime | None = None  # when the server asked us to come back
    error: str | None = None  # human-readable
    duration: float = 0.0
    transient: bool = True  # for errors: worth retrying soon?


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a parsed feed, with its identity already decided."""

    key: str  # canonical URL when there is a link, else "guid:..." or "hash:..."
    url: str | None  # canonical article URL
    link: str | None  # the link as the feed gave it (resolved to absolute)
    guid: str | None
    title: str
    summary: str  # feed's own text (content or summary), HTML stripped
    author: str | None
    published: datetime | None
    updated: datetime | None
    entry_hash: str  # hash of the entry's visible fields, to notice updates


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...] = ()
    discovered_url: str | None = None  # set when the configured URL was an HTML page


@dataclass(frozen=True)
class Article:
    """An entry plus the extracted text of its page (or the feed's text)."""

    entry: FeedEntry
    title: str
    text: str
    text_source: str  # "page" or "feed"
    author: str | None
    published: datetime | None
    site_name: str | None
    language: str | None
    page_url: str | None  # where the page was finally fetched from
    extract_error: str | None = None
    features: str | None = None  # monitor.cluster features (JSON), for matched articles only


@dataclass(frozen=True)
class TopicMatch:
    topic: str
    terms: tuple[str, ...]  # the query terms that hit
    snippet: str  # highlighted snippet of the original text
    score: float = 0.0


@dataclass(frozen=True)
class Assignment:
    """Which development an article joins within a topic."""

    topic: str
    relation: str  # "first" (new development), "report", "duplicate"
    development_id: int | None  # None when a new development is to be opened
    duplicate_of: int | None = None  # item id
    score: float = 0.0


@dataclass(frozen=True)
class FeedPoll:
    """Everything one poll of one feed produced, ready to be written."""

    feed_name: str
    fetch: FetchResult
    parsed: ParsedFeed | None
    new_articles: tuple[Article, ...] = ()
    updated_entries: tuple[FeedEntry, ...] = ()
    seen_entries: tuple[FeedEntry, ...] = ()  # known items listed again (sightings)
    matches: dict[str, tuple[TopicMatch, ...]] = field(default_factory=dict)  # key -> matches
    # key -> (title, text) normalised as the history index holds them, from matching (the store
    # indexes an article without tokenising it again; absent keys are normalised there)
    indexed: dict[str, tuple[str, str]] = field(default_factory=dict)
