from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.clock import FakeClock, SystemClock
from monitor.config import load_config
from monitor.daemon import Daemon, heartbeat_age, write_heartbeat
from monitor.ops import gather_status
from monitor.pipeline import PollOutcome
from monitor.store import Store
from tests.newsroom import Newsroom


def test_daemon_polls_every_feed_then_stops_cleanly(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.publish("/a.xml", 2, seed=1)
    newsroom.publish("/b.xml", 3, seed=10)
    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"workers: 0\ndefaults: {{interval: 1h, jitter: 0s}}\nfeeds:\n"
        f"  - {{name: A, url: '{newsroom.url('/a.xml')}'}}\n"
        f"  - {{name: B, url: '{newsroom.url('/b.xml')}'}}\n"
        f"  - {{name: Off, url: '{newsroom.url('/off.xml')}', enabled: false}}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    outcomes: list[PollOutcome] = []

    async def go() -> None:
        done = asyncio.Event()

        def polled(outcome: PollOutcome) -> None:
            outcomes.append(outcome)
            if len(outcomes) == 2:
                done.set()

        daemon = Daemon(config, startup_spread=timedelta(0), on_poll=polled)
        server = asyncio.create_task(daemon.serve())
        await asyncio.wait_for(done.wait(), timeout=30)
        daemon.request_stop()
        await asyncio.wait_for(server, timeout=30)

    asyncio.run(go())
    assert sorted((o.feed, o.new) for o in outcomes) == [("A", 2), ("B", 3)]
    assert newsroom.requests_for("/off.xml") == []  # disabled feeds are not polled
    store = Store.open(config.database, create=False)
    assert store.count("items") == 5
    # The heartbeat is seconds old, yet status says at once that the daemon stopped.
    age = heartbeat_age(config.heartbeat, SystemClock())
    assert age is not None and age < timedelta(seconds=90)
    found = gather_status(config, store.conn, SystemClock())
    store.close()
    assert not found.running and found.pid is None
    assert found.notes[0].startswith("the daemon stopped")


def test_heartbeat_age(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    beat = tmp_path / "state" / "heartbeat"
    assert heartbeat_age(beat, clock) is None
    write_heartbeat(beat, clock)
    clock.advance(timedelta(seconds=40))
    assert heartbeat_age(beat, clock) == timedelta(seconds=40)
