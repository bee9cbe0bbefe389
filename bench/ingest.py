"""Ingest benchmark: real article pages through the whole pipeline, against a loopback newsroom.

    python bench/ingest.py [--feeds 3] [--unchanged 1000]

Prints: articles/s end to end for one pass over the 91 real pages of ../shared/data/extraction-dev
(served by a newsroom in a separate process, listed in a few feeds); the same pages through
trafilatura alone in one process, and the ratio; extraction F1 of what was stored against the ground
truth (the benchmark's shingle metric), beside trafilatura alone; wall and CPU time for a pass over
N unchanged feeds (all answered 304); peak memory (RSS) of this process and of its worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.extraction_metric import DATA_DIR, evaluate, load_dev_pages  # noqa: E402
from monitor.config import Config, load_config  # noqa: E402
from monitor.service import open_pipeline  # noqa: E402
from monitor.store import Store  # noqa: E402


def serve(conn: Connection, feeds: int, unchanged: int) -> None:
    """Run in a child process: the newsroom, so its CPU is not counted as ours."""
    from tests.newsroom import Entry, Newsroom

    with Newsroom() as room:
        corpus = room.serve_real_pages(DATA_DIR.parent, feeds=feeds)
        small: list[str] = []
        for n in range(unchanged):
            entries = [
                Entry(title=f"Feed {n} item {i}", guid=f"urn:bench:{n}:{i}", summary="Short text.")
                for i in range(10)
            ]
            small.append(room.add_feed(f"/small/{n}.xml", entries))
        conn.send({"real": list(corpus.feed_urls), "urls": dict(corpus.page_urls), "small": small})
        conn.recv()  # until told to stop


def write_config(folder: Path, feeds: dict[str, str], extra: str = "") -> Config:
    lines = ["database: monitor.db", "defaults: {timeout: 30s}", "fetch: {per_host: 8}", "feeds:"]
    for name, url in feeds.items():
        lines += (
            [f"  - name: '{name}'", f"    url: '{url}'", extra]
            if extra
            else [f"  - name: '{name}'", f"    url: '{url}'"]
        )
    path = folder / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


def cpu_seconds() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


async def one_pass(config: Config) -> tuple[int, float]:
    async with open_pipeline(config) as pipeline:
        started = time.perf_counter()
        outcomes = await pipeline.run_once(config.feeds)
        elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o.status not in ("ok", "unchanged")]
    if failed:
        print(f"  ! {len(failed)} feeds failed, e.g. {failed[0].feed}: {failed[0].error}")
    return sum(o.new for o in outcomes), elapsed


def stored_texts(config: Config, urls: dict[str, str]) -> dict[str, str]:
    store = Store.open(config.database, create=False)
    try:
        by_url = {r["url"]: r["text"] for r in store.recent_items(limit=100_000)}
    finally:
        store.close()
    return {page_id: by_url.get(url, "") for page_id, url in urls.items()}


def trafilatura_alone(pages: Sequence[Any]) -> tuple[float, dict[str, str]]:
    import trafilatura

    started = time.perf_counter()
    texts = {p.id: trafilatura.extract(p.html, include_comments=False) or "" for p in pages}
    return time.perf_counter() - started, texts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=3, help="feeds listing the real pages")
    parser.add_argument("--unchanged", type=int, default=1000, help="unchanged feeds to re-poll")
    args = parser.parse_args(argv)
    if not DATA_DIR.exists():
        print(f"skipped: {DATA_DIR} not found")
        return 0
    pages = list(load_dev_pages())
    truth = {p.id: p.body for p in pages}
    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=serve, args=(child, args.feeds, args.unchanged))
    server.start()
    served = parent.recv()
    try:
        run(args, pages, truth, served)
    finally:
        parent.send("stop")
        server.join(10)
    return 0


def run(
    args: argparse.Namespace, pages: list[Any], truth: dict[str, str], served: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "real").mkdir()
        config = write_config(
            folder / "real", {f"real {i}": u for i, u in enumerate(served["real"])}
        )
        cpu0 = cpu_seconds()
        new, elapsed = asyncio.run(one_pass(config))
        cpu1 = cpu_seconds()
        texts = stored_texts(config, served["urls"])
        alone_s, alone_texts = trafilatura_alone(pages)
        ours, base = evaluate(truth, texts), evaluate(truth, alone_texts)
        rate, alone_rate = new / elapsed, len(pages) / alone_s
        print(
            f"ingest: {new} articles in {elapsed:.2f}s = {rate:.1f} articles/s end to end "
            f"(CPU: main {cpu1[0] - cpu0[0]:.2f}s, workers {cpu1[1] - cpu0[1]:.2f}s)"
        )
        print(
            f"trafilatura alone, one process: {len(pages)} pages in {alone_s:.2f}s = "
            f"{alone_rate:.1f} pages/s; ratio end-to-end / alone = {rate / alone_rate:.2f}"
        )
        print(
            f"extraction F1 (stored text): {ours.f1:.4f} (P {ours.precision:.4f}, R {ours.recall:.4f})"
        )
        print(
            f"extraction F1 (trafilatura.extract alone): {base.f1:.4f} "
            f"(P {base.precision:.4f}, R {base.recall:.4f})"
        )

        (folder / "small").mkdir()
        small = write_config(
            folder / "small",
            {f"small {i}": u for i, u in enumerate(served["small"])},
            extra="    fetch_article: false",
        )
        asyncio.run(one_pass(small))  # first pass: store the entries
        cpu0 = cpu_seconds()
        _, elapsed = asyncio.run(one_pass(small))
        cpu1 = cpu_seconds()
        spent = (cpu1[0] - cpu0[0]) + (cpu1[1] - cpu0[1])
        count = len(served["small"])
        print(
            f"unchanged pass: {count} feeds in {elapsed:.2f}s wall, {spent:.2f}s CPU "
            f"= {1000 * spent / count:.2f} ms CPU per feed"
        )
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: main process {me:.0f} MB, largest worker {kids:.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
