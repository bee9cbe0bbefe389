"""From raw feed entries (any format) to FeedEntry records with their identity.

Identity (``key``): the canonical link when the entry has a usable http(s)
link to an article, else ``guid:<guid>``, else ``hash:<sha1 of title+text>``.
An item is one article keyed by its URL, so the same article listed by two
feeds gets the same key; a link to a site's home page or to the feed itself
names no article and is not used as a key. When there is a link, ``key ==
url``; the URL keeps the anchor of a post on a multi-post page (see urls).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from monitor.records import FeedEntry, ParsedFeed
from monitor.urls import canonical_url

_SEP = "\x1f"  # between hashed fields, so ("ab", "c") and ("a", "bc") differ


@dataclass(frozen=True)
class RawEntry:
    """One entry as a format adapter read it: text already plain, links absolute."""

    title: str
    texts: Sequence[str]  # content and summary as plain text; the longest wins
    links: Sequence[str]  # absolute http(s) candidates, best first
    guid: str | None
    author: str | None
    published: datetime | None
    updated: datetime | None


@dataclass(frozen=True)
class RawFeed:
    title: str | None
    site_url: str | None
    entries: Sequence[RawEntry]
    warnings: Sequence[str] = field(default=())
    not_articles: Sequence[str] = field(default=())  # e.g. the feed's rel="self" URL


def build_parsed_feed(raw: RawFeed, feed_url: str) -> ParsedFeed:
    """Decide every entry's identity; keep the first of entries sharing a key."""
    pages = (feed_url, raw.site_url, *raw.not_articles)
    not_articles = frozenset(u for u in map(canonical_url, pages) if u is not None)
    warnings = list(raw.warnings)
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for item in raw.entries:
        entry = build_entry(item, not_articles)
        if entry.key in seen:
            duplicates.append(entry.key)
            continue
        seen.add(entry.key)
        entries.append(entry)
    if duplicates:
        warnings.append(_duplicates_warning(duplicates))
    return ParsedFeed(
        title=raw.title or None,
        site_url=raw.site_url,
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def build_entry(item: RawEntry, not_articles: frozenset[str] = frozenset()) -> FeedEntry:
    link = item.links[0] if item.links else None
    url = canonical_url(link, keep_anchor=True)
    if url is not None and not is_article_url(url, not_articles):
        url = None  # a home page would be fetched and stored as if it were the article
    summary = max(item.texts, key=len, default="")
    if url is not None:
        key = url
    elif item.guid:
        key = "guid:" + item.guid
    else:
        key = "hash:" + hashlib.sha1(_utf8(item.title + "\n" + summary)).hexdigest()
    return FeedEntry(
        key=key,
        url=url,
        link=link,
        guid=item.guid,
        title=item.title,
        summary=summary,
        author=item.author,
        published=item.published,
        updated=item.updated,
        entry_hash=entry_hash(item.title, summary),
    )


def entry_hash(title: str, summary: str) -> str:
    """What makes a listed entry an update of its item: its title or its text changed.

    Not its date or link: a feed that re-dates its entries on every poll, or adds a tracking
    parameter to the link, has not changed the article (the key already follows the link).
    40 hex digits: a hash of LEGACY_HASH_LENGTH was made the old way (see Store.known_entries).
    """
    return hashlib.blake2b(_utf8(_SEP.join((title, summary))), digest_size=20).hexdigest()


# The length of the hashes stored before `entry_hash` (SHA-256 of title, text, link and date).
LEGACY_HASH_LENGTH = 64


def is_article_url(url: str, not_articles: frozenset[str] = frozenset()) -> bool:
    """False for a site's root page and for the given non-article URLs (feed, site)."""
    parts = urlsplit(url)
    if parts.path in ("", "/") and not parts.query and not parts.fragment:
        return False
    return url not in not_articles


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _duplicates_warning(keys: list[str]) -> str:
    shown = ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "")
    if len(keys) == 1:
        return f"1 entry repeats the link or id of an earlier entry and was skipped: {shown}"
    return (
        f"{len(keys)} entries repeat the link or id of an earlier entry and were skipped: {shown}"
    )
