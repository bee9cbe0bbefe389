"""Soak: `monitor run` against 1,000 loopback feeds for the equivalent of 24 hours, on a fast clock.

    python bench/soak.py [--feeds 1000] [--hours 24] [--scale 180] [--workers 2]

The daemon is the real command, `monitor run --time-scale SCALE`, in its own process (with its
extraction worker processes). Its clock runs SCALE times faster than real time and every interval,
back-off, Retry-After, lease and alert retry is waited out on that clock, so 24 hours take
24 h / SCALE of real time (8 minutes at 180x). Network timeouts stay real.

The newsroom runs in another process on 127.0.0.1 ... 127.0.0.10: 1,000 feeds (intervals of 10, 15,
30 and 60 minutes; English, Russian and Korean), each publishing a new story every few hours of
daemon time, and some misbehaving (HTTP 500 for good, 503 for a while then fine, 404, 410, slow).
Every couple of hours an "event" breaks: three outlets report it. The watch topic matches the events
(and only them), so each event is one development and one alert to a loopback `json://` receiver.
(A topic that matched a large share of all stories would measure the developments stage's merge
check, which compares every pair of a topic's recent developments on each matching poll.)

Prints: real and daemon time; polls done against polls scheduled; items stored against stories
offered (after publishing stops, the daemon runs one more longest interval so every feed is polled
again, then nothing offered may be missing); errors recorded (feeds failing, errors counted); alerts made / sent / received; poll
duration percentiles; peak and final memory (RSS) of the daemon's process tree (the daemon and its
workers) and of the newsroom; the database size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.alert_helpers import Receiver  # noqa: E402

HOSTS = 10
INTERVALS = ("10m", "15m", "30m", "60m")
INTERVAL_MINUTES = {"10m": 10, "15m": 15, "30m": 30, "60m": 60}
LANGS = ("en",) * 12 + ("ru",) * 5 + ("ko",) * 3
QUERY = "zephyrine"  # a made-up word only the event stories carry
REPORTS_PER_EVENT = 3


@dataclass(frozen=True)
class FeedPlan:
    index: int
    lang: str
    interval: str
    host: int
    fault: str | None  # broken, flapping, missing, gone, slow

    @property
    def path(self) -> str:
        return f"/{self.lang}/feed-{self.index}.xml"

    @property
    def name(self) -> str:
        return f"feed-{self.index:04d}"


def plan_feeds(count: int, rng: random.Random) -> list[FeedPlan]:
    faults = ["broken"] * 10 + ["flapping"] * 10 + ["missing"] * 5 + ["gone"] * 3 + ["slow"] * 5
    faults += [None] * max(0, count - len(faults))  # type: ignore[list-item]
    rng.shuffle(faults)
    return [
        FeedPlan(n, rng.choice(LANGS), rng.choice(INTERVALS), n % HOSTS, faults[n])
        for n in range(count)
    ]


# --------------------------------------------------------------------------- the newsroom process


def event_story(number: int, outlet: int) -> Any:
    """Report `outlet` of event `number`: the same event in words of its own outlet."""
    from tests.alert_helpers import distinct_text
    from tests.newsroom import make_story

    facts = distinct_text(number)
    return make_story(
        number,
        title=f"Zephyrine warning: {facts.split('.')[0]}",
        paragraphs=[f"A zephyrine warning was issued. {facts}", facts, f"Outlet {outlet} reports."],
        published=datetime.now(UTC),
    )


def newsroom_process(
    conn: Connection,
    feeds: list[FeedPlan],
    story_every: float,
    event_every: float,
    initial: int,
) -> None:
    """Serve the feeds; every `story_every` real seconds each feed gets a new story, and every
    `event_every` seconds an event story appears on REPORTS_PER_EVENT feeds."""
    from tests.newsroom import Delay, Fault, Newsroom, Status, Times

    faults: dict[str, Callable[[], Fault]] = {
        "broken": lambda: Status(500),
        "flapping": lambda: Times(Status(503), 6),
        "missing": lambda: Status(404),
        "gone": lambda: Status(410),
        "slow": lambda: Delay(1.5),
    }
    with Newsroom(hosts=HOSTS, log_limit=0) as room:
        seeds = {f.index: f.index * 10_000 for f in feeds}
        for feed in feeds:
            room.publish(feed.path, initial, lang=feed.lang, seed=seeds[feed.index], host=feed.host)
            seeds[feed.index] += initial
            if feed.fault:
                room.set_fault(feed.path, faults[feed.fault]())
        conn.send({"urls": {f.index: room.url(f.path, f.host) for f in feeds}})
        published = initial * len(feeds)
        stop = threading.Event()

        def publisher() -> None:
            nonlocal published
            order = list(feeds)
            pause = story_every / len(order)  # one feed at a time, spread evenly
            next_at = time.monotonic()
            while not stop.is_set():
                for feed in order:
                    next_at += pause
                    if stop.wait(max(0.0, next_at - time.monotonic())):
                        return
                    room.publish(
                        feed.path, 1, lang=feed.lang, seed=seeds[feed.index], host=feed.host
                    )
                    seeds[feed.index] += 1
                    published += 1

        events = 0
        working = [f for f in feeds if f.fault is None]

        def reporter() -> None:
            nonlocal events, published
            rng = random.Random(7)
            while not stop.wait(event_every):
                events += 1
                for outlet, feed in enumerate(rng.sample(working, REPORTS_PER_EVENT)):
                    story = event_story(events, outlet)
                    path = f"/events/{events}/{outlet}"
                    entry = room.add_article(path, story, host=feed.host)
                    room.update_feed(feed.path, prepend=[entry])
                    published += 1

        threads = [threading.Thread(target=run, daemon=True) for run in (publisher, reporter)]
        for thread in threads:
            thread.start()
        while True:
            message = conn.recv()
            if message == "count":
                conn.send(published)
            elif message == "freeze":  # stop publishing; report what was offered
                stop.set()
                for thread in threads:
                    thread.join()
                offered = {
                    f.index: [e.link for e in room.entries(f.path)]
                    for f in feeds
                    if f.fault not in ("broken", "missing", "gone")
                }
                rss = rss_of([os.getpid()])
                conn.send(
                    {"published": published, "events": events, "offered": offered, "rss": rss}
                )
            elif message == "stop":
                return


# --------------------------------------------------------------------------- memory


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(p) for p in handle.read().split()]
        except OSError:
            pass
    return found


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children_of(current)
    return pids


def rss_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def role_of(pid: int, daemon: int) -> str:
    """The daemon, an extraction worker, or multiprocessing's resource tracker."""
    if pid == daemon:
        return "daemon"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command:
        return "forkserver"
    return "worker" if "multiprocessing" in command else "child"


@dataclass
class MemoryWatch:
    pid: int
    peak: int = 0
    last: int = 0
    processes: int = 0
    main_first: int = 0  # the daemon process alone, without its workers
    main_last: int = 0
    main_samples: list[int] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    # Per process of the tree: (what it is, peak RSS); and the split at the tree's peak.
    process_peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    at_peak: dict[int, int] = field(default_factory=dict)

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.wait(0.5):
            pids = tree(self.pid)
            each = {pid: rss_of([pid]) for pid in pids}
            rss = sum(each.values())
            for pid, value in each.items():
                role, peak = self.process_peaks.get(pid) or (role_of(pid, self.pid), 0)
                self.process_peaks[pid] = (role, max(peak, value))
            if rss > self.peak:
                self.at_peak = each
            self.main_last = rss_of([self.pid])
            self.main_first = self.main_first or self.main_last
            self.main_samples.append(self.main_last)
            if rss:
                self.last, self.processes = rss, len(pids)
                self.peak = max(self.peak, rss)
                self.samples.append((time.monotonic() - started, rss))


# --------------------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    folder: Path, feeds: list[FeedPlan], urls: dict[int, str], rx: Receiver, workers: int
) -> Path:
    lines = [
        "database: state/soak.db",
        "heartbeat: state/heartbeat",
        f"workers: {workers}",
        "log_level: WARNING",
        "defaults: {interval: 15m, timeout: 10s, jitter: 30s}",
        "fetch: {per_host: 4, max_connections: 40}",
        f"channels:\n  desk: '{rx.url('json', '/desk')}'",
        f"topics:\n  - {{name: cities, query: '{QUERY}', notify: [desk]}}",
        "feeds:",
    ]
    for feed in feeds:
        lines.append(
            f"  - {{name: {feed.name}, url: '{urls[feed.index]}', interval: {feed.interval}}}"
        )
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scrape(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def quantile(metrics: dict[str, float], q: float) -> float | None:
    """A quantile of the poll-duration histogram (upper bucket bound)."""
    buckets = sorted(
        (float(k.split("le=")[1].rstrip("}")), v)
        for k, v in metrics.items()
        if k.startswith("monitor_poll_duration_seconds_bucket")
    )
    total = metrics.get("monitor_poll_duration_seconds_count", 0)
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return None


def mb(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0, help="daemon time to simulate")
    parser.add_argument("--scale", type=float, default=180.0, help="daemon seconds per real second")
    parser.add_argument(
        "--story-every", type=float, default=6.0, help="hours between a feed's stories"
    )
    parser.add_argument("--event-every", type=float, default=2.0, help="hours between events")
    parser.add_argument("--initial", type=int, default=2, help="stories per feed at the start")
    parser.add_argument("--workers", type=int, default=2, help="extraction worker processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--keep", help="work in this folder and keep it (database, log)")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    feeds = plan_feeds(args.feeds, rng)
    real_seconds = args.hours * 3600 / args.scale
    story_every_real = args.story_every * 3600 / args.scale
    event_every_real = args.event_every * 3600 / args.scale
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    room = context.Process(
        target=newsroom_process,
        args=(theirs, feeds, story_every_real, event_every_real, args.initial),
        daemon=True,
    )
    room.start()
    urls = ours.recv()["urls"]
    print(
        f"soak: {len(feeds)} feeds on {HOSTS} loopback hosts, {args.hours:g} h of daemon time at "
        f"{args.scale:g}x = {real_seconds / 60:.1f} min real; a story per feed every "
        f"{args.story_every:g} h; {args.workers} extraction workers",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, Receiver() as rx:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        config = write_config(folder, feeds, urls, rx, args.workers)
        port = free_port()
        log_path = folder / "daemon.log"
        started = time.monotonic()
        epoch = datetime.now(UTC)
        with open(log_path, "w", encoding="utf-8") as log:
            # SOAK_PROFILE="-m cProfile -o daemon.prof" profiles the daemon's main thread.
            python = [sys.executable, *os.environ.get("SOAK_PROFILE", "").split()]
            scale = ["--time-scale", f"{args.scale:g}", "--time-epoch", epoch.isoformat()]
            scale += ["--http", f"127.0.0.1:{port}"]
            daemon = subprocess.Popen(
                [*python, "-m", "monitor", "run", "--config", str(config), *scale],
                stderr=log,
                cwd=folder,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            watch = MemoryWatch(daemon.pid)
            watcher = threading.Thread(target=watch.run, daemon=True)
            watcher.start()
            report_every = max(10.0, real_seconds / 12)
            deadline = started + real_seconds
            next_report = started + report_every
            try:
                while (now := time.monotonic()) < deadline:
                    if daemon.poll() is not None:
                        raise SystemExit(f"the daemon exited early; see {log_path}")
                    time.sleep(min(1.0, deadline - now))
                    if time.monotonic() >= next_report:
                        next_report += report_every
                        progress(port, watch, started, args.scale)
                ours.send("freeze")
                final_room = ours.recv()
                frozen = epoch + (datetime.now(UTC) - epoch) * args.scale  # on the daemon's clock
                waited = settle(folder / "state" / "soak.db", frozen, args.scale, daemon)
                print(f"  publishing stopped; every working feed polled again {waited:.0f} s later")
                metrics = scrape(port)
                hours = (datetime.now(UTC) - epoch).total_seconds() * args.scale / 3600
                final_rss, peak_rss, processes = watch.last, watch.peak, watch.processes
                half = watch.main_samples[len(watch.main_samples) // 2]
                main_rss = (watch.main_first, half, watch.main_last)
            finally:
                watch.stop.set()
                daemon.send_signal(signal.SIGTERM)
                code = daemon.wait(timeout=120)
            elapsed = time.monotonic() - started
        figures = collect(
            folder / "state" / "soak.db", feeds, final_room, metrics, rx, hours, elapsed
        )
        figures.update(
            exit_code=code,
            daemon_rss_peak=peak_rss,
            daemon_rss_final=final_rss,
            daemon_processes=processes,
            daemon_main_rss_first=main_rss[0],
            daemon_main_rss_half=main_rss[1],
            daemon_main_rss_final=main_rss[2],
            newsroom_rss=final_room["rss"],
            process_peaks={
                f"{role} {pid}": peak for pid, (role, peak) in sorted(watch.process_peaks.items())
            },
            tree_at_peak={
                f"{watch.process_peaks[pid][0]} {pid}": value
                for pid, value in sorted(watch.at_peak.items())
            },
            database_bytes=(folder / "state" / "soak.db").stat().st_size
            + _size(folder / "state" / "soak.db-wal"),
            log_warnings=_count_warnings(log_path),
            daemon_hours=hours,
            scale=args.scale,
        )
    ours.send("stop")
    room.join(timeout=30)
    print_figures(figures)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))


def settle(db: Path, frozen: datetime, scale: float, daemon: subprocess.Popen[bytes]) -> float:
    """After publishing stopped: wait until every working feed was polled again (at most two of
    the longest intervals), so a story published at the very end is not counted as missing."""
    started = time.monotonic()
    limit = 2 * (max(INTERVAL_MINUTES.values()) + 5) * 60 / scale
    # A poll that fetched just before the freeze may record its time just after it: a margin.
    stamp = (frozen + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        while time.monotonic() - started < limit and daemon.poll() is None:
            behind = conn.execute(
                "SELECT count(*) FROM feeds WHERE status = 'ok' AND last_fetch < ?", (stamp,)
            ).fetchone()[0]
            if not behind:
                break
            time.sleep(0.5)
    finally:
        conn.close()
    return time.monotonic() - started


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _count_warnings(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        for level in ("WARNING", "ERROR", "CRITICAL", "Traceback"):
            if f" {level} " in f" {line} ":
                counts[level] = counts.get(level, 0) + 1
    return counts


def progress(port: int, watch: MemoryWatch, started: float, scale: float) -> None:
    try:
        m = scrape(port)
    except OSError:
        return
    real = time.monotonic() - started
    polls = sum(
        v for k, v in m.items() if k.startswith("monitor_polls_total") and "skipped" not in k
    )
    print(
        f"  {real / 60:5.1f} min real = {real * scale / 3600:5.1f} h: polls {polls:8.0f}, "
        f"items {m.get('monitor_items_stored_total', 0):6.0f}, "
        f"alerts sent {m.get('monitor_alerts_sent_total', 0):4.0f}, "
        f"RSS {mb(watch.last)} ({watch.processes} processes), peak {mb(watch.peak)}",
        flush=True,
    )


def collect(
    db: Path,
    feeds: list[FeedPlan],
    room: dict[str, Any],
    metrics: dict[str, float],
    rx: Receiver,
    hours: float,
    elapsed: float,
) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        stored = {url for (url,) in conn.execute("SELECT url FROM items")}
        items = len(stored)
        healthy = {name for (name,) in conn.execute("SELECT name FROM feeds WHERE status = 'ok'")}
        feed_rows = conn.execute(
            "SELECT status, count(*), sum(error_count), sum(polls) FROM feeds GROUP BY status"
        ).fetchall()
        outbox = dict(
            conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        )
        errors_recorded = conn.execute(
            "SELECT count(*) FROM feeds WHERE last_error IS NOT NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    # What feeds that work at the end offered (a flapping feed may still be failing).
    names = {f.index: f.name for f in feeds}
    offered = {
        url
        for index, links in room["offered"].items()
        if names[int(index)] in healthy
        for url in links
    }
    # At the nominal interval, from the start until the last scrape.
    scheduled = sum(hours * 60 / INTERVAL_MINUTES[f.interval] for f in feeds)
    polls = {
        k.split("status=")[1].rstrip("}"): v
        for k, v in metrics.items()
        if k.startswith("monitor_polls_total")
    }
    return {
        "real_minutes": elapsed / 60,
        "feeds": len(feeds),
        "polls_scheduled": round(scheduled),
        "polls": polls,
        "polls_done": sum(v for k, v in polls.items() if k != "skipped"),
        "fetch_errors": metrics.get("monitor_fetch_errors_total", 0),
        "feeds_by_status": {row[0]: row[1] for row in feed_rows},
        "feeds_with_errors_recorded": errors_recorded,
        "stories_published": room["published"],
        "events": room["events"],
        "stories_offered_by_healthy_feeds": len(offered),
        "items_stored": items,
        "offered_but_missing": len(offered - stored),
        "missing_examples": sorted(offered - stored)[:5],
        "items_stored_metric": metrics.get("monitor_items_stored_total", 0),
        "alerts_outbox": outbox,
        "alerts_sent_metric": metrics.get("monitor_alerts_sent_total", 0),
        "alerts_received": len(rx.messages),
        "poll_p50_s": quantile(metrics, 0.5),
        "poll_p95_s": quantile(metrics, 0.95),
        "poll_p99_s": quantile(metrics, 0.99),
    }


def print_figures(f: dict[str, Any]) -> None:
    print()
    print(f"daemon time simulated   {f['daemon_hours']:.1f} h in {f['real_minutes']:.1f} min real")
    print(
        f"polls                   {f['polls_done']:.0f} done of {f['polls_scheduled']} scheduled "
        f"({100 * f['polls_done'] / max(1, f['polls_scheduled']):.0f}%): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(f["polls"].items()))
    )
    print(
        f"poll duration           p50 <= {f['poll_p50_s']} s, p95 <= {f['poll_p95_s']} s, "
        f"p99 <= {f['poll_p99_s']} s"
    )
    print(
        f"items stored            {f['items_stored']} "
        f"({f['stories_published']} stories published; of the {f['stories_offered_by_healthy_feeds']} "
        f"that feeds working at the end list, {f['offered_but_missing']} missing)"
    )
    print(
        f"errors recorded         {f['fetch_errors']:.0f} failed polls; "
        f"{f['feeds_with_errors_recorded']} feeds with an error on record; "
        f"feeds now: {f['feeds_by_status']}"
    )
    print(
        f"alerts                  {f['events']} events; outbox {f['alerts_outbox']}; "
        f"sent {f['alerts_sent_metric']:.0f}; received {f['alerts_received']}"
    )
    print(
        f"memory (daemon tree)    peak {mb(f['daemon_rss_peak'])}, final {mb(f['daemon_rss_final'])} "
        f"({f['daemon_processes']} processes); the daemon process alone "
        f"{mb(f['daemon_main_rss_first'])} at the first sample, {mb(f['daemon_main_rss_half'])} "
        f"half-way, {mb(f['daemon_main_rss_final'])} at the end; "
        f"newsroom {mb(f['newsroom_rss'])}"
    )
    print(
        "  per process, peak    "
        + ", ".join(f"{name} {mb(value)}" for name, value in f["process_peaks"].items())
    )
    print(
        "  at the tree's peak   "
        + ", ".join(f"{name} {mb(value)}" for name, value in f["tree_at_peak"].items())
    )
    if f["missing_examples"]:
        print(f"  missing, e.g.         {', '.join(f['missing_examples'])}")
    print(f"database                {f['database_bytes'] / 1e6:.1f} MB")
    print(f"log                     {f['log_warnings']}; daemon exit code {f['exit_code']}")


if __name__ == "__main__":
    main()
