"""Polling benchmark: 1,000 feeds x 50 entries on ten loopback hosts; us beside the `reader` library.

    python bench/polling.py [--feeds 1000] [--entries 50] [--hosts 10] [--changed 0.1]
                            [--no-reader] [--no-httpx] [--only "304,same body"]
                            [--httpx-only] [--profile DIR]

The newsroom (tests/newsroom.py) runs in its own process on 127.0.0.1-127.0.0.10 (feed i on host
i mod 10), so per-host limits apply as across ten sites and its CPU is not counted as ours. Four
passes, each run by news-monitor (`monitor once`'s code path: open_pipeline + run_once, default
fetch limits, `fetch_article: false` so only feeds are measured) and then by reader
(`update_feeds_iter(workers=8, scheduled=False)`, the iterator behind `update_feeds`):

    first       every feed new: fetch, parse, store 50 entries each
    304         nothing changed; the server answers conditional requests with 304
    same body   nothing changed; the server ignores conditional requests (200, same body)
    changed     10% of the feeds have new entries (the rest answer 304)

Printed per pass and client: wall seconds, feeds/s, CPU seconds of this process (every thread)
plus its reaped worker processes, CPU ms per feed, and the ratios. As a reference floor, a plain
sequential loop of synchronous httpx requests with ETags polls the 304 pass too.

Feed polls take the Fetcher's lean path (monitor/fetch_lean.py); `--httpx-only` measures the same
passes with `Fetcher(lean=False)`, every request through httpx as before that path existed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Meter,
    RoomProcess,
    Usage,
    load_average,
    profiled,
    write_config,
)
from monitor.config import Config  # noqa: E402
from monitor.service import open_pipeline  # noqa: E402


@dataclass(frozen=True)
class PassResult:
    client: str
    label: str
    feeds: int
    usage: Usage
    outcome: str  # what the client reported, to check the pass did what it says

    @property
    def cpu_ms_per_feed(self) -> float:
        return 1000 * self.usage.cpu / self.feeds

    @property
    def feeds_per_s(self) -> float:
        return self.feeds / self.usage.wall

    def line(self) -> str:
        u = self.usage
        return (
            f"  {self.client:<8} {u.wall:7.2f}s wall {self.feeds_per_s:7.0f} feeds/s   "
            f"CPU {u.cpu:6.2f}s (main {u.cpu_self:.2f}, workers {u.cpu_children:.2f}) = "
            f"{self.cpu_ms_per_feed:5.2f} ms/feed   [{self.outcome}]"
        )


# ---------------------------------------------------------------------------- news-monitor


def ours(config: Config, label: str, profile: Path | None = None) -> PassResult:
    # Each pass starts with the collector's debts paid (unmeasured): otherwise a pass pays a full
    # collection for what an earlier pass, or reader in this same process, left behind.
    started = time.process_time()
    gc.collect()
    spent = 1000 * (time.process_time() - started)
    print(
        f"  (before it, unmeasured: a full gc pass, {spent:.0f} ms CPU over {len(gc.get_objects()):,} objects)"
    )
    meter = Meter()
    title = f"news-monitor, polling pass '{label}' ({len(config.feeds)} feeds)"
    with profiled(profile, title), meter.span() as whole:
        outcomes, polled = asyncio.run(_ours(config, meter))
    # Wall: the pass itself. CPU: the pass (every thread) plus worker processes, reaped at close.
    usage = Usage(polled.wall, polled.cpu_self, whole[0].cpu_children)
    return PassResult("monitor", label, len(config.feeds), usage, outcomes)


async def _ours(config: Config, meter: Meter) -> tuple[str, Usage]:
    async with open_pipeline(config) as pipeline:
        collections = [g["collections"] for g in gc.get_stats()]
        with meter.span() as got:
            results = await pipeline.run_once(config.feeds)
        collections = [
            g["collections"] - n for g, n in zip(gc.get_stats(), collections, strict=True)
        ]
    statuses = Counter(o.status for o in results)
    new, updated = sum(o.new for o in results), sum(o.updated for o in results)
    errors = [o.error for o in results if o.error]
    text = " ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + f"; new items {new}"
    if updated:
        text += f", updated {updated}"
    if errors:
        text += f"; e.g. {errors[0]}"
    text += f"; gc runs (gen 0/1/2) {'/'.join(map(str, collections))}"
    return text, got[0]


# ---------------------------------------------------------------------------- reader


def open_reader(path: Path, urls: Sequence[str]) -> Any:
    from reader import make_reader

    rdr = make_reader(str(path))
    for url in urls:
        rdr.add_feed(url)
    return rdr


def reader_pass(rdr: Any, label: str, feeds: int) -> PassResult:
    counts: Counter[str] = Counter()
    new = 0
    gc.collect()  # as for ours
    with Meter().span() as got:
        for result in rdr.update_feeds_iter(workers=8, scheduled=False):
            value = result.value
            if value is None:
                counts["not modified"] += 1
            elif isinstance(value, Exception):
                counts["error"] += 1
            else:
                counts["updated"] += 1
                new += value.new
    text = " ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"; new entries {new}"
    return PassResult("reader", label, feeds, got[0], text)


# ---------------------------------------------------------------------------- plain httpx loop


def httpx_loop(urls: Sequence[str], etags: dict[str, str], label: str) -> PassResult:
    """A sequential loop of httpx requests with ETags (and a body hash): the reference floor."""
    import httpx

    counts: Counter[int] = Counter()
    gc.collect()  # as for ours
    with httpx.Client(timeout=30) as client, Meter().span() as got:
        for url in urls:
            headers = {"If-None-Match": etags[url]} if url in etags else {}
            response = client.get(url, headers=headers)
            counts[response.status_code] += 1
            if response.status_code == 200:
                etags[url] = response.headers.get("etag", "")
                hashlib.sha256(response.content).hexdigest()
    text = " ".join(f"HTTP {k}: {v}" for k, v in sorted(counts.items()))
    return PassResult("httpx", label, len(urls), got[0], text)


# ---------------------------------------------------------------------------- passes


@dataclass(frozen=True)
class Pass:
    label: str
    prepare: Callable[[], None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--changed", type=float, default=0.1, help="share of feeds changed")
    parser.add_argument("--new-entries", type=int, default=5, help="new entries per change")
    parser.add_argument("--no-reader", action="store_true")
    parser.add_argument("--no-httpx", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated pass labels to measure")
    parser.add_argument(
        "--profile", type=Path, help="folder: py-spy profile of each of our passes, as text"
    )
    parser.add_argument(
        "--httpx-only",
        action="store_true",
        help="compare: feed polls through httpx too (Fetcher(lean=False)), as before the lean path",
    )
    args = parser.parse_args(argv)
    if args.httpx_only:
        import functools

        import monitor.service
        from monitor.fetch import Fetcher

        monitor.service.Fetcher = functools.partial(Fetcher, lean=False)  # type: ignore[attr-defined,assignment]
        print("Fetcher(lean=False): feed polls through httpx + httpcore")
    print(f"polling benchmark: {args.feeds} feeds x {args.entries} entries on {args.hosts} hosts")
    print(f"before: {load_average()}")
    with RoomProcess(args.hosts) as room, tempfile.TemporaryDirectory() as tmp:
        urls: list[str] = room.call("polling_feeds", args.feeds, args.entries)
        results = run_passes(args, room, urls, Path(tmp))
    print(f"after: {load_average()}")
    summarise(results)
    return 0


def run_passes(
    args: argparse.Namespace, room: RoomProcess, urls: list[str], tmp: Path
) -> list[PassResult]:
    config = write_config(
        tmp,
        [(f"feed {n}", url) for n, url in enumerate(urls)],
        feed_extra=["fetch_article: false"],
    )
    rdr = None if args.no_reader else open_reader(tmp / "reader.sqlite", urls)
    changed = urls[:: max(1, round(1 / args.changed))] if args.changed > 0 else []

    def change() -> None:
        room.call("set_conditional", urls, True)
        room.call("change_feeds", changed, args.new_entries, "n")

    passes = [
        Pass("first", lambda: None),
        Pass("304", lambda: None),
        Pass("same body", lambda: room.call("set_conditional", urls, False)),
        Pass("changed", change),
    ]
    wanted = {x.strip() for x in args.only.split(",") if x.strip()}
    results: list[PassResult] = []
    for step in passes:
        step.prepare()
        print(f"pass '{step.label}':")
        profile = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = args.profile / f"polling-{step.label.replace(' ', '-')}.txt"
        measure = _wanted(step, wanted)
        for result in _clients(step.label, config, rdr, len(urls), measure, profile):
            print(result.line())
            results.append(result)
        if step.label == "304" and not args.no_httpx:
            etags: dict[str, str] = {}
            httpx_loop(urls, etags, "populate")  # learn the ETags, unmeasured
            result = httpx_loop(urls, etags, step.label)
            print(result.line())
            results.append(result)
    if rdr is not None:
        rdr.close()
    return results


def _wanted(step: Pass, wanted: set[str]) -> bool:
    return not wanted or step.label in wanted or step.label == "first"


def _clients(
    label: str, config: Config, rdr: Any, feeds: int, measure: bool, profile: Path | None
) -> list[PassResult]:
    out = [ours(config, label, profile if measure else None)]
    if rdr is not None:
        out.append(reader_pass(rdr, label, feeds))
    return out if measure else []


def summarise(results: list[PassResult]) -> None:
    print("\nsummary (CPU ms per feed; throughput in feeds/s; ratio = monitor / reader):")
    print(f"  {'pass':<10} {'monitor':>20} {'reader':>20} {'throughput x':>13} {'CPU ÷':>7}")
    by = {(r.client, r.label): r for r in results}
    for label in dict.fromkeys(r.label for r in results):
        mine, theirs = by.get(("monitor", label)), by.get(("reader", label))
        if mine is None:
            continue
        row = f"  {label:<10} {mine.cpu_ms_per_feed:6.2f} ms {mine.feeds_per_s:6.0f}/s"
        if theirs is not None:
            speed = mine.feeds_per_s / theirs.feeds_per_s
            cpu = theirs.cpu_ms_per_feed / mine.cpu_ms_per_feed
            row += f"   {theirs.cpu_ms_per_feed:6.2f} ms {theirs.feeds_per_s:6.0f}/s"
            row += f"   {speed:11.2f}x {cpu:6.2f}x"
        print(row)
    floor = by.get(("httpx", "304"))
    if floor is not None:
        print(
            f"  plain sequential httpx loop, 304 pass: {floor.cpu_ms_per_feed:.2f} ms CPU/feed, "
            f"{floor.feeds_per_s:.0f} feeds/s"
        )


if __name__ == "__main__":
    raise SystemExit(main())
