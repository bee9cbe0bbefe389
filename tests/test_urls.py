"""URL canonicalization: what merges (same page) and what must not (different articles)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monitor.urls import absolute_http_url, canonical_url, host_of


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://News.Example.COM:80/a/./b/../c", "http://news.example.com/a/c"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=5", "https://example.com/a?id=5"),
        ("https://example.com/a?fbclid=1&gclid=2&mc_cid=3&_ga=4&yclid=5", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=x&at_medium=y&ns_source=z", "https://example.com/a"),
        ("https://example.com/a?wt_mc=rss.beitrag&page=2", "https://example.com/a?page=2"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/a%7eb/%2fc?q=%7e", "https://example.com/a~b/%2Fc?q=~"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://пример.рф/новости", "https://xn--e1afmkfd.xn--p1ai/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8"),
        ("  https://example.com/x\n", "https://example.com/x"),
        ("https://example.com/?", "https://example.com/"),
    ],
)  # fmt: skip
def test_canonical_forms(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/article.php?id=1",
        "https://example.com/article.php?gallery=2",
        "https://example.com/news?ref=main&session=3&keyword=x&source=y",
        "https://example.com/a?b=2&a=1",  # order kept: the server may care
        "https://example.com/a?flag",
    ],
)
def test_parameters_that_select_content_are_kept(url: str) -> None:
    assert canonical_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "javascript:alert(1)",
        "data:text/html,hi",
        "mailto:a@b.c",
        "ftp://example.com/f",
        "file:///etc/passwd",
        "http:///no-host",
        "http://example.com:99999/bad-port",
        "relative/path",
    ],
)
def test_non_http_urls_give_none(url: str | None) -> None:
    assert canonical_url(url) is None
    assert host_of(url) is None


def test_relative_urls_resolve_against_base() -> None:
    base = "https://example.com/news/2026/feed.xml?x=1"
    assert canonical_url("story.html", base) == "https://example.com/news/2026/story.html"
    assert canonical_url("/top", base) == "https://example.com/top"
    assert canonical_url("../old", base) == "https://example.com/news/old"
    assert canonical_url("//cdn.example.net/p", base) == "https://cdn.example.net/p"
    assert canonical_url("javascript:void(0)", base) is None
    assert absolute_http_url("?page=2", base) == "https://example.com/news/2026/feed.xml?page=2"


def test_keep_anchor_keeps_post_anchors_only() -> None:
    page = "https://blog.example/2026/06/26.html"
    assert canonical_url(page + "#a080605", keep_anchor=True) == page + "#a080605"
    for junk in ("#comments", "#respond", "#more-123", "#xtor=RSS-3", "#utm_source=x", "#"):
        assert canonical_url(page + junk, keep_anchor=True) == page


def test_host_of() -> None:
    assert host_of("https://WWW.Example.com:8080/x") == "www.example.com"
    assert host_of("http://пример.рф/") == "xn--e1afmkfd.xn--p1ai"
    assert host_of("http://[::1]:8000/") == "::1"


urls = st.builds(
    lambda scheme, host, path, query, frag: f"{scheme}://{host}/{path}?{query}#{frag}",
    st.sampled_from(["http", "HTTPS", "https"]),
    st.sampled_from(["Example.com", "example.com:443", "xn--e1afmkfd.xn--p1ai", "пример.рф"]),
    st.text(alphabet="abc/.%20~é ", max_size=20),
    st.text(alphabet="ab=&%_utm", max_size=20),
    st.text(alphabet="ab=-", max_size=5),
)


@given(urls, st.booleans())
@example("http://Example.com/?=utm_#", False)  # a value, not a parameter name
def test_canonicalization_is_idempotent(url: str, keep_anchor: bool) -> None:
    once = canonical_url(url, keep_anchor=keep_anchor)
    assert once is not None
    assert canonical_url(once, keep_anchor=keep_anchor) == once
    # no tracking parameter survives; "utm_" as a value (`?=utm_`, `?q=utm_x`) is the page's own
    query = urlsplit(once).query
    names = [name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)]
    assert not any(name.startswith("utm_") for name in names)
