"""Parse stage: generated RSS/RDF/Atom/JSON feeds, identity, discovery, hostile XML, encodings."""

from __future__ import annotations

import json
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from monitor.htmltext import html_to_text
from monitor.parse import FeedParseError, HtmlPage, parse_feed
from monitor.records import FeedEntry, ParsedFeed

FEED_URL = "https://news.example.org/feeds/main.xml"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"


# ---------------------------------------------------------------- feed builders


def rss2(items: list[dict[str, str]], *, title: str = "Example News", extra: str = "") -> bytes:
    parts = []
    for item in items:
        fields = "".join(
            f"<{name}>{value}</{name}>" if not name.startswith("guid") else value
            for name, value in item.items()
        )
        parts.append(f"<item>{fields}</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/">\n'
        f"<channel><title>{title}</title><link>https://news.example.org/</link>{extra}\n"
        + "\n".join(parts)
        + "\n</channel></rss>\n"
    ).encode()


def guid(value: str, permalink: bool = False) -> str:
    return f'<guid isPermaLink="{"true" if permalink else "false"}">{value}</guid>'


def parsed(body: bytes, url: str = FEED_URL, content_type: str | None = None) -> ParsedFeed:
    result = parse_feed(body, url=url, content_type=content_type)
    assert isinstance(result, ParsedFeed), result
    return result


def one(feed: ParsedFeed) -> FeedEntry:
    assert len(feed.entries) == 1, feed.entries
    return feed.entries[0]


# ---------------------------------------------------------------- formats


def test_rss2_entry_fields_are_filled() -> None:
    when = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    body = rss2(
        [
            {
                "title": "  North &amp;amp; South\n   talks  resume ",
                "link": "https://News.Example.org/world/talks?utm_source=rss&amp;id=7#comments",
                "guid": guid("talks-7"),
                "description": escape("<p>First <b>para</b>.</p><p>Second&nbsp;para.</p>"),
                "dc:creator": "Anna Lee",
                "pubDate": "Sun, 01 Mar 2026 13:30:00 +0300",
            }
        ]
    )
    feed = parsed(body, content_type="application/rss+xml; charset=utf-8")
    assert feed.title == "Example News"
    assert feed.site_url == "https://news.example.org/"
    assert feed.warnings == ()
    entry = one(feed)
    assert entry.title == "North & South talks resume"
    assert entry.url == "https://news.example.org/world/talks?id=7"
    assert entry.key == entry.url
    assert entry.link == "https://News.Example.org/world/talks?utm_source=rss&id=7#comments"
    assert entry.guid == "talks-7"
    assert entry.summary == "First para.\nSecond para."
    assert entry.author == "Anna Lee"
    assert entry.published == when
    assert entry.published.tzinfo is not None
    assert entry.updated is None  # only pubDate: not silently copied into updated
    assert len(entry.entry_hash) == 40  # of title and text (monitor.entries.entry_hash)


def test_rss1_rdf_feed() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example.net/">
    <title>RDF news</title><link>https://rdf.example.net/</link>
    <items><rdf:Seq><rdf:li rdf:resource="https://rdf.example.net/a1"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://rdf.example.net/a1">
    <title>Budget passed</title>
    <link>https://rdf.example.net/a1?wt_mc=rss.beitrag</link>
    <description>The budget passed on Friday.</description>
    <dc:date>2026-02-27T18:05:00+01:00</dc:date>
    <dc:creator>Jan Novak</dc:creator>
  </item>
</rdf:RDF>"""
    feed = parsed(body, url="https://rdf.example.net/index.rdf")
    assert feed.title == "RDF news"
    entry = one(feed)
    assert entry.key == "https://rdf.example.net/a1"
    assert entry.summary == "The budget passed on Friday."
    assert entry.author == "Jan Novak"
    assert entry.updated == datetime(2026, 2, 27, 17, 5, tzinfo=UTC)


def test_atom_xml_base_relative_links_and_fullest_text() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example.com/blog/">
  <title type="html">Tom &amp;amp; Jerry&lt;br/&gt;blog</title>
  <link rel="alternate" href="/"/>
  <link rel="self" href="https://atom.example.com/blog/feed.atom"/>
  <entry xml:base="2026/">
    <title>Relative to entry base</title>
    <link rel="enclosure" href="podcast.mp3"/>
    <link rel="alternate" type="text/html" href="post-1.html"/>
    <id>tag:atom.example.com,2026:1</id>
    <published>2026-01-02T03:04:05-05:00</published>
    <updated>2026-01-03T00:00:00Z</updated>
    <author><name>Mia</name><email>mia@example.com</email></author>
    <summary>Short teaser.</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
      <p>The long body of the post.</p><ul><li>one</li><li>two</li></ul></div></content>
  </entry>
  <entry>
    <title>Relative to feed base</title>
    <link href="../other/post-2.html"/>
    <id>tag:atom.example.com,2026:2</id>
    <updated>2026-01-04T00:00:00Z</updated>
    <summary type="html">&lt;p&gt;Only a summary&lt;/p&gt;</summary>
  </entry>
</feed>"""
    feed = parsed(body, url="https://atom.example.com/feed")
    assert feed.title == "Tom & Jerry blog"
    first, second = feed.entries
    assert first.key == "https://atom.example.com/blog/2026/post-1.html"
    assert first.summary == "The long body of the post.\none\ntwo"
    assert first.author == "Mia"
    assert first.published == datetime(2026, 1, 2, 8, 4, 5, tzinfo=UTC)
    assert first.updated == datetime(2026, 1, 3, tzinfo=UTC)
    assert second.key == "https://atom.example.com/other/post-2.html"
    assert second.summary == "Only a summary"
    assert second.published is None


def jsonfeed(items: list[object], **feed: object) -> bytes:
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "JSON news", **feed}
    doc["items"] = items
    return json.dumps(doc).encode()


def test_json_feed_1_1() -> None:
    body = jsonfeed(
        [
            {
                "id": "j1",
                "url": "/posts/1?fbclid=abc",
                "title": "Caf&eacute; opens",
                "content_html": "<p>Hello</p><script>alert(1)</script><p>World</p>",
                "summary": "Hi",
                "date_published": "2026-04-01T12:00:00+02:00",
                "date_modified": "2026-04-01T13:00:00Z",
                "authors": [{"name": "Ada"}, {"name": "Bo"}],
            },
            {"id": 42, "content_text": "No link here.\n\nSecond line.", "date_published": "junk"},
            "not an object",
        ],
        home_page_url="https://json.example.com/",
    )
    feed = parsed(body, url="https://json.example.com/feed.json", content_type="application/json")
    assert feed.title == "JSON news"
    assert feed.site_url == "https://json.example.com/"
    first, second = feed.entries
    assert first.key == "https://json.example.com/posts/1"
    assert first.title == "Café opens"
    assert first.summary == "Hello\nWorld"
    assert first.author == "Ada, Bo"
    assert first.published == datetime(2026, 4, 1, 10, tzinfo=UTC)
    assert first.updated == datetime(2026, 4, 1, 13, tzinfo=UTC)
    assert second.key == "guid:42"
    assert second.url is None
    assert second.summary == "No link here.\nSecond line."
    assert second.published is None
    assert any("not objects" in w for w in feed.warnings)


def test_json_feed_1_0_author_and_feed_author_fallback() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "title": "Old",
            "author": {"name": "Feed Owner"},
            "items": [
                {"id": "a", "url": "https://j.example/a", "author": {"name": "Item Author"}},
                {"id": "b", "url": "https://j.example/b"},
            ],
        }
    ).encode()
    first, second = parsed(body, url="https://j.example/feed.json").entries
    assert first.author == "Item Author"
    assert second.author == "Feed Owner"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not valid JSON"),
        (b'{"status": "error", "message": "rate limited"}', "not a JSON Feed"),
    ],
)
def test_json_that_is_no_feed_raises(body: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse_feed(body, url="https://j.example/api", content_type="application/json")


# ---------------------------------------------------------------- identity


def test_entries_without_link_use_guid_then_hash() -> None:
    body = rss2(
        [
            {"title": "Has guid", "guid": guid("urn:uuid:1234")},
            {"title": "Bare", "description": "Only text"},
        ]
    )
    with_guid, bare = parsed(body).entries
    assert with_guid.key == "guid:urn:uuid:1234"
    assert with_guid.url is None and with_guid.link is None
    assert bare.key.startswith("hash:") and len(bare.key) == 5 + 40
    # Same content, same key on the next poll; other content, other key.
    assert parsed(body).entries[1].key == bare.key
    changed = rss2([{"title": "Has guid", "guid": guid("urn:uuid:1234")}, {"title": "Other"}])
    assert parsed(changed).entries[1].key != bare.key


def test_duplicate_guids_keep_the_first_and_warn() -> None:
    body = rss2(
        [
            {"title": "First", "guid": guid("same")},
            {"title": "Second", "guid": guid("same")},
            {"title": "Third", "guid": guid("same")},
            {"title": "Other", "guid": guid("other")},
        ]
    )
    feed = parsed(body)
    assert [e.title for e in feed.entries] == ["First", "Other"]
    assert len(feed.warnings) == 1
    assert "2 entries repeat" in feed.warnings[0] and "guid:same" in feed.warnings[0]


def test_same_link_in_one_feed_is_one_item() -> None:
    body = rss2(
        [
            {"title": "A", "link": "https://x.example/a?utm_medium=feed", "guid": guid("1")},
            {"title": "A again", "link": "https://X.example:443/a", "guid": guid("2")},
        ],
    )
    feed = parsed(body)
    assert [e.title for e in feed.entries] == ["A"]
    assert "1 entry repeats" in feed.warnings[0]


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = rss2(
        [
            {"title": "root-relative", "link": "/2026/03/story.html"},
            {"title": "dir-relative", "link": "../archive/old.html"},
            {"title": "protocol-relative", "link": "//cdn.example.net/x.html"},
        ]
    )
    keys = [e.key for e in parsed(body).entries]
    assert keys == [
        "https://news.example.org/2026/03/story.html",
        "https://news.example.org/archive/old.html",
        "https://cdn.example.net/x.html",
    ]


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "mailto:editor@example.org",
        "ftp://files.example.org/a.txt",
    ],
)
def test_non_http_links_are_never_urls(link: str) -> None:
    entry = one(parsed(rss2([{"title": "T", "link": escape(link), "guid": guid("g1")}])))
    assert entry.link is None and entry.url is None
    assert entry.key == "guid:g1"


def test_permalink_guid_is_the_link_but_a_plain_guid_is_not() -> None:
    body = rss2(
        [
            {"title": "perma", "guid": guid("https://news.example.org/p/1", permalink=True)},
            {"title": "not a url", "guid": "<guid>12345</guid>"},  # isPermaLink defaults true
        ]
    )
    perma, plain = parsed(body).entries
    assert perma.key == "https://news.example.org/p/1"
    assert plain.link is None and plain.key == "guid:12345"


def test_home_page_links_name_no_article() -> None:
    body = rss2(
        [
            {"title": "Ticker 1", "link": "https://news.example.org/", "guid": guid("t1")},
            {"title": "Ticker 2", "link": "https://news.example.org/", "guid": guid("t2")},
        ]
    )
    feed = parsed(body)
    assert [e.key for e in feed.entries] == ["guid:t1", "guid:t2"]
    assert all(e.url is None and e.link == "https://news.example.org/" for e in feed.entries)
    assert feed.warnings == ()


def test_post_anchors_on_one_page_stay_apart_but_navigation_anchors_do_not() -> None:
    body = rss2(
        [
            {"title": "Post 1", "link": "https://blog.example/2026/06/26.html#a080605"},
            {"title": "Post 2", "link": "https://blog.example/2026/06/26.html#a030658"},
            {"title": "Comments", "link": "https://blog.example/story.html#comments"},
            {"title": "Tracked", "link": "https://blog.example/story2.html#xtor=RSS-3208"},
        ]
    )
    keys = [e.key for e in parsed(body).entries]
    assert keys == [
        "https://blog.example/2026/06/26.html#a080605",
        "https://blog.example/2026/06/26.html#a030658",
        "https://blog.example/story.html",
        "https://blog.example/story2.html",
    ]


def test_entry_hash_notices_changes_and_only_changes() -> None:
    def entry(title: str, description: str = "Body") -> FeedEntry:
        item = {"title": title, "link": "https://x.example/a", "description": description}
        return one(parsed(rss2([item])))

    assert entry("T").entry_hash == entry("T").entry_hash
    assert entry("T").entry_hash != entry("T (updated)").entry_hash
    assert entry("T").entry_hash != entry("T", "Corrected body").entry_hash
    assert entry("T").key == entry("T (updated)").key


def test_dates_bad_future_and_offsets() -> None:
    future = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    body = rss2(
        [
            {"title": "bad", "guid": guid("1"), "pubDate": "the day after tomorrow"},
            {"title": "future", "guid": guid("2"), "pubDate": format_datetime(future)},
            {"title": "offset", "guid": guid("3"), "pubDate": "Tue, 10 Jun 2025 23:30:00 -0700"},
        ]
    )
    bad, far, offset = parsed(body).entries
    assert bad.published is None
    assert far.published == future  # kept as given, not clamped
    assert offset.published == datetime(2025, 6, 11, 6, 30, tzinfo=UTC)


# ---------------------------------------------------------------- HTML pages


def test_html_page_lists_its_feeds_best_first() -> None:
    page = b"""<!DOCTYPE html><html><head>
<base href="https://www.example.com/news/">
<link rel="stylesheet" href="/s.css">
<link rel="alternate" type="application/rss+xml" title="Comments" href="comments/feed/">
<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/1">
<link rel="alternate" hreflang="de" href="/de/">
<link rel="alternate" type="application/atom+xml" title="Main" href="feed.atom">
<link rel="alternate" type="application/feed+json" href="https://www.example.com/feed.json">
<link rel="alternate" type="application/rss+xml" href="javascript:void(0)">
</head><body><p>Hi</p></body></html>"""
    result = parse_feed(page, url="https://example.com/", content_type="text/html; charset=utf-8")
    assert isinstance(result, HtmlPage)
    assert result.alternates == (
        "https://www.example.com/news/feed.atom",
        "https://www.example.com/feed.json",
        "https://www.example.com/news/comments/feed/",
    )


def test_html_page_without_content_type_is_recognised() -> None:
    page = b'<html><head><link rel="alternate feed" type="application/rss+xml" href="/rss"></head>'
    result = parse_feed(page, url="http://site.example/index.php?page=1")
    assert result == HtmlPage(("http://site.example/rss",))


def test_html_page_without_feed_links_is_a_clear_error() -> None:
    page = b"<!DOCTYPE html><html><head><title>Shop</title></head><body>Buy</body></html>"
    with pytest.raises(FeedParseError, match=r"web page, not a feed.*announces no feed"):
        parse_feed(page, url="https://shop.example/", content_type="text/html")


# ---------------------------------------------------------------- hostile XML


def laughs(one_line: bool) -> bytes:
    decls = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    ]
    sep = "" if one_line else "\n"
    doctype = f"<!DOCTYPE rss [{sep}{sep.join(decls)}{sep}]>"
    return (
        f'<?xml version="1.0"?>{sep}{doctype}{sep}<rss version="2.0"><channel><title>&lol9;</title>'
        "<item><title>&lol9;</title><link>https://x.example/a</link></item></channel></rss>"
    ).encode()


def quadratic_blowup() -> bytes:
    big = "A" * 100_000
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "{big}">\n]>\n'
        '<rss version="2.0"><channel><item><title>' + "&a;" * 3000 + "</title>"
        "<link>https://x.example/a</link></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "body",
    [laughs(one_line=True), laughs(one_line=False), quadratic_blowup(),
     laughs(one_line=True).decode().encode("utf-16")],
    ids=["billion-laughs-one-line", "billion-laughs", "quadratic", "billion-laughs-utf16"],
)  # fmt: skip
def test_entity_expansion_is_defused(body: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        feed = parsed(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert peak < 20_000_000  # without defusing: ~60 MB (laughs) and ~600 MB (quadratic)
    entry = one(feed)
    assert "lol" * 100 not in entry.title and "A" * 1000 not in entry.title
    assert entry.key == "https://x.example/a"
    assert any("entities that were ignored" in w for w in feed.warnings)


class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        payload = b'<!ENTITY leak "NETWORK-LEAK">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    """A loopback HTTP server that records every request it gets."""
    _Recorder.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_external_entities_and_dtds_are_never_resolved(tmp_path: Path, recorder: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    docs = [
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>',
        f'<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file://{secret}">\n]>',
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{recorder}/entity">]>',
        f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{recorder}/param.dtd"> %p;]>',
        f'<!DOCTYPE rss SYSTEM "{recorder}/external.dtd">',
    ]
    for doctype in docs:
        body = (
            f'<?xml version="1.0"?>{doctype}<rss version="2.0"><channel><title>t &xxe;</title>'
            "<item><title>x &xxe; &leak;</title><description>&xxe;</description>"
            "<link>https://x.example/a</link></item></channel></rss>"
        ).encode()
        feed = parsed(body)
        entry = one(feed)
        text = f"{feed.title} {entry.title} {entry.summary}"
        assert "TOP-SECRET" not in text and "NETWORK-LEAK" not in text
        assert entry.key == "https://x.example/a"
    assert _Recorder.hits == []


def test_body_that_looks_like_a_path_or_url_is_not_opened(tmp_path: Path, recorder: str) -> None:
    local = tmp_path / "feed.xml"
    local.write_bytes(rss2([{"title": "From disk", "link": "https://x.example/disk"}]))
    for body in (str(local).encode(), f"{recorder}/feed.xml".encode()):
        feed = parsed(body)
        assert feed.entries == ()
    assert _Recorder.hits == []


# ---------------------------------------------------------------- encodings and damage


def test_utf8_bytes_labelled_latin1_are_read_as_utf8() -> None:
    body = rss2([{"title": "Café Zürich", "link": "https://x.example/c"}]).replace(
        b'encoding="utf-8"', b'encoding="ISO-8859-1"'
    )
    feed = parsed(body)
    assert one(feed).title == "Café Zürich"
    assert any("declares the ISO-8859-1 encoding but is UTF-8" in w for w in feed.warnings)


def test_declared_legacy_charsets_are_honoured() -> None:
    for charset, title in [("windows-1251", "Новости дня"), ("koi8-r", "Новости дня"),
                           ("iso-8859-1", "Élysée: réunion"), ("windows-1252", "Price: 5 €")]:  # fmt: skip
        text = rss2([{"title": title, "link": "https://x.example/t"}]).decode()
        body = text.replace('encoding="utf-8"', f'encoding="{charset}"').encode(charset)
        feed = parsed(body)
        assert one(feed).title == title, charset
        assert feed.warnings == ()


def test_http_charset_beats_missing_declaration_and_text_xml_means_see_the_prolog() -> None:
    text = rss2([{"title": "Señal débil", "link": "https://x.example/s"}]).decode()
    latin = text.replace(' encoding="utf-8"', "").encode("latin-1")
    assert one(parsed(latin, content_type="text/xml; charset=ISO-8859-1")).title == "Señal débil"
    # text/xml without a charset: the XML declaration decides (RFC 7303), no spurious warning.
    feed = parsed(text.encode(), content_type="text/xml")
    assert one(feed).title == "Señal débil" and feed.warnings == ()


def test_undeclared_cyrillic_is_detected() -> None:
    title = "Правительство утвердило новый бюджет на следующий год"
    text = rss2([{"title": title, "description": "Министерство финансов сообщило о росте"}])
    body = text.decode().replace(' encoding="utf-8"', "").encode("windows-1251")
    feed = parsed(body)
    assert one(feed).title == title
    assert any("not UTF-8; read as cp1251" in w for w in feed.warnings)


def test_utf8_with_a_stray_byte_stays_utf8() -> None:
    body = rss2([{"title": "Überblick über Änderungen in München", "guid": guid("1")}])
    broken = body.replace("Änderungen".encode(), b"\xc4nderungen")  # one latin-1 byte
    feed = parsed(broken)
    assert one(feed).title == "Überblick über \ufffdnderungen in München"
    assert any("invalid UTF-8 byte sequences" in w for w in feed.warnings)


def test_truncated_feed_yields_what_can_be_read() -> None:
    body = rss2(
        [
            {"title": "Complete one", "link": "https://x.example/1"},
            {"title": "Complete two", "link": "https://x.example/2"},
        ]
    )
    cut = body[: body.index(b"</item>", body.index(b"two")) + len(b"</item>")] + b"<item><tit"
    feed = parsed(cut)
    assert [e.title for e in feed.entries][:2] == ["Complete one", "Complete two"]
    assert any(re.search(r"not well-formed XML \(.+ at line \d+, column \d+\)", w)
               for w in feed.warnings)  # fmt: skip


def test_empty_and_non_feed_bodies_warn() -> None:
    assert parsed(b"").warnings == ("the feed is empty: the server sent no content",)
    assert parsed(b"   \n").entries == ()
    garbage = parsed(b"Service temporarily unavailable", content_type="text/plain")
    assert garbage.entries == ()
    assert any("no RSS, Atom or JSON Feed content" in w for w in garbage.warnings)


# ---------------------------------------------------------------- shared evaluation data


def _data_files(*parts: str) -> list[Path]:
    root = DATA.joinpath(*parts)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "LICENSE")


def _header_content_type(body: bytes) -> str | None:
    match = re.search(rb"Header:\s*Content-type:\s*([^\r\n]*)", body[:3000], re.IGNORECASE)
    return match.group(1).decode().strip() if match else None


needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared/data/feeds is absent")


@needs_data
@pytest.mark.parametrize("path", _data_files(), ids=lambda p: str(p.relative_to(DATA)))
def test_every_data_file_parses_without_raising(path: Path) -> None:
    body = path.read_bytes()
    if path.suffix == ".html":  # web pages without feed links: the documented error
        with pytest.raises(FeedParseError):
            parse_feed(body, url="https://pages.example/p.html", content_type="text/html")
        return
    feed = parse_feed(
        body, url="https://feeds.example/f.xml", content_type=_header_content_type(body)
    )
    assert isinstance(feed, ParsedFeed)
    assert len({e.key for e in feed.entries}) == len(feed.entries)
    if path.parent.name in ("real", "miniflux") and path.stat().st_size > 2000:
        assert feed.entries, "a real feed yields entries"


def _expectations() -> list[tuple[Path, str]]:
    found = []
    for path in _data_files("feedparser", "illformed") + _data_files("feedparser", "encoding"):
        match = re.search(rb"Expect:\s*([^\r\n]*)", path.read_bytes()[:3000])
        if match:
            found.append((path, match.group(1).decode("latin-1").strip()))
    return found


@needs_data
@pytest.mark.parametrize(
    ("path", "expect"), _expectations(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_feedparser_cases_meet_their_stated_expectation(path: Path, expect: str) -> None:
    """Each file's comment says what a parser should make of it; check what maps onto ours.

    "bozo" maps onto warnings, except for the bozo_http_* files that are bozo only for
    their HTTP label (text/plain, or text/xml read as US-ASCII by RFC 3023): labels
    carry no information here. Expected values are compared for well-formed files
    only: for damaged ones they record feedparser's windows-1252 fallback, which
    ``feedcharset`` deliberately improves on (UTF-8 with a stray byte stays UTF-8).
    """
    body = path.read_bytes()
    feed = parsed(body, url="http://feeds.example/f.xml", content_type=_header_content_type(body))
    well_formed = bool(re.match(r"not bozo\b", expect))
    if well_formed:
        assert feed.warnings == (), feed.warnings
    elif expect.startswith("bozo") and not path.name.startswith("bozo_http_"):
        assert feed.warnings, "a damaged feed must say so"
    if "entries[0]" in expect:
        assert feed.entries, "the comment expects an entry"
    value = re.search(r"entries\[0\](?:\['description'\]|\.summary) == ('.*')", expect)
    if value and well_formed:
        expected = eval(value.group(1))  # a plain string literal from the file's own comment
        assert feed.entries[0].summary == html_to_text(expected)
    link = re.search(r"entries\[0\]\.link == '(.*)'", expect)
    if link:
        assert feed.entries[0].link == link.group(1)
    title = re.search(r"feed\['title'\] == ('.*')", expect)
    if title:
        assert feed.title == eval(title.group(1))


@needs_data
@pytest.mark.parametrize(
    ("name", "feed_title", "entry_title"),
    [
        ("encoding_WINDOWS-1251.xml", "iBash.Org.Ru", "Цитата #17703"),
        ("koi8r.xml", "Пример RSS ленты", "Первая новость"),
        ("encoding_ISO-8859-1.xml", "Golem.de", None),
        ("iso-8859-1.xml", "Café", None),
        ("windows-1252.xml", "Euro €", None),
        ("windows-1252-incorrect-prolog.xml", "Euro €", None),
        ("utf8-incorrect-prolog.xml", "테스트 피드", "Café"),
        ("invalid-prolog.xml", "테스트 피드", "Café"),
    ],
)
def test_miniflux_charsets_decode_correctly(
    name: str, feed_title: str, entry_title: str | None
) -> None:
    feed = parsed((DATA / "miniflux" / name).read_bytes(), url="https://m.example/f.xml")
    assert feed.title == feed_title
    if entry_title is not None:
        assert feed.entries[0].title == entry_title


@needs_data
def test_miniflux_latin1_umlauts_and_undeclared_french() -> None:
    golem = parsed((DATA / "miniflux" / "encoding_ISO-8859-1.xml").read_bytes(), url=FEED_URL)
    assert any("Porträt für" in e.title for e in golem.entries)
    french = parsed((DATA / "miniflux" / "no_encoding_ISO-8859-1.xml").read_bytes(), url=FEED_URL)
    assert any("La criminalité liée surtout à" in e.title for e in french.entries)
    assert not any("\ufffd" in e.title + e.summary for e in french.entries)
