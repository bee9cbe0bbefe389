"""Extract an article page: main text without chrome or comments, plus its metadata.

Pure CPU work, no I/O: the pipeline runs ``extract_page`` in a process pool, so it is a top-level
function that takes and returns small picklable values and never raises for a bad page. The pool
leaves language identification to the daemon (``detect=False``): see ``monitor.language``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import charset_normalizer
import trafilatura
import trafilatura.xpaths
from htmldate import find_date
from lxml.etree import XPath
from lxml.html import HtmlElement
from trafilatura.external import SANITIZED_XPATH
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import (
    examine_meta,
    extract_meta_json,
    extract_metainfo,
    extract_sitename,
    extract_title,
)
from trafilatura.settings import Document
from trafilatura.utils import load_html
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS

from monitor import xpathfast
from monitor.extracted import ExtractedPage

__all__ = ["ExtractedPage", "decode_html", "detect_language", "extract_page"]

MAX_HTML_BYTES = 5_000_000  # trafilatura's cost grows with the page; real articles are far smaller
# Real article pages have a few thousand elements; trafilatura needs ~0.1 ms per element, worse
# than linear on some layouts, so a page is cut to its first MAX_ELEMENTS (the article comes early).
MAX_ELEMENTS = 20_000
MAX_TEXT_CHARS = 300_000  # several times a long read; anything longer is not one article
MIN_TEXT_CHARS = 20  # less is a caption or a button, not an article: better use the feed's text
# trafilatura's fast mode skips the comparison with readability and jusText, which costs 40 % of
# the extraction and changes the result only where its own text came out short (one dev page in
# 91, at 229 characters): below this many characters the full cascade runs as well.
FULL_CASCADE_BELOW_CHARS = 1000
CHARSET_SNIFF_BYTES = 4096  # where <meta charset> must appear (the HTML spec says 1024; be lenient)
DETECT_SAMPLE_BYTES = 200_000  # charset detection on a prefix: enough evidence, bounded cost

# Content types that are never an HTML page, whatever the body looks like.
_NOT_HTML = re.compile(r"^(image|audio|video|font)/|^application/(pdf|zip|gzip)")
_CONTROL_BYTES = bytes(range(9)) + bytes(range(14, 32))
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Browsers read these labels as windows-1252, a superset that maps 0x80-0x9F to characters.
_LATIN1_LABELS = {"iso-8859-1", "latin-1", "latin1", "ascii", "us-ascii", "iso8859-1", "l1"}
_WORD = re.compile(r"\w+")
_TITLE_SEP = re.compile(r"\s[|\-–—:·•»]\s")

# Meta tags carrying the publication time, most specific first.
_DATE_XPATH = (
    '//meta[@property="article:published_time"]/@content',
    '//meta[@name="article:published_time"]/@content',
    '//meta[@itemprop="datePublished"]/@content',
    '//meta[@property="og:published_time"]/@content',
    '//meta[@name="pubdate" or @name="publishdate" or @name="publish-date"]/@content',
    '//meta[@name="parsely-pub-date" or @name="sailthru.date"]/@content',
    '//meta[@name="dc.date.issued" or @name="DC.date.issued" or @name="dcterms.created"]/@content',
    '//time[@itemprop="datePublished"]/@datetime',
)

log = logging.getLogger(__name__)

# trafilatura's boilerplate XPaths run as Python twins with the same result, about a quarter of
# the extraction's CPU less on the dev pages (monitor.xpathfast says why and what it covers).
XPATH_TWINS = xpathfast.install(trafilatura.xpaths)


def extract_page(
    html: bytes, url: str, content_type: str | None = None, *, detect: bool = True
) -> ExtractedPage:
    """Extract the article of one fetched page; every failure becomes ``error``, never raises.

    ``detect=False`` leaves ``language`` None and ``html_lang`` set, for the caller to run
    ``detect_language(page.text, page.html_lang)`` where the language model is loaded.
    """
    try:
        return _extract(html, url, content_type, detect)
    except RecursionError:
        return _failed("extraction failed: markup nested too deeply")
    except Exception as exc:  # a hostile page must not kill a pool worker
        log.warning("extraction failed for %s: %r", url, exc)
        return _failed(f"extraction failed: {type(exc).__name__}: {exc}"[:200])


def _failed(reason: str) -> ExtractedPage:
    return ExtractedPage(None, "", None, None, None, None, reason)


def _extract(html: bytes, url: str, content_type: str | None, detect: bool) -> ExtractedPage:
    refusal = _refuse(html, content_type)
    if refusal:
        return _failed(refusal)
    tree = load_html(decode_html(html[:MAX_HTML_BYTES], content_type))
    if tree is None or len(tree) == 0:
        return _failed("not an HTML page")
    _truncate(tree, MAX_ELEMENTS)
    meta = _metadata(tree, url)
    published = _published(tree) or _htmldate(tree, url)
    html_lang = _html_lang(tree)
    text = _cap(_strip_title_line(_main_text(tree, url), meta.title), MAX_TEXT_CHARS)
    author = _byline(tree) if meta.byline_wanted else meta.author  # last: prunes the tree
    error = None
    if len(text) < MIN_TEXT_CHARS:
        error = f"too little text ({len(text)} characters)" if text else "no article text found"
        text = ""
    return ExtractedPage(
        title=meta.title,
        text=text,
        author=author,
        published=published,
        site_name=meta.site_name,
        language=detect_language(text, html_lang) if detect else None,
        error=error,
        html_lang=html_lang,
    )


def _main_text(tree: HtmlElement, url: str) -> str:
    # Measured on real pages: precision mode has the best F1 of trafilatura's modes (see
    # bench/extraction.py), and leftover chrome is what makes topics match the wrong articles.
    doc = _bare_extraction(tree, url, favor_precision=True, fast=True)
    if doc is None or _wants_full_cascade(doc):
        doc = _bare_extraction(tree, url, favor_precision=True, fast=False)
    text = (doc.text or "") if doc else ""
    if not text:
        # Precision mode can prune everything off an unusual layout; the balanced mode may not.
        doc = _bare_extraction(tree, url, favor_precision=False, fast=False)
        text = (doc.text or "") if doc else ""
    return text.strip()


def _wants_full_cascade(doc: Document) -> bool:
    """Could readability or jusText beat the fast result? Only where trafilatura itself would
    consult them: a short text, a body without paragraph text or made of tables, or one that
    still holds chrome elements (trafilatura.external.compare_extraction's own triggers)."""
    body = doc.body
    if len(doc.text or "") < FULL_CASCADE_BELOW_CHARS or body is None:
        return True
    if not body.xpath(".//p//text()") or len(body.findall(".//table")) > len(body.findall(".//p")):
        return True
    return bool(body.xpath(SANITIZED_XPATH))


def _bare_extraction(
    tree: HtmlElement, url: str, *, favor_precision: bool, fast: bool
) -> Document | None:
    doc = trafilatura.bare_extraction(
        tree,  # bare_extraction works on a copy, so the tree stays intact for the rest
        url=url or None,
        include_comments=False,
        favor_precision=favor_precision,
        fast=fast,
    )
    return doc if isinstance(doc, Document) else None


def _refuse(html: bytes, content_type: str | None) -> str | None:
    """A reason not to parse the body at all, or None."""
    if not html.strip():
        return "empty page"
    mime = (content_type or "").split(";")[0].strip().lower()
    if _NOT_HTML.match(mime):
        return f"not an HTML page ({mime})"
    if _looks_binary(html[:4096]):
        return "binary content, not HTML"
    return None


def _looks_binary(head: bytes) -> bool:
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return False
    if b"\x00" in head:
        return True
    controls = sum(head.count(b) for b in _CONTROL_BYTES)
    return controls > len(head) * 0.05


def _truncate(tree: HtmlElement, limit: int) -> None:
    """Keep only the first ``limit`` elements of the tree, in document order."""
    # Counted in C (elements, comments, PIs: what iter() yields) rather than walking in Python.
    if tree.xpath("count(//*|//comment()|//processing-instruction())") < limit:
        return
    last = None
    for count, element in enumerate(tree.iter()):
        if count >= limit:
            last = element
            break
    if last is None:
        return
    for child in list(last):
        last.remove(child)
    node: HtmlElement = last
    while (parent := node.getparent()) is not None:
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)
        node = parent


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut if cut > 0 else limit]


# --- charset -------------------------------------------------------------------------------


def decode_html(html: bytes, content_type: str | None = None) -> str:
    """Bytes to text: BOM, then the HTTP charset, then ``<meta charset>``, then detection.

    A declared single-byte charset loses to valid UTF-8: UTF-8 served under a default
    ISO-8859-1 header is the commonest mislabelling, and real text in a legacy charset is
    practically never valid UTF-8 by accident.
    """
    for bom, bom_codec in _BOMS:
        if html.startswith(bom):
            return html[len(bom) :].decode(bom_codec, errors="replace")
    for declared in (_http_charset(content_type), _meta_charset(html)):
        codec = _codec(declared)
        if codec is None:
            continue
        if codec != "utf-8" and _is_utf8(html):
            return html.decode("utf-8")
        try:
            return html.decode(codec)
        except UnicodeDecodeError:
            continue  # the declaration is wrong; try the next source of truth
    return _detect_and_decode(html)


def _http_charset(content_type: str | None) -> str | None:
    match = _HTTP_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _meta_charset(html: bytes) -> str | None:
    match = _META_CHARSET.search(html[:CHARSET_SNIFF_BYTES])
    if not match:
        return None
    name = match.group(1).decode("ascii", errors="replace")
    # The meta tag was readable as ASCII, so the page cannot really be UTF-16 (HTML spec rule).
    return "utf-8" if name.lower().startswith("utf-16") else name


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    if label.lower() in _LATIN1_LABELS:
        return "cp1252"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return "utf-8" if name == "utf-8" else name


def _is_utf8(html: bytes) -> bool:
    if html.isascii():
        return False  # nothing to tell: any ASCII-compatible charset reads it the same
    try:
        html.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _detect_and_decode(html: bytes) -> str:
    try:
        return html.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(html[:DETECT_SAMPLE_BYTES]).best()
    codec = _codec(best.encoding) if best else None
    return html.decode(codec or "cp1252", errors="replace")


# --- metadata -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Meta:
    title: str | None
    author: str | None
    site_name: str | None
    byline_wanted: bool  # no author in meta tags or JSON-LD (even a blank one): see _byline


def _metadata(tree: HtmlElement, url: str) -> _Meta:
    """Title, author and site name with trafilatura's own readers of meta tags and JSON-LD;
    an author missing there is left to ``_byline`` (the visible byline).

    Not ``trafilatura.extract_metadata``: it also collects categories, tags and the licence and
    always runs htmldate, about 7 ms a page (a third of the text extraction) for unused fields.
    """
    doc = examine_meta(tree)
    if doc.author and " " not in doc.author:
        doc.author = None  # as trafilatura does: a single word is usually a handle, not a name
    try:
        doc = extract_meta_json(tree, doc)
    except Exception as exc:  # trafilatura guards this call too: JSON-LD in the wild is messy
        log.debug("JSON-LD metadata unreadable: %r", exc)
    site = _clean((doc.sitename or extract_sitename(tree) or "").lstrip("@"))  # "@handle"
    return _Meta(
        title=_clean(doc.title or extract_title(tree)),
        author=_clean(doc.author),
        site_name=site or _hostname(url),
        byline_wanted=not doc.author,
    )


def _byline(tree: HtmlElement) -> str | None:
    """``trafilatura.metadata.extract_author`` (a visible byline), the same result cheaper.

    Destroys ``tree``: it prunes the tree in place where trafilatura prunes a deep copy. And a
    page none of whose attributes could satisfy trafilatura's author XPaths is not searched:
    on a page without a byline they cost ~10 ms, for nothing.
    """
    if not _may_have_byline(tree):
        return None
    prune_unwanted_nodes(tree, AUTHOR_DISCARD_XPATHS)
    author = extract_metainfo(tree, AUTHOR_XPATHS, len_limit=120)
    return _clean(normalize_authors(None, author) if author else None)


def _may_have_byline(tree: HtmlElement) -> bool:
    """False only if no element can match ``AUTHOR_XPATHS`` (trafilatura.xpaths). They test an
    element's own attributes, each test needing one of ``_BYLINE_WORDS`` in a value, or accept
    <author> elements and those with a child <rel> element (rel='me'): any of those is a maybe."""
    if not _BYLINE_WORDS_CURRENT:  # trafilatura changed its XPaths: this reading may be stale
        return True
    found = _BYLINE_ATTRIBUTES(tree)
    if not isinstance(found, list):
        return True
    values = [value for value in found if isinstance(value, str)]
    return len(values) < len(found) or _BYLINE_WORDS.search("\n".join(values)) is not None


# Every literal that a match of AUTHOR_XPATHS needs in an attribute ("byl" covers "byline").
_BYLINE_WORDS = re.compile(
    "author|Author|Byline|byl|BBL|username|screenname|writer|zuozhe|bianji|xiaobian|"
    "channel-name|submitted-by|posted-by|journalist-name"
)
# The attributes those XPaths test, and the two kinds of element they accept by name alone.
_BYLINE_ATTRIBUTES = XPath(
    "//@rel|//@id|//@class|//@itemprop|//@data-testid|//@data-component|//author|//rel",
    smart_strings=False,
)
# A digest of the trafilatura 2.3 AUTHOR_XPATHS that _BYLINE_WORDS was read from.
_BYLINE_WORDS_READ_FROM = "e7cdb233823cbb0a7eadad1211ccea04"


def _byline_words_current() -> bool:
    paths = "\n".join(xpath.path for xpath in AUTHOR_XPATHS)
    return hashlib.sha256(paths.encode()).hexdigest()[:32] == _BYLINE_WORDS_READ_FROM


_BYLINE_WORDS_CURRENT = _byline_words_current()


def _hostname(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


def _htmldate(tree: HtmlElement, url: str) -> datetime | None:
    """htmldate's reading of the page's markup (a date in the URL, ``<time>`` elements, elements
    classed as dates) when the page declares no date in its meta tags or JSON-LD.

    Not its extensive search of the visible text: that takes a date the article merely mentions
    ("the 1961 treaty, renewed in 2000" gives 2000-01-01), and a fresh report dated years back
    would never be alerted (``alert_max_age``). An undated article counts as new instead.
    """
    found = find_date(tree, url=url or None, original_date=True, extensive_search=False)
    return _parse_date(found) if isinstance(found, str) else None


def _clean(value: str | None) -> str | None:
    value = " ".join(value.split()) if value else None
    return value or None


def _html_lang(tree: HtmlElement) -> str | None:
    root = tree.getroottree().getroot()
    for value in (root.get("lang"), root.get("{http://www.w3.org/XML/1998/namespace}lang")):
        code = _primary_language(value)
        if code:
            return code
    return None


def _primary_language(value: str | None) -> str | None:
    code = (value or "").strip().replace("_", "-").split("-")[0].lower()
    return code if code.isalpha() and 2 <= len(code) <= 3 else None


def _published(tree: HtmlElement) -> datetime | None:
    """The publication time the page declares, with its time of day when it has one."""
    for xpath in _DATE_XPATH:
        for value in tree.xpath(xpath):
            when = _parse_date(str(value))
            if when:
                return when
    for value in _json_ld_dates(tree):
        when = _parse_date(value)
        if when:
            return when
    return None


def _json_ld_dates(tree: HtmlElement) -> Iterator[str]:
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "")
        except ValueError:
            continue
        yield from _find_key(data, "datePublished", depth=0)


def _find_key(data: Any, key: str, depth: int) -> Iterator[str]:
    if depth > 6:  # JSON-LD nests a few levels (@graph, mainEntity); junk may nest more
        return
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, str):
            yield value
        for item in data.values():
            yield from _find_key(item, key, depth + 1)
    elif isinstance(data, list):
        for item in data:
            yield from _find_key(item, key, depth + 1)


def _parse_date(value: str | None) -> datetime | None:
    """An ISO-8601 or RFC 2822 date (-time) as aware UTC; a time without zone is taken as UTC."""
    value = (value or "").strip()
    if not value:
        return None
    when = _iso_date(value)
    if when is None:
        try:  # some sites put an RFC 2822 date (as in RSS) into their meta tags
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _iso_date(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        pass
    try:  # a date followed by something fromisoformat does not take, e.g. "2019-11-19T13:03 EST"
        return datetime.combine(datetime.strptime(value[:10], "%Y-%m-%d").date(), time())
    except ValueError:
        return None


# --- text -----------------------------------------------------------------------------------


def _strip_title_line(text: str, title: str | None) -> str:
    """Drop a first line that repeats the headline: the title is kept in its own field.

    The page title often carries the site name ("Headline | Site", "Headline - Site"), so the
    line may equal any of the title's separated parts.
    """
    first, _, rest = text.partition("\n")
    line = _words(first)
    if not title or not line:
        return text
    if line == _words(title) or any(line == _words(part) for part in _TITLE_SEP.split(title)):
        return rest.lstrip()
    return text


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def detect_language(text: str, fallback: str | None = None) -> str | None:
    """``monitor.language.detect_language``, imported on first use: the extraction workers
    (``detect=False``) never load the language model."""
    from monitor.language import detect_language as detect

    return detect(text, fallback)
