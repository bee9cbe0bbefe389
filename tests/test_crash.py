"""Crashes and restarts: SIGKILL `monitor run` at random moments while it ingests and alerts.

A real `monitor run` (forked from `tests/crash_worker.py`, which imported news-monitor once) polls a
loopback newsroom of many feeds twice a second of real time (a one-minute interval on a 120x clock) and
alerts a loopback `json://` receiver. Each round publishes new stories, starts the daemon and kills it
with SIGKILL when a randomly chosen thing happens: its start-up, its k-th poll, the k-th article page
it fetches (mid-ingest), the k-th alert it sends (before the receiver answers, or just after — racing
the record of the send). After every kill the database must pass `PRAGMA integrity_check`. A last,
undisturbed run must then finish the job: every story the newsroom offered is stored, every alert was
delivered, and none twice except inside the documented window (delivered, but the process died
before recording it; those claims are collected after each kill).

Waiting is event-driven throughout: the daemon's log lines (read from a FIFO), the receiver's
requests, the newsroom's requests.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from monitor.clock import utc_iso
from tests.alert_helpers import KEY_TEMPLATE, Received, Receiver
from tests.newsroom import Exchange, Fault, Newsroom
from tests.test_cli import cli

WORKER = Path(__file__).with_name("crash_worker.py")
FEEDS = 12
ROUNDS = 20
QUERY = "Lisbon OR Osaka OR Helsinki OR Denver OR Warsaw OR Brussels OR Nairobi OR Santiago"
# What to wait for before the kill, and how many of it: (kind, highest k).
TRIGGERS = (("started", 1), ("poll", 12), ("article", 3), ("alert-before", 2), ("alert-after", 2))
BACKSTOP = 25  # poll lines: a round whose chosen moment never comes is killed here


@dataclass
class Plan:
    kind: str
    k: int


class Killer:
    """Counts what the daemon does in a round and SIGKILLs it at the planned moment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.plan: Plan | None = None
        self.counts: Counter[str] = Counter()
        self.fired: Counter[str] = Counter()

    def arm(self, pid: int, plan: Plan | None) -> None:
        with self.lock:
            self.pid, self.plan = pid, plan
            self.counts.clear()

    def disarm(self) -> None:
        with self.lock:
            self.pid, self.plan = 0, None

    def event(self, kind: str) -> None:
        with self.lock:
            if not self.pid or self.plan is None:
                return
            self.counts[kind] += 1
            if kind == self.plan.kind and self.counts[kind] == self.plan.k:
                self._kill(kind)
            elif kind == "poll" and self.counts["poll"] >= BACKSTOP:
                self._kill("backstop")

    def _kill(self, why: str) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            self.fired[why] += 1
        except ProcessLookupError:
            pass
        self.pid = 0


class KillOnServe(Fault):
    """An article page that tells the killer it is being fetched, then serves normally."""

    def __init__(self, killer: Killer) -> None:
        self.killer = killer

    def serve(self, ex: Exchange) -> None:
        self.killer.event("article")
        ex.serve_normally()


class Worker:
    """The fork server of `tests/crash_worker.py`."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.read() == "ready"
        self.fifo = cwd / "daemon.log.fifo"
        self.pid = 0
        os.mkfifo(self.fifo)

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the crash worker died"
        return line.strip()

    def run(
        self, args: list[str], killer: Killer, plan: Plan | None, on_line: Callable[[str], None]
    ) -> tuple[int, list[str]]:
        """Start `monitor ARGS`, feed its log lines to the killer and `on_line` until it exits."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("\t".join(["run", str(self.fifo), *args]) + "\n")
        self.proc.stdin.flush()
        self.pid = pid = int(self.read().split()[1])
        killer.arm(pid, plan)
        lines: list[str] = []
        with open(self.fifo, encoding="utf-8", errors="replace") as log:  # EOF: it exited
            for line in log:
                lines.append(line)
                if "started:" in line:
                    killer.event("started")
                elif "monitor.poll: poll feed=" in line:
                    killer.event("poll")
                on_line(line)
        killer.disarm()
        return int(self.read().split()[1]), lines

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@contextmanager
def worker(cwd: Path) -> Iterator[Worker]:
    w = Worker(cwd)
    try:
        yield w
    finally:
        w.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def unfinished_claims(db: Path) -> set[tuple[str, int]]:
    """Rows a killed daemon had claimed (with their attempt number): sent or not, unrecorded."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT key, attempts FROM outbox WHERE status = 'sending'")
        return {(str(key), int(attempts)) for key, attempts in rows}
    finally:
        conn.close()


class Site:
    """The newsroom's feeds, with new stories published between rounds."""

    def __init__(self, room: Newsroom, killer: Killer, rng: random.Random) -> None:
        self.room, self.killer, self.rng = room, killer, rng
        self.paths = [f"/feeds/{n}.xml" for n in range(FEEDS)]
        self.seed = 0
        for path in self.paths:
            self.publish(path, 3)

    def publish(self, path: str, count: int) -> None:
        for published in self.room.publish(path, count, seed=self.seed):
            self.room.set_fault(published.path, KillOnServe(self.killer))
        self.seed += count

    def more_news(self) -> None:
        for path in self.rng.sample(self.paths, self.rng.randint(2, 4)):
            self.publish(path, self.rng.randint(1, 2))

    def offered(self) -> set[str]:
        return {e.link for path in self.paths for e in self.room.entries(path) if e.link}


def write_config(folder: Path, site: Site, rx: Receiver) -> Path:
    (folder / "key.j2").write_text(KEY_TEMPLATE, encoding="utf-8")
    feeds = "\n".join(
        f"  - {{name: F{n}, url: '{site.room.url(path)}'}}" for n, path in enumerate(site.paths)
    )
    path = folder / "monitor.yaml"
    path.write_text(
        "database: state/m.db\nheartbeat: state/heartbeat\nworkers: 0\n"
        "defaults: {interval: 60s, jitter: 0s, timeout: 5s}\n"
        f"channels:\n  desk: {{url: '{rx.url('json', '/desk')}', template: key.j2, timeout: 5s}}\n"
        f"topics:\n  - {{name: cities, query: '{QUERY}', notify: [desk]}}\n"
        f"feeds:\n{feeds}\n",
        encoding="utf-8",
    )
    return path


def test_sigkill_at_random_moments_loses_no_item_and_no_alert(tmp_path: Path) -> None:
    rng = random.Random(20260406)
    killer = Killer()
    copies: list[tuple[str | None, int]] = []
    copies_lock = threading.Lock()

    def on_request(got: Received, when: str) -> None:
        if when == "before":
            with copies_lock:
                copies.append((got.key, got.attempt))
        killer.event(f"alert-{when}")

    with Newsroom() as room, Receiver(on_request=on_request) as rx, worker(tmp_path) as w:
        site = Site(room, killer, rng)
        config = write_config(tmp_path, site, rx)
        db = tmp_path / "state" / "m.db"
        epoch = utc_iso(datetime.now(UTC))
        args = ["run", "--config", str(config), "--time-scale", "120", "--time-epoch", str(epoch)]
        unrecorded: set[tuple[str, int]] = set()

        for _ in range(ROUNDS):
            site.more_news()
            kind, most = rng.choice(TRIGGERS)
            plan = Plan(kind, rng.randint(1, most))
            code, lines = w.run(args, killer, plan, lambda line: None)
            assert code == -signal.SIGKILL, "".join(lines[-20:])
            assert integrity(db) == "ok"
            unrecorded |= unfinished_claims(db)

        # A last run, undisturbed, until everything offered is stored and every alert is out.
        offered = site.offered()
        conn = sqlite3.connect(db)
        stopped = False

        def stop_when_done(line: str) -> None:
            nonlocal stopped
            if stopped:
                return
            stored = {url for (url,) in conn.execute("SELECT url FROM items")}
            waiting = conn.execute(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
            ).fetchone()[0]
            if offered <= stored and waiting == 0:
                stopped = True
                os.kill(w.pid, signal.SIGTERM)

        code, lines = w.run(args, killer, None, stop_when_done)
        assert code == 0 and stopped, "".join(lines[-30:])
        stored = {url for (url,) in conn.execute("SELECT url FROM items")}
        rows = {
            key: (status, attempts)
            for key, status, attempts in conn.execute("SELECT key, status, attempts FROM outbox")
        }
        # Regrouping may empty a development opened in the same poll, before it was alerted:
        # every development holding articles must have been alerted.
        holding = {r for (r,) in conn.execute("SELECT id FROM developments WHERE items > 0")}
        alerted = [r for (r,) in conn.execute("SELECT development_id FROM outbox")]
        conn.close()
        assert integrity(db) == "ok"

    assert offered <= stored and len(stored) == len(offered)  # nothing missing, nothing extra
    assert rows and {status for status, _ in rows.values()} == {"sent"}
    # one alert per development, none lost before the outbox
    assert holding <= set(alerted) and len(alerted) == len(set(alerted))
    keys = {key for key, _ in copies}
    assert keys == set(rows)  # every alert was delivered
    assert len(copies) == len(set(copies))  # one claim never sent twice
    recorded = {(key, attempts) for key, (_, attempts) in rows.items()}
    assert recorded <= set(copies)
    doubles = set(copies) - recorded
    assert doubles <= unrecorded, f"sent twice outside the window: {doubles - unrecorded}"
    assert doubles, "no kill landed between a send and its record: the window went untested"
    # The kills did come at every kind of moment.
    assert killer.fired["alert-before"] + killer.fired["alert-after"] >= 2, killer.fired
    assert killer.fired["article"] >= 1 and killer.fired["poll"] >= 1, killer.fired


def test_cli_reads_while_the_daemon_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`feeds`, `items`, `search` and `status` run while `monitor run` stores new items."""
    with Newsroom() as room:
        paths = [f"/feeds/{n}.xml" for n in range(8)]
        seed = 0
        for path in paths:
            room.publish(path, 2, seed=seed)
            seed += 2
        feeds = "\n".join(f"  - {{name: F{n}, url: '{room.url(p)}'}}" for n, p in enumerate(paths))
        config = tmp_path / "monitor.yaml"
        config.write_text(
            "database: state/m.db\nheartbeat: state/heartbeat\nworkers: 0\n"
            "http: '203.0.113.1:9'\n"  # not an address of this host: `--http` must win
            "defaults: {interval: 60s, jitter: 0s}\n"
            f"topics:\n  - {{name: cities, query: '{QUERY}'}}\nfeeds:\n{feeds}\n",
            encoding="utf-8",
        )
        launch = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        proc = subprocess.Popen(
            [*launch, "--http", "127.0.0.1:0", "--time-scale", "60"],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=tmp_path,
        )
        assert proc.stderr is not None
        log: IO[str] = proc.stderr
        seen: list[str] = []

        def wait_for_new_items() -> None:
            """Until the daemon logs a poll that stored new items."""
            for line in log:
                seen.append(line)
                if "poll feed=" in line and " new=0 " not in line:
                    return
            raise AssertionError("the daemon exited:\n" + "".join(seen[-20:]))

        try:
            outputs = []
            for round_no in range(6):
                wait_for_new_items()
                for path in rng_paths(paths, round_no):
                    room.publish(path, 3, seed=seed)  # keep it writing while we read
                    seed += 3
                for command in (
                    ["feeds"],
                    ["items", "--json", "--limit", "500"],
                    ["search", "--json", QUERY],
                    ["status", "--json"],
                ):
                    assert cli([*command, "--config", str(config)]) == 0, command
                    captured = capsys.readouterr()
                    outputs.append(captured.out + captured.err)
            status = json.loads(outputs[-1])
            assert status["running"] and status["http"].startswith("127.0.0.1:")
            # Each logged poll was committed before its line was written; how many polls ran
            # by now depends on the machine's speed, so count what the log reported.
            stored = sum(int(n) for n in re.findall(r"poll feed=.* new=(\d+) ", "".join(seen)))
            assert stored >= 12  # six polls with new items: first polls store 2, later ones 3
            assert status["items_total"] >= stored
        finally:
            proc.send_signal(signal.SIGTERM)
            rest = proc.communicate(timeout=30)[1]
        assert proc.returncode == 0, "".join(seen[-20:]) + rest
        assert not any("locked" in text for text in outputs)
        assert not any("locked" in line for line in [*seen, rest])


def rng_paths(paths: list[str], round_no: int) -> list[str]:
    return random.Random(round_no).sample(paths, 3)
