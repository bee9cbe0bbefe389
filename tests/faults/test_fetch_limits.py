"""The fetcher's politeness limits hold under load, and forget hosts once they are idle."""

from __future__ import annotations

import asyncio

from monitor.fetch import Fetcher
from monitor.records import FetchResult, FetchStatus
from tests.newsroom import Delay, LoggedRequest, Newsroom


def most_at_once(requests: list[LoggedRequest]) -> int:
    events = sorted(
        [(r.time, 1) for r in requests] + [(r.finished or r.time, -1) for r in requests],
        key=lambda e: (e[0], e[1]),  # a finish before a start at the same instant
    )
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def test_per_host_limit_holds_and_idle_hosts_are_forgotten() -> None:
    with Newsroom(hosts=3) as room:
        room.publish("/slow.xml", 1)
        room.set_fault("/slow.xml", Delay(0.2))
        urls = [room.url("/slow.xml", host=0)] * 6 + [room.url("/slow.xml", host=h) for h in (1, 2)]

        async def go() -> tuple[list[FetchResult], int]:
            async with Fetcher(per_host=2, max_connections=20) as fetcher:
                results = await asyncio.gather(*(fetcher.fetch(u, timeout=5) for u in urls))
                return list(results), len(fetcher._per_host)

        results, hosts_left = asyncio.run(go())
        assert {r.status for r in results} == {FetchStatus.OK}
        first_host = [r for r in room.log if r.host == "127.0.0.1"]
        assert len(first_host) == 6 and most_at_once(first_host) == 2
        assert hosts_left == 0  # nothing kept for hosts with no request in flight
