"""Small HTML readers: markup to plain text, and feed links announced by a page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from monitor.urls import absolute_http_url

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl",
        "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td",
        "th", "tr", "ul",
    }
)  # fmt: skip
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg", "math"})

FEED_TYPES = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "application/feed+json": "json",
    "application/json+feed": "json",  # seen in the wild before the 1.1 media type
    "application/x.atom+xml": "atom",
    "application/x-atom+xml": "atom",
}
_COMMENTS = re.compile(r"comment", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)


def collapse_ws(text: str) -> str:
    """Runs of whitespace (non-breaking spaces included) become one space."""
    return " ".join(text.split())


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment: one line per paragraph or line break."""
    if "<" not in markup and "&" not in markup:
        return plain_text(markup)
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    return plain_text("".join(parser.chunks))


def plain_text(text: str) -> str:
    """Whitespace collapsed within lines; blank lines dropped; lines kept."""
    lines = (collapse_ws(line) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # Inline whitespace (including newlines in the source) is not a line break.
            self.chunks.append(data.replace("\n", " ").replace("\r", " "))


def decode_html(body: bytes, charset: str | None) -> str:
    """Decode an HTML page: declared charset, else BOM, else <meta charset>, else UTF-8."""
    candidates = [charset]
    if body.startswith(b"\xef\xbb\xbf"):
        candidates.append("utf-8-sig")
    elif body.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates.append("utf-16")
    meta = _META_CHARSET.search(body[:16384])
    if meta:
        candidates.append(meta.group(1).decode("ascii"))
    candidates.append("utf-8")
    for name in candidates:
        if not name:
            continue
        try:
            return body.decode(name, errors="replace")
        except LookupError:
            continue
    return body.decode("utf-8", errors="replace")  # pragma: no cover - utf-8 always exists


def find_feed_links(page: str, page_url: str) -> tuple[str, ...]:
    """Absolute URLs of ``<link rel="alternate">`` feeds, best first.

    Main feeds come before comment feeds; otherwise the page's own order is kept.
    """
    finder = _FeedLinkFinder()
    finder.feed(page)
    finder.close()
    base = absolute_http_url(finder.base, page_url) or page_url
    ranked: list[tuple[bool, int, str]] = []
    seen: set[str] = set()
    for order, (href, title) in enumerate(finder.links):
        url = absolute_http_url(href, base)
        if url is None or url in seen:
            continue
        seen.add(url)
        is_comments = bool(_COMMENTS.search(title) or _COMMENTS.search(url))
        ranked.append((is_comments, order, url))
    return tuple(url for _, _, url in sorted(ranked))


class _FeedLinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (href, title)
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "link" and values.get("href"):
            rels = values.get("rel", "").lower().split()
            media = values.get("type", "").split(";")[0].strip().lower()
            if "alternate" in rels and media in FEED_TYPES:
                self.links.append((values["href"], values.get("title", "")))

    handle_startendtag = handle_starttag
