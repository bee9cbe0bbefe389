"""Fetching through an HTTP forward proxy (`fetch.proxy`), against a real proxy on loopback.

The proxy knows host names the test machine cannot resolve (`news.example`, `feeds.example`), so a
fetch of such a name can only succeed through it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.clock import FakeClock
from monitor.config import ConfigError
from monitor.fetch import Fetcher
from monitor.records import FetchResult, FetchStatus
from tests.certs import self_signed
from tests.forward_proxy import ForwardProxy
from tests.newsroom import Newsroom
from tests.pipeline_helpers import START, make_config, one_pass, stored_items
from tests.test_fetch_lean import FEED, RawServer, ok

NAME = "news.example"


@pytest.fixture
def room() -> Iterator[Newsroom]:
    with Newsroom() as newsroom:
        yield newsroom


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy({NAME: "127.0.0.1", "feeds.example": "127.0.0.1"}) as running:
        yield running


def named(room: Newsroom, path: str) -> str:
    """The newsroom URL of `path` under the name only the proxy resolves."""
    return room.url(path).replace("127.0.0.1", NAME)


def fetch(url: str, **kw: object) -> tuple[FetchResult, bool]:
    """(the result, whether the lean path was on)."""
    guard = kw.pop("guard", None)

    async def go() -> tuple[FetchResult, bool]:
        async with Fetcher(clock=FakeClock(START), **kw) as f:  # type: ignore[arg-type]
            return await f.fetch(url, guard=guard), f._lean is not None  # type: ignore[arg-type]

    return asyncio.run(go())


def test_a_feed_is_fetched_through_the_proxy_and_polled_conditionally(
    room: Newsroom, proxy: ForwardProxy
) -> None:
    room.add_raw("/feed.xml", FEED, "application/rss+xml")
    url = named(room, "/feed.xml")

    async def go() -> tuple[FetchResult, FetchResult, bool]:
        async with Fetcher(clock=FakeClock(START), proxy=proxy.url) as f:
            first = await f.fetch(url)
            return first, await f.fetch(url, etag=first.etag), f._lean is not None

    first, again, lean = asyncio.run(go())
    assert first.status is FetchStatus.OK and first.body == FEED and not lean
    assert again.status is FetchStatus.NOT_MODIFIED
    assert proxy.lines() == [f"GET {url} HTTP/1.1"] * 2
    assert room.requests_for("/feed.xml")[1].headers["if-none-match"] == first.etag


def test_without_the_proxy_the_name_does_not_resolve(room: Newsroom) -> None:
    room.add_raw("/feed.xml", FEED)
    result, lean = fetch(named(room, "/feed.xml"))
    assert result.status is FetchStatus.ERROR and lean


def test_loopback_and_no_proxy_hosts_are_reached_directly(
    room: Newsroom, proxy: ForwardProxy
) -> None:
    room.add_raw("/feed.xml", FEED)
    direct, _ = fetch(room.url("/feed.xml"), proxy=proxy.url)
    assert direct.body == FEED and proxy.lines() == []
    # "example" covers news.example: without the proxy that name cannot be reached at all
    bypassed, _ = fetch(named(room, "/feed.xml"), proxy=proxy.url, no_proxy=["example"])
    assert bypassed.status is FetchStatus.ERROR and proxy.lines() == []
    everything, lean = fetch(room.url("/feed.xml"), proxy=proxy.url, no_proxy=["*"])
    assert everything.body == FEED and lean and proxy.lines() == []


def test_proxy_credentials_are_sent_as_proxy_authorization(
    room: Newsroom, proxy: ForwardProxy
) -> None:
    room.add_raw("/feed.xml", FEED)
    with_user = proxy.url.replace("http://", "http://ann:s3cret@")
    result, _ = fetch(named(room, "/feed.xml"), proxy=with_user)
    assert result.body == FEED
    expected = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert [r.authorization for r in proxy.log] == [expected]
    assert "authorization" not in room.requests_for("/feed.xml")[0].headers


def test_a_guarded_article_link_goes_through_the_proxy_after_its_check(
    room: Newsroom, proxy: ForwardProxy
) -> None:
    """The guard vets the link's host; the proxy, not the pinned address, is connected to."""
    room.add_raw("/story.html", b"<html><body><p>story</p></body></html>", "text/html")
    url = named(room, "/story.html")
    checked: list[str] = []

    async def public(link: str) -> tuple[str, ...]:
        checked.append(link)
        return ("192.0.2.7",)  # what the guard resolved and approved

    async def refuse(link: str) -> tuple[str, ...]:
        from monitor.fetch import FetchRefused

        raise FetchRefused(f"{link} is private")

    result, _ = fetch(url, proxy=proxy.url, guard=public)
    assert result.status is FetchStatus.OK and checked == [url]
    refused, _ = fetch(url, proxy=proxy.url, guard=refuse)
    assert refused.status is FetchStatus.ERROR and "refused" in (refused.error or "")
    assert proxy.lines() == [f"GET {url} HTTP/1.1"]  # the refused link never reached the proxy


def test_proxy_down_is_a_transient_fetch_error(room: Newsroom, proxy: ForwardProxy) -> None:
    dead = proxy.url
    proxy.__exit__()
    result, _ = fetch(named(room, "/feed.xml"), proxy=dead)
    assert result.status is FetchStatus.ERROR and result.transient
    proxy.__enter__()  # for the fixture's own exit


@pytest.fixture(scope="module")
def named_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "feeds.example", "DNS:feeds.example")


def test_https_is_tunnelled_and_verified_against_the_sites_name(
    proxy: ForwardProxy, named_certificate: tuple[Path, Path]
) -> None:
    cert, key = named_certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)

    async def go() -> tuple[FetchResult, FetchResult]:
        async with RawServer(lambda c, r: (ok(), False), server_side) as server:
            url = f"https://feeds.example:{server.port}/feed.xml"
            trusting = ssl.create_default_context(cafile=str(cert))
            async with Fetcher(clock=FakeClock(START), proxy=proxy.url, ssl_context=trusting) as f:
                trusted = await f.fetch(url)
            async with Fetcher(clock=FakeClock(START), proxy=proxy.url) as f:
                untrusted = await f.fetch(url)  # certifi's roots do not know the test certificate
            return trusted, untrusted

    trusted, untrusted = asyncio.run(go())
    assert trusted.status is FetchStatus.OK and trusted.body == FEED
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")
    assert proxy.lines()[0].startswith("CONNECT feeds.example:")


def test_the_service_polls_through_the_configured_proxy(
    room: Newsroom, proxy: ForwardProxy, tmp_path: Path
) -> None:
    room.publish("/en.xml", 3, lang="en")
    url = named(room, "/en.xml")
    extra = f"fetch:\n  proxy: {proxy.url}\n"
    config = make_config(tmp_path, [("Named", url)], extra=extra)
    outcome = one_pass(config, FakeClock(START))["Named"]
    assert outcome.status == "ok" and outcome.new == 3
    assert f"GET {url} HTTP/1.1" in proxy.lines()
    assert len(stored_items(config)) == 3


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://proxy.example:21", "is not an http:// or https:// proxy URL"),
        ("proxy.example:3128", "is not an http:// or https:// proxy URL"),
    ],
)
def test_a_wrong_proxy_is_a_config_error_with_its_line(
    tmp_path: Path, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, [("A", "http://a.example/feed")], extra=f"fetch:\n  proxy: {value}\n")
    message = str(caught.value)
    assert (
        "fetch.proxy" in message and problem in message and "monitor.yaml:8:" in message
    )  # the proxy: line


def test_proxy_settings_from_the_environment(tmp_path: Path) -> None:
    """`${HTTPS_PROXY:-}` is how a config takes the usual variables; empty means no proxy."""
    from monitor.config import parse_config

    text = "fetch:\n  proxy: ${HTTPS_PROXY:-}\n  no_proxy: ${NO_PROXY:-}\nfeeds: []\n"
    path = tmp_path / "monitor.yaml"
    unset = parse_config(text, path, {})
    assert unset.fetch.proxy is None and unset.fetch.no_proxy == []
    env = {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "intranet.corp, .internal"}
    config = parse_config(text, path, env)
    assert config.fetch.proxy == "http://proxy.corp:3128"
    assert config.fetch.no_proxy == ["intranet.corp", ".internal"]
