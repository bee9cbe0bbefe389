"""Parse stage: fetched bytes -> ParsedFeed (or the feeds an HTML page announces).

RSS 0.9x/1.0/2.0 and Atom go through feedparser, always on bytes (a str could
make it open a URL or a local file) and after ``xmlsafe.defuse`` removed every
DOCTYPE (entity expansion, external entities). JSON Feed is read by
``jsonfeed``. Pure code: no network, no clock.
"""

from __future__ import annotations

import html
import io
import xml.sax
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor import feedcharset
from monitor.entries import RawEntry, RawFeed, build_parsed_feed
from monitor.feedcharset import split_content_type
from monitor.htmltext import collapse_ws, decode_html, find_feed_links, html_to_text, plain_text
from monitor.jsonfeed import JsonFeedError, looks_like_json, parse_json_feed
from monitor.records import ParsedFeed
from monitor.urls import absolute_http_url
from monitor.xmlsafe import defuse, scan_prolog, sniff_text, wide_encoding

__all__ = ["FeedParseError", "HtmlPage", "parse_feed"]

_FEED_ROOTS = frozenset({"rss", "feed", "rdf:rdf", "rdf", "channel"})
_HTML_ROOTS = frozenset({"html", "head", "body", "meta", "link", "title", "script", "div"})
_HTML_MEDIA = frozenset({"text/html", "application/xhtml+xml"})
_MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})


class FeedParseError(Exception):
    """The document is no feed and names none (e.g. an HTML page without feed links)."""


@dataclass(frozen=True)
class HtmlPage:
    """The URL was a web page; these are the feeds it announces, best first."""

    alternates: tuple[str, ...]


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed | HtmlPage:
    """Read a feed from fetched bytes.

    ``url`` is the address the bytes came from (after redirects): relative links
    resolve against it. Returns the feeds announced by an HTML page as
    ``HtmlPage``; raises FeedParseError when the document is not a feed and
    names none. A damaged feed gives what could be read plus ``warnings``.
    """
    media, charset = split_content_type(content_type)
    first = _first_significant_byte(body)
    if not first:
        return ParsedFeed(None, None, (), ("the feed is empty: the server sent no content",))
    if first == b"{" or (first != b"<" and looks_like_json(body, content_type)):
        try:
            return build_parsed_feed(parse_json_feed(body, url=url, charset=charset), url)
        except JsonFeedError as error:
            raise FeedParseError(f"{url} is not a feed: {error}") from None
    root = scan_prolog(sniff_text(body)).root
    if _is_html(root, media):
        return _html_page(body, url, charset)
    return build_parsed_feed(_parse_xml(body, url, content_type), url)


def _is_html(root: str | None, media: str | None) -> bool:
    if root == "html":
        return True
    return root not in _FEED_ROOTS and (media in _HTML_MEDIA or root in _HTML_ROOTS)


def _html_page(body: bytes, url: str, charset: str | None) -> HtmlPage:
    alternates = find_feed_links(decode_html(body, charset), url)
    if not alternates:
        raise FeedParseError(
            f"{url} is a web page, not a feed, and it announces no feed "
            '(no <link rel="alternate"> of type RSS, Atom or JSON Feed)'
        )
    return HtmlPage(alternates)


def _parse_xml(body: bytes, url: str, content_type: str | None) -> RawFeed:
    defused = defuse(body)
    charset = feedcharset.decide(defused.body, content_type)
    # A BytesIO, never bytes or str: feedparser treats a str as a URL or file name.
    result = feedparser.parse(
        io.BytesIO(charset.body),
        response_headers=charset.headers,
        resolve_relative_uris=False,
        sanitize_html=False,  # the text is extracted by html_to_text, which drops scripts
    )
    warnings = []
    if defused.dropped_entities:
        warnings.append(
            f"the feed declares {defused.dropped_entities} XML entities that were ignored "
            "for safety (external, nested or large entities)"
        )
    if charset.warning:
        warnings.append(charset.warning)
    exc = result.get("bozo_exception")
    # After a relabelling feedparser complains about the very override it was told to make.
    relabelled = charset.warning and isinstance(exc, feedparser.CharacterEncodingOverride)
    if result.get("bozo") and exc is not None and not relabelled:
        warnings.append(explain_bozo(exc))
    feed = result.get("feed", {})
    found = result.get("entries", [])
    entries = [_raw_entry(entry, url) for entry in found if _carries_something(entry)]
    if len(entries) < len(found):
        warnings.append(_empty_entries_warning(len(found) - len(entries)))
    title = _detail_text(feed.get("title_detail"), feed.get("title"))
    if not result.get("version") and not entries and not title:
        warnings.append("no RSS, Atom or JSON Feed content was found in the document")
    self_links = [link.get("href") for link in feed.get("links", []) if link.get("rel") == "self"]
    return RawFeed(
        title=title or None,
        site_url=absolute_http_url(feed.get("link"), url),
        entries=entries,
        warnings=warnings,
        not_articles=[u for u in (absolute_http_url(h, url) for h in self_links) if u],
    )


def explain_bozo(exc: BaseException) -> str:
    """feedparser's complaint about a feed, in words a feed's owner would understand."""
    if isinstance(exc, xml.sax.SAXParseException):
        where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        return (
            f"the feed is not well-formed XML ({exc.getMessage()} at {where}); "
            "what could be read was read leniently"
        )
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"the feed's character encoding is mislabelled: {exc}"
    if isinstance(exc, feedparser.CharacterEncodingUnknown):
        return f"the feed's character encoding could not be determined ({exc}); text may be garbled"
    if isinstance(exc, feedparser.NonXMLContentType):
        return f"the server does not label the feed as XML ({exc})"
    if isinstance(exc, feedparser.UndeclaredNamespace):
        return f"the feed uses an undeclared XML namespace prefix ({exc})"
    return f"the feed could not be read cleanly ({type(exc).__name__}: {exc})"


def _first_significant_byte(body: bytes) -> bytes:
    if wide_encoding(body)[0]:
        return b"<"  # UTF-16/32: only XML is sent that way
    return body.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c")[:1]


def _carries_something(entry: Any) -> bool:
    """A title, a link, some content or an id. An entry with none of them (the half item a
    truncated feed ends with) would be stored as a blank item nothing can ever recognise again."""
    if any(str(entry.get(key) or "").strip() for key in ("title", "link", "id", "summary")):
        return True
    return any(str(part.get("value") or "").strip() for part in entry.get("content", [])) or any(
        link.get("href") for link in entry.get("links", [])
    )


def _empty_entries_warning(count: int) -> str:
    if count == 1:
        return "1 entry has no title, link, content or id and was skipped"
    return f"{count} entries have no title, link, content or id and were skipped"


def _raw_entry(entry: Any, feed_url: str) -> RawEntry:
    guid = collapse_ws(entry.get("id") or "") or None
    texts = [_detail_text(item, None, one_line=False) for item in entry.get("content", [])]
    texts.append(_detail_text(entry.get("summary_detail"), entry.get("summary"), one_line=False))
    return RawEntry(
        title=_detail_text(entry.get("title_detail"), entry.get("title")),
        texts=texts,
        links=_links(entry, feed_url),
        guid=guid,
        author=_author(entry),
        published=_to_datetime(entry.get("published_parsed")),
        # Asked with "in": .get("updated_parsed") silently falls back to published.
        updated=_to_datetime(entry["updated_parsed"]) if "updated_parsed" in entry else None,
    )


def _links(entry: Any, feed_url: str) -> list[str]:
    candidates: list[str] = []
    link = entry.get("link")
    # feedparser turns a permalink guid into the link; a guid that is no URL is no link.
    if link and not (entry.get("guidislink") and absolute_http_url(entry.get("id")) is None):
        candidates.append(link)
    for item in entry.get("links", []):
        if item.get("rel", "alternate") == "alternate" and item.get("href"):
            candidates.append(item["href"])
    # feedparser resolves an empty href to the document's base: that is no article.
    detail = entry.get("title_detail") or entry.get("summary_detail") or {}
    document = detail.get("base") or None
    resolved: list[str] = []
    for candidate in candidates:
        absolute = absolute_http_url(candidate, feed_url)
        if absolute and absolute != document and absolute not in resolved:
            resolved.append(absolute)
    return resolved


def _detail_text(detail: Any, fallback: str | None, *, one_line: bool = True) -> str:
    """Plain text of a feedparser text construct (``{"type": ..., "value": ...}``)."""
    value = detail.get("value") if detail else fallback
    if not value:
        return ""
    media = (detail.get("type") or "") if detail else "text/html"
    text = html_to_text(value) if media in _MARKUP_TYPES else plain_text(html.unescape(value))
    return collapse_ws(text) if one_line else text


def _author(entry: Any) -> str | None:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author") or ""
    return collapse_ws(html.unescape(name)) or None


def _to_datetime(value: Any) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime; None if absent or impossible."""
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
