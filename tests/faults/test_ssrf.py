"""SSRF: article links are third-party input; the guard decides where they may be fetched from.

The newsroom lives on loopback, so "another host" is 127.0.0.2 while the feed is on 127.0.0.1.
Resolvers are injected (a function host, port -> addresses); the connection itself is never
resolved again, which the DNS-rebinding tests show on real sockets and with a recording backend.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpcore
import pytest

from monitor.clock import FakeClock
from monitor.fetch import Fetcher, FetchRefused
from monitor.netguard import AddressKind, NetGuard, classify
from monitor.pipeline import Pipeline, PollOutcome
from monitor.records import FetchResult, FetchStatus
from tests.newsroom import Newsroom, Redirect, make_story, story_entry
from tests.pipeline_helpers import START, make_config, run, stored_items

FEED = "http://news.example/feed.xml"


@pytest.fixture
def two_hosts() -> Iterator[Newsroom]:
    """The newsroom on 127.0.0.1 and 127.0.0.2 (same content, same port when possible)."""
    with Newsroom(hosts=2) as newsroom:
        yield newsroom


class Resolver:
    """Answers from a script: one list of addresses per call for each host (the last repeats)."""

    def __init__(self, answers: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        script = self.answers.get(host)
        if script is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(script[min(self.calls.count(host), len(script)) - 1])


def check(
    url: str,
    answers: Mapping[str, Sequence[Sequence[str]]],
    *,
    feed_url: str = FEED,
    allow_private: bool = False,
) -> tuple[str, ...]:
    guard = NetGuard(Resolver(answers))
    return asyncio.run(guard.check(url, feed_url, allow_private=allow_private))


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", AddressKind.PUBLIC),
        ("2606:4700::6810:84e5", AddressKind.PUBLIC),
        ("127.0.0.1", AddressKind.LOOPBACK),
        ("127.255.0.9", AddressKind.LOOPBACK),
        ("::1", AddressKind.LOOPBACK),
        ("10.0.0.5", AddressKind.PRIVATE),
        ("172.16.3.4", AddressKind.PRIVATE),
        ("192.168.1.1", AddressKind.PRIVATE),
        ("fc00::1", AddressKind.PRIVATE),
        ("fd12:3456::1", AddressKind.PRIVATE),
        ("169.254.10.1", AddressKind.LINK_LOCAL),
        ("fe80::1", AddressKind.LINK_LOCAL),
        ("100.64.0.1", AddressKind.SHARED),
        ("169.254.169.254", AddressKind.METADATA),
        ("fd00:ec2::254", AddressKind.METADATA),
        ("100.100.100.200", AddressKind.METADATA),
        ("224.0.0.1", AddressKind.MULTICAST),
        ("ff02::1", AddressKind.MULTICAST),
        ("0.0.0.0", AddressKind.UNSPECIFIED),
        ("::", AddressKind.UNSPECIFIED),
        ("240.0.0.1", AddressKind.RESERVED),
        ("255.255.255.255", AddressKind.RESERVED),
        ("192.0.2.7", AddressKind.RESERVED),
        ("2001:db8::1", AddressKind.RESERVED),
        # IPv4 inside IPv6: mapped, NAT64 and 6to4 count as the IPv4 address they carry
        ("::ffff:127.0.0.1", AddressKind.LOOPBACK),
        ("::ffff:10.1.2.3", AddressKind.PRIVATE),
        ("::ffff:169.254.169.254", AddressKind.METADATA),
        ("64:ff9b::a00:5", AddressKind.PRIVATE),
        ("2002:7f00:1::", AddressKind.LOOPBACK),
        ("::ffff:93.184.216.34", AddressKind.PUBLIC),
    ],
)
def test_addresses_are_classified(address: str, kind: AddressKind) -> None:
    assert classify(address) is kind


# --------------------------------------------------------------------------- the guard's decision


def test_public_address_is_allowed_and_only_allowed_answers_are_pinned() -> None:
    answers = {
        "news.example": [["93.184.216.34"]],  # the feed's host
        "elsewhere.example": [["10.0.0.5", "93.184.216.35", "2606:4700::1"]],
    }
    assert check("https://elsewhere.example/a", answers) == ("93.184.216.35", "2606:4700::1")


@pytest.mark.parametrize(
    ("url", "answers", "message"),
    [
        (
            "http://intranet.example/a",
            {"intranet.example": [["10.0.0.5"]]},
            "article link points to a private address (10.0.0.5)",
        ),
        ("http://127.0.0.1:8080/", {}, "article link points to a loopback address (127.0.0.1)"),
        (
            "http://[::ffff:127.0.0.1]/x",
            {},
            "article link points to a loopback address (::ffff:127.0.0.1)",
        ),
        (
            "http://metadata.example/latest/meta-data/",
            {"metadata.example": [["169.254.169.254"]]},
            "article link points to a cloud metadata address (169.254.169.254)",
        ),
        (
            "http://[fd00:ec2::254]/latest/",
            {},
            "article link points to a cloud metadata address (fd00:ec2::254)",
        ),
        (
            "http://cgnat.example/",
            {"cgnat.example": [["100.64.1.1"]]},
            "article link points to a carrier-grade NAT address (100.64.1.1)",
        ),
        (
            "http://zero.example/",
            {"zero.example": [["0.0.0.0"]]},
            "article link points to an unspecified address (0.0.0.0)",
        ),
        (
            "http://2130706433/",  # a decimal spelling of 127.0.0.1
            {"2130706433": [["127.0.0.1"]]},
            "article link points to a loopback address (127.0.0.1)",
        ),
    ],
)
def test_non_public_addresses_are_refused_in_plain_words(
    url: str, answers: Mapping[str, Sequence[Sequence[str]]], message: str
) -> None:
    with pytest.raises(FetchRefused) as refused:
        check(url, answers)
    assert str(refused.value) == message


def test_allow_private_networks_opens_the_intranet_but_never_metadata_or_multicast() -> None:
    answers = {"intranet.example": [["10.0.0.5"]], "loop.example": [["127.0.0.2"]]}
    assert check("http://intranet.example/a", answers, allow_private=True) == ("10.0.0.5",)
    assert check("http://loop.example/a", answers, allow_private=True) == ("127.0.0.2",)
    for url, message in [
        ("http://169.254.169.254/", "a cloud metadata address (169.254.169.254)"),
        ("http://[ff02::1]/", "a multicast address (ff02::1)"),
    ]:
        with pytest.raises(FetchRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
            check(url, answers, allow_private=True)


def test_the_feeds_own_host_is_allowed_on_its_port_only() -> None:
    answers = {
        "intranet.example": [["10.0.0.5"]],
        "alias.intranet.example": [["10.0.0.5"]],
        "other.intranet.example": [["10.0.0.6"]],
    }
    feed = "https://intranet.example/rss"
    assert check("https://intranet.example/news/1", answers, feed_url=feed) == ("10.0.0.5",)
    # another name for the same address, and http vs https on the default ports: the same site
    assert check("http://alias.intranet.example/n", answers, feed_url=feed) == ("10.0.0.5",)
    with pytest.raises(FetchRefused, match=r"private address \(10\.0\.0\.6\)"):
        check("http://other.intranet.example/n", answers, feed_url=feed)
    with pytest.raises(FetchRefused, match=r"private address \(10\.0\.0\.5\)"):
        check("http://intranet.example:6379/", answers, feed_url=feed)  # another service


def test_a_name_that_does_not_resolve_is_reported_as_such() -> None:
    async def go() -> FetchResult:
        async with Fetcher() as fetcher:
            guard = NetGuard(Resolver({})).for_article(FEED)
            return await fetcher.fetch("http://nowhere.example/a", guard=guard, timeout=1)

    result = asyncio.run(go())
    assert result.status is FetchStatus.ERROR
    assert result.error == "host not found (DNS lookup failed)"


# --------------------------------------------------------------------------- pinning


class _Stream(httpcore.AsyncNetworkStream):
    """A connection that records the TLS server name it is asked for, then fails."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise httpcore.ReadError("recording stream")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise httpcore.WriteError("recording stream")

    async def aclose(self) -> None:
        return None

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.log.append(("tls", server_hostname))
        raise httpcore.ConnectError("recording stream: no TLS here")

    def get_extra_info(self, info: str) -> Any:
        return None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Where connections go, without sending a packet."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.log.append(("connect", host, port))
        return _Stream(self.log)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def test_rebinding_dns_cannot_move_the_connection_after_the_check() -> None:
    # The attacker's DNS answers a public address to the check, then loopback to anyone after.
    resolver = Resolver({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    backend = RecordingBackend()

    async def go() -> FetchResult:
        async with Fetcher(network_backend=backend) as fetcher:
            guard = NetGuard(resolver).for_article(FEED)
            return await fetcher.fetch("https://rebind.example/story", guard=guard, timeout=2)

    result = asyncio.run(go())
    assert result.status is FetchStatus.ERROR
    # connected to the address that was checked; TLS still names (and verifies) the host
    assert backend.log == [("connect", "93.184.216.34", 443), ("tls", "rebind.example")]
    assert resolver.calls == ["rebind.example"]  # the loopback answer was never asked for


def test_rebinding_on_real_sockets_connects_to_the_checked_address(
    two_hosts: Newsroom, tmp_path: Path
) -> None:
    """Checked: 127.0.0.1 (the feed's own host, allowed). Next answer: 127.0.0.2 (refused)."""
    story = make_story(1, "en")
    two_hosts.add_article("/en/news/rebind", story)
    port = two_hosts.hosts[0].rsplit(":", 1)[1]
    link = f"http://rebind.test:{port}/en/news/rebind"
    two_hosts.add_feed("/feed.xml", [story_entry(story, link, guid=link)])
    resolver = Resolver({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    config = make_config(tmp_path, [("F", two_hosts.url("/feed.xml"))])
    poll_with(config, resolver)
    (item,) = stored_items(config)
    assert item["text_source"] == "page"
    (request,) = two_hosts.requests_for("/en/news/rebind")
    assert request.host == "127.0.0.1"  # not where a fresh lookup would have sent it
    assert request.header("host") == f"rebind.test:{port}"
    assert resolver.calls == ["rebind.test"]


# --------------------------------------------------------------------------- end to end


def poll_with(config: Any, resolver: Resolver | None = None) -> dict[str, PollOutcome]:
    async def action(p: Pipeline) -> list[PollOutcome]:
        if resolver is not None:
            p.netguard = NetGuard(resolver)
        return await p.run_once(config.feeds)

    return {o.feed: o for o in run(config, FakeClock(START), action)}


def test_article_on_another_loopback_host_is_refused_and_the_feed_text_kept(
    two_hosts: Newsroom, tmp_path: Path
) -> None:
    (published,) = two_hosts.publish("/feed.xml", 1, host=1)  # links point at 127.0.0.2
    config = make_config(tmp_path, [("F", two_hosts.url("/feed.xml"))])
    assert poll_with(config)["F"].status == "ok"
    (item,) = stored_items(config)
    assert item["text_source"] == "feed"
    assert item["text"] == published.story.description
    assert item["extract_error"] == (
        "page: refused: article link points to a loopback address (127.0.0.2)"
    )
    assert [r.path for r in two_hosts.log if r.host == "127.0.0.2"] == []  # never contacted


def test_article_on_the_feeds_own_host_is_fetched(two_hosts: Newsroom, tmp_path: Path) -> None:
    two_hosts.publish("/feed.xml", 2, host=0)
    config = make_config(tmp_path, [("F", two_hosts.url("/feed.xml"))])
    poll_with(config)
    assert {i["text_source"] for i in stored_items(config)} == {"page"}


def test_feed_urls_from_the_config_are_trusted(two_hosts: Newsroom, tmp_path: Path) -> None:
    two_hosts.publish("/feed.xml", 2, host=1)
    config = make_config(tmp_path, [("F", two_hosts.url("/feed.xml", host=1))])  # feed on 127.0.0.2
    assert poll_with(config)["F"].new == 2
    assert {i["text_source"] for i in stored_items(config)} == {"page"}


def test_allow_private_networks_lets_article_links_reach_the_intranet(
    two_hosts: Newsroom, tmp_path: Path
) -> None:
    two_hosts.publish("/feed.xml", 2, host=1)
    config = make_config(
        tmp_path,
        [("F", two_hosts.url("/feed.xml"))],
        extra="fetch: {allow_private_networks: true}\n",
    )
    poll_with(config)
    assert {i["text_source"] for i in stored_items(config)} == {"page"}
    assert len([r for r in two_hosts.log if r.host == "127.0.0.2"]) == 2


def test_redirect_from_an_allowed_link_to_loopback_is_refused(
    two_hosts: Newsroom, tmp_path: Path
) -> None:
    (published,) = two_hosts.publish("/feed.xml", 1, host=0)
    hidden = two_hosts.url(published.path, host=1)
    two_hosts.set_fault(published.path, Redirect(hidden))
    config = make_config(tmp_path, [("F", two_hosts.url("/feed.xml"))])
    poll_with(config)
    (item,) = stored_items(config)
    assert item["text_source"] == "feed"
    assert item["extract_error"] == (
        "page: refused: article link was redirected to a loopback address (127.0.0.2)"
    )
    assert [r.host for r in two_hosts.requests_for(published.path)] == ["127.0.0.1"]
