"""SIGKILL the dispatcher at random moments, 20 times: afterwards every alert was delivered, and
none twice except inside the documented window (the channel had the message, the process died
before recording it as sent).

The dispatcher runs in a child process (forked from `tests/alert_crash_worker.py`, which imported
news-monitor once, so a round costs milliseconds). The loopback receiver kills it at chosen moments:
just before answering a request (the message arrived, the sender never hears back), just after
answering (racing the sender's database write), or right after the child starts (during a claim).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from monitor.alert import outbox
from monitor.alert.dispatch import Dispatcher
from monitor.clock import FakeClock
from tests.alert_helpers import (
    KEY_TEMPLATE,
    Received,
    Receiver,
    make_config,
    open_store,
    seed,
    story,
)

ROUNDS = 20
CHANNELS = 3
ALERTS = 72
WORKER = Path(__file__).with_name("alert_crash_worker.py")


class Killer:
    """Decides, per round, when the receiver kills the dispatcher process."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.pid = 0
        self.requests = 0
        self.at = 0
        self.phase = ""
        self.killed = False
        self.numbers: dict[int, int] = {}  # request -> its number in this round

    def arm(self, pid: int) -> None:
        with self.lock:
            self.pid, self.requests, self.killed = pid, 0, False
            self.numbers.clear()
            self.phase = self.rng.choice(["before", "after", "after", "start"])
            self.at = self.rng.randint(1, 4)
            if self.phase == "start":
                self._kill()

    def on_request(self, got: Received, when: str) -> None:
        with self.lock:
            if self.killed or not self.pid:
                return
            if when == "before":
                self.requests += 1
                self.numbers[id(got)] = self.requests
            if self.numbers.get(id(got)) == self.at and when == self.phase:
                self._kill()

    def _kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            self.killed = True
        except ProcessLookupError:  # it had already finished
            pass


def read_line(stream: IO[str]) -> str:
    line = stream.readline()
    assert line, "the worker process died"
    return line.strip()


def test_sigkill_at_random_moments_loses_nothing_and_doubles_only_in_the_window(
    tmp_path: Path,
) -> None:
    rng = random.Random(20260301)
    (tmp_path / "key.j2").write_text(KEY_TEMPLATE, encoding="utf-8")
    killer = Killer(rng)
    with Receiver(on_request=killer.on_request) as rx:
        channels = "\n".join(
            f'  c{i}: {{url: "{rx.url("json", f"/c{i}")}", template: key.j2}}'
            for i in range(CHANNELS)
        )
        topics = "\n".join(f"  - {{name: t{i}, query: x, notify: [c{i}]}}" for i in range(CHANNELS))
        config = make_config(
            tmp_path,
            f"database: m.db\nfeeds: [{{name: A, url: 'https://a.example/f'}}]\n"
            f"channels:\n{channels}\ntopics:\n{topics}\n",
        )
        store = open_store(config)
        made = datetime.now(UTC) - timedelta(days=1)
        seed(store, "A", [story(n, f"t{n % CHANNELS}") for n in range(ALERTS)], now=made)
        order = {r.key: r.id for r in outbox.list_rows(store.conn)}

        worker = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        assert worker.stdin is not None and worker.stdout is not None
        unrecorded: set[tuple[str, int]] = set()  # claims of killed processes: (key, attempt)
        kills = 0
        try:
            assert read_line(worker.stdout) == "ready"
            for round_no in range(ROUNDS):
                # Each round's clock starts an hour after the last one: old claims have expired.
                worker.stdin.write(f"run {config.path} {3600 * (round_no + 1)}\n")
                worker.stdin.flush()
                pid = int(read_line(worker.stdout).split()[1])
                killer.arm(pid)
                worker.stdin.write("go\n")
                worker.stdin.flush()
                code = int(read_line(worker.stdout).split()[1])
                kills += code == -signal.SIGKILL
                killer.pid = 0
                # The dead process's claims stay 'sending' (with their attempt number) until
                # another process takes them over: whatever it sent under them went unrecorded.
                for row in outbox.list_rows(store.conn, status="sending"):
                    unrecorded.add((row.key, row.attempts))
            worker.stdin.write("quit\n")
            worker.stdin.flush()
        finally:
            worker.stdin.close()
            worker.wait(timeout=30)

        assert kills == ROUNDS  # every round really was killed mid-dispatch
        assert outbox.counts(store.conn)["sent"] < ALERTS  # work was left for the recovery

        # A fresh dispatcher, after every lease, finishes the job.
        async def recover() -> None:
            clock = FakeClock(datetime.now(UTC) + timedelta(hours=ROUNDS + 5))
            dispatcher = Dispatcher(config, config.database, clock)
            try:
                await dispatcher.send_due()
            finally:
                await dispatcher.aclose()

        asyncio.run(recover())
        copies = [(m.key, m.attempt) for m in rx.messages]
        keys = [key for key, _ in copies]

    rows = {r.key: r for r in outbox.list_rows(store.conn)}
    assert {r.status for r in rows.values()} == {"sent"} and len(rows) == ALERTS
    assert set(keys) == set(order)  # every alert was delivered
    assert len(copies) == len(set(copies))  # one claim never sends twice
    recorded = {(key, row.attempts) for key, row in rows.items()}
    assert recorded <= set(copies)  # each alert's recorded send did arrive
    # Every other copy was sent under a claim whose process died before recording it: the window.
    doubles = set(copies) - recorded
    assert doubles <= unrecorded, f"sent twice outside the window: {doubles - unrecorded}"
    assert doubles  # the kills did hit the window, so the test would see a wrong double
    for channel in range(CHANNELS):
        firsts = list(dict.fromkeys(k for k in keys if k and f":c{channel}:" in k))
        assert firsts == sorted(firsts, key=order.__getitem__)  # per channel, in order
