"""Server-side request forgery guard for article links.

Feeds are configured by the user and trusted; the links inside them are written by third parties.
Before each request hop to an article (redirects included) the guard resolves the host (without
blocking the event loop), classifies every address and answers with the addresses that may be
used. The fetcher then connects to exactly those addresses (pinning), so a DNS answer that changes
between the check and the connection ("DNS rebinding") cannot redirect the request.

An address is allowed when it is public, or when it is an address of the feed's own host on the same
port (a feed on an intranet may link to its own pages), or when `fetch.allow_private_networks`
is set. Cloud metadata, multicast, unspecified and reserved addresses are refused always.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

import httpx

from monitor.fetch import FetchRefused, UrlGuard
from monitor.fetch_lean import IPAddress, parse_ip

# host, port -> the addresses it resolves to (tests inject their own).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Table = tuple[tuple[tuple[Network, ...], "AddressKind"], ...]


class AddressKind(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    SHARED = "carrier-grade NAT"
    METADATA = "cloud metadata"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"


# Networks a user may open up (their intranet); the rest of the non-public kinds stay refused.
PRIVATE_KINDS = frozenset(
    {AddressKind.LOOPBACK, AddressKind.PRIVATE, AddressKind.LINK_LOCAL, AddressKind.SHARED}
)

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.169.253",  # AWS DNS
        "169.254.169.123",  # AWS time sync
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS IPv6
        "fd00:ec2::253",
        "fd00:ec2::123",
        "fd00:ec2::23",
    )
)


def _nets(*specs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(s) for s in specs)


# Checked in order; the first match decides. Our own tables, not `is_global`, whose answers
# changed between Python patch releases.
_V4: Table = (
    (_nets("0.0.0.0/8"), AddressKind.UNSPECIFIED),
    (_nets("127.0.0.0/8"), AddressKind.LOOPBACK),
    (_nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), AddressKind.PRIVATE),
    (_nets("169.254.0.0/16"), AddressKind.LINK_LOCAL),
    (_nets("100.64.0.0/10"), AddressKind.SHARED),
    (_nets("224.0.0.0/4"), AddressKind.MULTICAST),
    (
        _nets(
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",  # documentation
            "198.51.100.0/24",
            "203.0.113.0/24",
            "198.18.0.0/15",  # benchmarking
            "192.88.99.0/24",  # old 6to4 relays
            "240.0.0.0/4",  # reserved, and the broadcast address
        ),
        AddressKind.RESERVED,
    ),
)
_V6: Table = (
    (_nets("::/128"), AddressKind.UNSPECIFIED),
    (_nets("::1/128"), AddressKind.LOOPBACK),
    (_nets("fc00::/7", "fec0::/10", "64:ff9b:1::/48"), AddressKind.PRIVATE),
    (_nets("fe80::/10"), AddressKind.LINK_LOCAL),
    (_nets("ff00::/8"), AddressKind.MULTICAST),
    (_nets("2001::/23", "2001:db8::/32", "100::/64"), AddressKind.RESERVED),
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def classify(address: str | IPAddress) -> AddressKind:
    """What kind of address this is; IPv4 embedded in IPv6 (mapped, NAT64, 6to4) counts as IPv4."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if ip in _METADATA:
        return AddressKind.METADATA
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            return classify(embedded)
        kind = _lookup(ip, _V6)
        if kind is None and ip not in _GLOBAL_UNICAST_V6:
            return AddressKind.RESERVED
        return kind or AddressKind.PUBLIC
    return _lookup(ip, _V4) or AddressKind.PUBLIC


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _lookup(ip: IPAddress, table: Table) -> AddressKind | None:
    for networks, kind in table:
        if any(ip in net for net in networks):
            return kind
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's DNS answers for host, in its preferred order, without blocking the loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class NetGuard:
    """Builds the per-article guard the fetcher calls before each request hop."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        self.resolver: Resolver = resolver or system_resolver

    def for_article(self, feed_url: str, *, allow_private: bool = False) -> UrlGuard:
        """A guard for one article link listed by the feed at `feed_url` (follows its redirects)."""
        hops = 0

        async def guard(url: str) -> tuple[str, ...]:
            nonlocal hops
            hops += 1
            return await self.check(url, feed_url, allow_private=allow_private, redirected=hops > 1)

        return guard

    async def check(
        self, url: str, feed_url: str, *, allow_private: bool = False, redirected: bool = False
    ) -> tuple[str, ...]:
        """The addresses `url` may be fetched from, in order; FetchRefused when there are none."""
        what = "article link was redirected to" if redirected else "article link points to"
        host, port = _host_port(url, what)
        addresses = await self._resolve(host, port)
        if not addresses:
            raise httpx.ConnectError("host not found (DNS lookup failed): no address")
        feed_addresses: set[IPAddress] | None = None
        allowed: list[str] = []
        refused: tuple[str, AddressKind] | None = None
        for address in addresses:
            kind = classify(address)
            ok = kind is AddressKind.PUBLIC or (allow_private and kind in PRIVATE_KINDS)
            if not ok and kind in PRIVATE_KINDS:
                if feed_addresses is None:
                    feed_addresses = await self._feed_addresses(feed_url, port)
                ok = parse_ip(address) in feed_addresses
            if ok:
                allowed.append(address)
            elif refused is None:
                refused = (address, kind)
        if allowed:
            return tuple(allowed)
        assert refused is not None
        address, kind = refused
        raise FetchRefused(f"{what} {_article(kind)} {kind} address ({address})")

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host]  # a literal address needs no lookup
        try:
            answers = await self.resolver(host, port)
        except UnicodeError as exc:  # a label the IDNA codec rejects (empty, too long)
            raise FetchRefused(f"the link's host name is not valid ({host[:100]})") from exc
        except OSError as exc:
            # Same words as a failed connect: describe_http_error reads the resolver's message.
            raise httpx.ConnectError(str(exc) or "name or service not known") from exc
        valid = []
        for answer in answers:
            try:
                valid.append(str(ipaddress.ip_address(answer.split("%", 1)[0])))
            except ValueError:
                continue
        return valid

    async def _feed_addresses(self, feed_url: str, port: int) -> set[IPAddress]:
        """The feed host's addresses, when the article uses the feed's port (else nothing)."""
        try:
            feed_host, feed_port = _host_port(feed_url, "feed URL")
            if _site_port(feed_port) != _site_port(port):
                return set()
            resolved = await self._resolve(feed_host, feed_port)
            return {ip for a in resolved if (ip := parse_ip(a)) is not None}
        except (FetchRefused, httpx.HTTPError, OSError):
            return set()


def _host_port(url: str, what: str) -> tuple[str, int]:
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchRefused(f"{what} an invalid URL") from exc
    if not host:
        raise FetchRefused(f"{what} a URL without a host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return host, port


def _site_port(port: int) -> int | None:
    """http and https on their default ports are the same site."""
    return None if port in (80, 443) else port


def _article(kind: AddressKind) -> str:
    return "an" if kind.value[0] in "aeiou" else "a"
