"""JSON Feed 1.0 / 1.1 (jsonfeed.org), which feedparser does not read."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from monitor.entries import RawEntry, RawFeed
from monitor.htmltext import collapse_ws, html_to_text, plain_text
from monitor.urls import absolute_http_url

VERSION_PREFIX = "https://jsonfeed.org/version/"


class JsonFeedError(ValueError):
    """The document is not a JSON Feed at all."""


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    if media.endswith(("/json", "+json")):
        return True
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def parse_json_feed(body: bytes, *, url: str, charset: str | None = None) -> RawFeed:
    text, warnings = _decode(body, charset)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise JsonFeedError(f"not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise JsonFeedError("JSON document without an 'items' list: not a JSON Feed")
    version = doc.get("version")
    if not (isinstance(version, str) and version.startswith(VERSION_PREFIX)):
        warnings.append("JSON Feed without a jsonfeed.org 'version'; read it as JSON Feed 1.1")
    base = absolute_http_url(_str(doc.get("feed_url")), url) or url
    author = _author(doc)  # items without an author inherit the feed's
    entries = [_entry(item, base, author) for item in doc["items"] if isinstance(item, dict)]
    skipped = len(doc["items"]) - len(entries)
    if skipped:
        warnings.append(f"{skipped} JSON Feed items are not objects and were skipped")
    return RawFeed(
        title=_title(doc.get("title")),
        site_url=absolute_http_url(_str(doc.get("home_page_url")), base),
        entries=entries,
        warnings=warnings,
    )


def _decode(body: bytes, charset: str | None) -> tuple[str, list[str]]:
    try:
        return body.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    if charset:
        try:
            return body.decode(charset), []
        except (LookupError, UnicodeDecodeError):
            pass
    warning = "the JSON feed is not valid UTF-8; unreadable bytes were replaced"
    return body.decode("utf-8", errors="replace"), [warning]


def _entry(item: dict[str, Any], base: str, feed_author: str | None) -> RawEntry:
    links = [
        link
        for link in (
            absolute_http_url(_str(item.get("url")), base),
            absolute_http_url(_str(item.get("external_url")), base),
        )
        if link
    ]
    texts = [
        html_to_text(_str(item.get("content_html")) or ""),
        plain_text(_str(item.get("content_text")) or ""),
        plain_text(_str(item.get("summary")) or ""),
    ]
    guid = item.get("id")
    guid_text = str(guid).strip() if isinstance(guid, str | int | float) else ""
    return RawEntry(
        title=_title(item.get("title")) or "",
        texts=texts,
        links=links,
        guid=_clean(guid_text) or None,
        author=_author(item) or feed_author,
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
    )


def _author(item: dict[str, Any]) -> str | None:
    """Names of 1.1 ``authors``, else of the 1.0 ``author`` object."""
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]
    names = [_str(a.get("name")) for a in authors if isinstance(a, dict)]
    joined = ", ".join(collapse_ws(n) for n in names if n and n.strip())
    return joined or None


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # RFC 3339 demands an offset; assume UTC
    return parsed.astimezone(UTC)


def _title(value: object) -> str | None:
    text = _str(value)
    return collapse_ws(html.unescape(text)) if text else None


def _str(value: object) -> str | None:
    return _clean(value) if isinstance(value, str) else None


def _clean(text: str) -> str:
    """Lone surrogates (valid JSON escapes, invalid text) become U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
