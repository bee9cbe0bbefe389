"""Where an unchanged feed's CPU goes on the HTTP side: our Fetcher against lighter clients.

    python bench/transports.py [--feeds 1000] [--hosts 10] [--rounds 3]

The newsroom of bench/polling.py (1,000 feeds on ten loopback hosts, own process) answers every
request with 304, because each client sends the ETag it learnt. Each client polls every feed once
per round, 20 requests at a time, at most 2 per host (news-monitor's defaults); printed: CPU ms
per request (this process, every thread; best round) and requests/s.

    fetcher        monitor.fetch.Fetcher.fetch, as the pipeline calls it (feed polls take the
                   lean path: h11 on asyncio sockets, monitor/fetch_lean.py)
    fetcher-httpx  the same with Fetcher(lean=False): every request through httpx + httpcore
                   (what the Fetcher did before the lean path)
    httpx          httpx.AsyncClient.get (reads the body), same limits
    httpcore       httpcore.AsyncConnectionPool.request, same limits
    httpcore/host  one httpcore pool per host (2 connections each) instead of one pool of 20
    h11            h11 (httpcore's HTTP/1.1 state machine) on asyncio streams, own keep-alive pool
    asyncio        a hand-written HTTP/1.1 keep-alive client on asyncio streams: the floor of
                   Python + asyncio on this machine (not a product: no TLS, redirects, chunks)
    httpx-sync     a sequential loop of synchronous httpx requests (the reference in issue 7)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import Meter, RoomProcess, Usage, load_average  # noqa: E402
from monitor.fetch import Fetcher  # noqa: E402

GLOBAL, PER_HOST = 20, 2
Get = Callable[[str, str], Awaitable[int]]


async def _limited(urls: Sequence[str], etags: dict[str, str], get: Get) -> list[int]:
    """Every URL once, GLOBAL at a time and PER_HOST per host, like the Fetcher's slots."""
    overall = asyncio.Semaphore(GLOBAL)
    hosts: dict[str, asyncio.Semaphore] = {}

    async def one(url: str) -> int:
        host = urlsplit(url).netloc
        per = hosts.setdefault(host, asyncio.Semaphore(PER_HOST))
        async with per, overall:
            return await get(url, etags[url])

    return list(await asyncio.gather(*(one(u) for u in urls)))


async def run_fetcher(urls: Sequence[str], etags: dict[str, str], lean: bool) -> list[int]:
    async with Fetcher(lean=lean) as fetcher:

        async def get(url: str, etag: str) -> int:
            result = await fetcher.fetch(url, etag=etag)
            return result.http_status or 0

        return await _limited(urls, etags, get)


async def run_httpx(urls: Sequence[str], etags: dict[str, str]) -> list[int]:
    import httpx

    limits = httpx.Limits(max_connections=GLOBAL, max_keepalive_connections=GLOBAL)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def get(url: str, etag: str) -> int:
            response = await client.get(url, headers={"If-None-Match": etag})
            return response.status_code

        return await _limited(urls, etags, get)


async def run_httpcore(urls: Sequence[str], etags: dict[str, str]) -> list[int]:
    import httpcore

    async with httpcore.AsyncConnectionPool(
        max_connections=GLOBAL, max_keepalive_connections=GLOBAL
    ) as pool:

        async def get(url: str, etag: str) -> int:
            response = await pool.request("GET", url, headers={"If-None-Match": etag})
            return response.status

        return await _limited(urls, etags, get)


async def run_httpcore_per_host(urls: Sequence[str], etags: dict[str, str]) -> list[int]:
    """One small pool per host: httpcore scans every pooled connection on each request."""
    import httpcore

    pools: dict[str, httpcore.AsyncConnectionPool] = {}

    async def get(url: str, etag: str) -> int:
        host = urlsplit(url).netloc
        pool = pools.get(host)
        if pool is None:
            pool = pools[host] = httpcore.AsyncConnectionPool(max_connections=PER_HOST)
        response = await pool.request("GET", url, headers={"If-None-Match": etag})
        return response.status

    try:
        return await _limited(urls, etags, get)
    finally:
        for pool in pools.values():
            await pool.aclose()


class _H11Connection:
    """One keep-alive connection with h11 doing the HTTP/1.1 framing, on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11

        self.h11 = h11
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    async def get(self, host: str, target: str, etag: str) -> int:
        h11 = self.h11
        headers = [("Host", host), ("If-None-Match", etag), ("Accept-Encoding", "gzip")]
        data = self.conn.send(h11.Request(method="GET", target=target, headers=headers))
        self.writer.write((data or b"") + (self.conn.send(h11.EndOfMessage()) or b""))
        status, body = 0, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed")
        self.conn.start_next_cycle()
        return status


async def run_h11(urls: Sequence[str], etags: dict[str, str]) -> list[int]:
    return await _run_pooled(urls, etags, _H11Connection)


class _Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, host: str, target: str, etag: str) -> int:
        self.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: {etag}\r\n"
            "Accept-Encoding: gzip\r\n\r\n".encode("latin-1")
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length and status != 304:
            await self.reader.readexactly(length)
        return status


async def run_asyncio(urls: Sequence[str], etags: dict[str, str]) -> list[int]:
    return await _run_pooled(urls, etags, _Connection)


class _Keptalive(Protocol):
    writer: asyncio.StreamWriter

    async def get(self, host: str, target: str, etag: str) -> int: ...


async def _run_pooled(
    urls: Sequence[str],
    etags: dict[str, str],
    connection: Callable[[asyncio.StreamReader, asyncio.StreamWriter], _Keptalive],
) -> list[int]:
    """Conditional GETs over hand-kept keep-alive connections, one idle list per host."""
    idle: dict[str, list[_Keptalive]] = {}

    async def get(url: str, etag: str) -> int:
        parts = urlsplit(url)
        pool = idle.setdefault(parts.netloc, [])
        if pool:
            conn = pool.pop()
        else:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            conn = connection(reader, writer)
        status = await conn.get(parts.netloc, parts.path, etag)
        pool.append(conn)
        return status

    try:
        return await _limited(urls, etags, get)
    finally:
        for pool in idle.values():
            for conn in pool:
                conn.writer.close()


def run_sync(urls: Sequence[str], etags: dict[str, str]) -> list[int]:
    import httpx

    with httpx.Client(trust_env=False) as client:
        return [client.get(u, headers={"If-None-Match": etags[u]}).status_code for u in urls]


def learn_etags(urls: Sequence[str]) -> dict[str, str]:
    import httpx

    with httpx.Client(trust_env=False) as client:
        return {u: client.get(u).headers["etag"] for u in urls}


CLIENTS: dict[str, Callable[[Sequence[str], dict[str, str]], list[int]]] = {
    "fetcher": lambda u, e: asyncio.run(run_fetcher(u, e, lean=True)),
    "fetcher-httpx": lambda u, e: asyncio.run(run_fetcher(u, e, lean=False)),
    "httpx": lambda u, e: asyncio.run(run_httpx(u, e)),
    "httpcore": lambda u, e: asyncio.run(run_httpcore(u, e)),
    "httpcore/host": lambda u, e: asyncio.run(run_httpcore_per_host(u, e)),
    "h11": lambda u, e: asyncio.run(run_h11(u, e)),
    "asyncio": lambda u, e: asyncio.run(run_asyncio(u, e)),
    "httpx-sync": run_sync,
}


def measure(name: str, urls: Sequence[str], etags: dict[str, str], rounds: int) -> Usage:
    best: Usage | None = None
    for _ in range(rounds):
        with Meter().span() as got:
            statuses = CLIENTS[name](urls, etags)
        if set(statuses) != {304}:
            raise RuntimeError(f"{name}: expected only 304s, got {sorted(set(statuses))}")
        if best is None or got[0].cpu < best.cpu:
            best = got[0]
    assert best is not None
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args(argv)
    print(f"transports: {args.feeds} unchanged feeds (304) on {args.hosts} hosts; {load_average()}")
    try:
        import sniffio  # noqa: F401

        print("sniffio: installed")
    except ImportError:
        print("sniffio: NOT installed (httpcore retries `import sniffio` on every request)")
    with RoomProcess(args.hosts) as room:
        urls: list[str] = room.call("polling_feeds", args.feeds, args.entries)
        etags = learn_etags(urls)
        for name in args.clients.split(","):
            before = room.call("connections")
            usage = measure(name, urls, etags, args.rounds)
            opened = (room.call("connections") - before) / args.rounds
            print(
                f"  {name:<14} {1000 * usage.cpu / len(urls):6.3f} ms CPU/request  "
                f"{len(urls) / usage.wall:6.0f} requests/s  "
                f"{opened:5.0f} connections opened per round"
            )
    print(f"after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
