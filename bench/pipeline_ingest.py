"""Ingest benchmark (issue 7, benchmark 1): 2,000 real articles in 40 feeds, 50 topics, end to end.

    python bench/pipeline_ingest.py [--articles 2000] [--feeds 40] [--hosts 10] [--workers N]
                                    [--profile FILE]

The 91 real pages of ../shared/data/extraction-dev are served, repeated under distinct URLs to make
2,000 articles, by a newsroom in its own process on ten loopback hosts; 40 RSS feeds of 50 entries
list them. One `monitor once` pass (open_pipeline + run_once, default fetch limits, extraction in
a process pool on every core) fetches every feed and page, extracts, matches 50 topics, clusters
the matches into developments, stores everything and queues the alerts.

Printed: articles/s end to end, CPU of the main process and of the extraction workers; then
`trafilatura.extract` alone on the same 2,000 pages on every core (a process pool, pages already in
memory: the hardware's limit for this work) and the ratio end-to-end / alone (target >= 0.8). That
baseline is trafilatura as published: its workers never import monitor.extract, which swaps in our
Python twins of trafilatura's XPaths (monitor.xpathfast). For reference, the same with the twins,
and our own extraction step (`monitor.extract.extract_page`) alone the same way. The ratio is
also given by CPU (CPU per page alone / our CPU per article), steadier on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    DATA_DIR,
    Meter,
    RoomProcess,
    Usage,
    load_average,
    profiled,
    thread_cpu,
    write_config,
)
from monitor.config import Config  # noqa: E402
from monitor.service import open_pipeline  # noqa: E402
from monitor.store import Store  # noqa: E402

TARGET_RATIO = 0.8

# 50 watch topics a newsroom might keep on this mix of news (tech, business, sport, politics,
# science, culture), in the list form and in the query language, some with Russian and Korean terms.
LIST_TOPICS: list[tuple[str, list[list[str]], list[str]]] = [
    (
        "electric-cars",
        [["electric", "ev", "электромобиль*"], ["car", "cars", "vehicle*", "suv*"]],
        [],
    ),
    ("boeing-orders", [["boeing", "airbus"], ["order*", "deliver*", "jets", "aircraft"]], []),
    ("black-friday", [["black friday", "cyber monday"], ["deal*", "sale*", "discount*"]], []),
    ("nfl", [["nfl", "quarterback", "touchdown"]], []),
    ("tennis", [["tennis", "davis cup", "wimbledon"]], []),
    ("football", [["premier league", "chelsea", "arsenal", "football", "футбол"]], ["nfl"]),
    ("space", [["nasa", "spacex", "moon", "orbit*", "космос"]], []),
    ("universe", [["universe", "galaxy", "galaxies", "cosmolog*"]], []),
    ("cloud-gaming", [["stadia", "xcloud", "cloud gaming", "game streaming"]], []),
    ("privacy", [["privacy", "personal data", "gdpr"], ["law*", "regulat*", "fine*"]], []),
    (
        "antitrust",
        [["antitrust", "attorney general", "monopol*"], ["google", "facebook", "tech"]],
        [],
    ),
    ("retail-earnings", [["earnings", "quarterly", "revenue"], ["retail*", "store*", "sales"]], []),
    ("home-improvement", [["home depot", "lowe's", "home improvement"]], []),
    ("music-tours", [["tour", "concert*", "album"], ["band", "brothers", "singer"]], []),
    (
        "healthcare-it",
        [["patient*", "hospital*", "health"], ["digital", "software", "record*"]],
        [],
    ),
    ("ceo-changes", [["ceo", "chief executive"], ["appoint*", "named", "names", "steps down"]], []),
    ("advertising", [["advertis*", "ad platform", "native ad*"]], []),
    ("governors", [["governor", "state legislature"], ["drug*", "meth", "campaign"]], []),
    ("royal-family", [["prince", "royal", "queen", "monarchy"]], []),
    ("china-trade", [["china", "chinese", "beijing", "китай*", "중국"], ["trade", "tariff*"]], []),
    ("us-politics", [["trump", "congress", "senate", "democrats", "republicans"]], []),
    ("impeachment", [["impeach*"], ["trump", "house", "hearing*"]], []),
    ("police-shootings", [["police", "officer*"], ["shoot*", "shot", "video"]], []),
    ("swimming", [["swim*", "relay", "freestyle"]], []),
    ("motorsport", [["nascar", "formula", "grand prix", "corrida"]], []),
    ("cycling", [["bike", "bicycle*", "cycling"]], []),
    ("architecture", [["architect*", "museum", "exhibition", "design"]], []),
    ("theater", [["theater", "theatre", "stage", "performance"], ["review", "tale", "play"]], []),
    ("water", [["water", "drinking", "hydration"]], ["waterfront"]),
    ("parenting", [["children", "kids", "parents", "crianças"]], []),
    ("smartphones", [["iphone", "android", "smartphone*", "phone"]], []),
    ("ai", [["artificial intelligence", "machine learning", "ai", "인공지능"]], []),
    ("cybersecurity", [["hack*", "breach*", "malware", "ransomware", "security"]], []),
    ("climate", [["climate", "emission*", "carbon", "климат*"]], []),
    ("energy", [["oil", "gas", "energy", "нефть", "нефти"]], []),
    ("markets", [["stock*", "shares", "dow", "nasdaq"], ["fell", "rose", "market*"]], []),
]
QUERY_TOPICS: list[tuple[str, str]] = [
    ("audi-etron", '"e-tron" OR (audi AND electric)'),
    ("vw-concepts", "(volkswagen OR vw) AND (concept OR vizzion OR id*)"),
    ("emirates", "emirates AND (boeing OR order*)"),
    ("stadia-launch", "stadia AND NEAR(launch* google, 10)"),
    ("browns", "browns AND (rudolph OR garrett)"),
    ("argentina", "argentina AND (tennis OR cup OR won)"),
    ("south-dakota", '"south dakota" AND (meth OR campaign OR governor)'),
    ("new-york-ag", '"attorney general" AND ("new york" OR state)'),
    ("florida-man", '"florida man"'),
    ("doobie", "doobie*"),
    ("korea", "(korea* OR 한국 OR 북한 OR корея*) AND NOT football"),
    ("russia", "russia* OR россия OR moscow OR kremlin OR putin"),
    ("europe-tech", "(europe* OR eu) AND (tech* OR software OR digital)"),
    ("title-review", "title:(review OR reviews)"),
]


def topics_yaml(count: int) -> list[str]:
    """The first `count` topics (and a channel, so alerts are queued) as YAML lines."""
    if count <= 0:
        return []
    lines = ["channels:", "  bench: 'json://127.0.0.1:9/never-sent'", "topics:"]
    names = [n for n, _, _ in LIST_TOPICS] + [n for n, _ in QUERY_TOPICS]
    wanted = set(names[:count])
    for name, groups, none in LIST_TOPICS:
        if name not in wanted:
            continue
        lines += [f"  - name: {name}", "    notify: [bench]", "    all:"]
        lines += [f"      - {_yaml_list(g)}" for g in groups]
        if none:
            lines.append(f"    none: {_yaml_list(none)}")
    for name, query in QUERY_TOPICS:
        if name not in wanted:
            continue
        lines += [f"  - name: {name}", "    notify: [bench]", f"    query: {_quote(query)}"]
    return lines


def _yaml_list(terms: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(t) for t in terms) + "]"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------- the newsroom side


def serve_corpus(room: Any, articles: int, feeds: int) -> dict[str, Any]:
    """Runs in the newsroom process: pages under distinct URLs on every host, and the feeds."""
    from tests.newsroom import Entry
    from tests.newsroom_content import load_real_pages

    pages = load_real_pages(DATA_DIR)
    hosts = len(room.base_urls)
    now = datetime.now(UTC)  # recent, so the matches make alerts (they have a maximum age)
    per_feed: list[list[Any]] = [[] for _ in range(feeds)]
    for k in range(articles):
        page = pages[k % len(pages)]
        path = f"/r{k // len(pages)}{page.path}"
        room.add_page(path, page.html)
        url = room.url(path, k % hosts)
        entry = Entry(title=page.title, link=url, guid=url, published=now - timedelta(minutes=k))
        per_feed[k % feeds].append(entry)
    feed_urls = [
        room.add_feed(f"/ingest/feed-{n}.xml", items, title=f"Real pages {n}")
        for n, items in enumerate(per_feed)
    ]
    return {"feeds": feed_urls, "pages": len(pages)}


# ---------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class IngestResult:
    usage: Usage
    new: int
    statuses: Counter[str]
    sources: Counter[str]
    matches: int
    developments: int
    alerts: int
    writer_cpu: float  # CPU seconds of the writer thread (store, cluster, alerts) during the pass
    cache: str  # what the writer's clustering memory held at the end
    threads: dict[str, float]  # CPU seconds per kind of thread of the main process, in the pass


def ingest(config: Config, workers: int | None, profile: Path | None) -> IngestResult:
    meter = Meter()
    title = f"news-monitor, ingest pass ({len(config.feeds)} feeds)"
    with profiled(profile, title, children=True), meter.span() as whole:
        outcomes, polled, writer_cpu, cache, threads, startup = asyncio.run(
            _ingest(config, workers, meter)
        )
    # Children's CPU is known once they are reaped, so it covers their whole life: take out what
    # they spent starting (imports), which the baseline below leaves out too.
    usage = Usage(polled.wall, polled.cpu_self, whole[0].cpu_children - startup)
    store = Store.open(config.database, create=False)
    try:
        sources = Counter(
            str(r[0]) for r in store.conn.execute("SELECT text_source FROM items").fetchall()
        )
        counts = [store.count(t) for t in ("matches", "developments", "outbox")]
    finally:
        store.close()
    statuses = Counter(o.status for o in outcomes)
    new = sum(o.new for o in outcomes)
    matches, developments, alerts = counts
    return IngestResult(
        usage, new, statuses, sources, matches, developments, alerts, writer_cpu, cache, threads
    )


async def _ingest(
    config: Config, workers: int | None, meter: Meter
) -> tuple[list[Any], Usage, float, str, dict[str, float], float]:
    async with open_pipeline(config, workers=workers) as pipeline:
        # A daemon starts its workers and loads the language model once; the pass is timed
        # after that, as the baseline's pools are warmed before they are timed.
        startup = await pipeline.extractor.ready()
        # The writer thread's own CPU clock, read on that thread before and after the pass.
        writer_start = await pipeline.writer.call(time.thread_time)
        threads_start = thread_cpu()
        with meter.span() as got:
            outcomes = await pipeline.run_once(config.feeds)
        threads_end = thread_cpu()
        writer_cpu = await pipeline.writer.call(time.thread_time) - writer_start
        threads = {k: v - threads_start.get(k, 0.0) for k, v in threads_end.items()}
        cache = pipeline.writer.store.cluster_cache()
        held = "off"
        if cache is not None:
            kept = cache.held()
            held = (
                f"{cache.loads} topic loads; holds {kept['topics']} topics, "
                f"{kept['live_items']} + {kept['spare_items']} items' features "
                f"(~{(kept['live_bytes'] + kept['spare_bytes']) / 2**20:.0f} MB), "
                f"{kept['terms']} document frequencies"
            )
    return outcomes, got[0], writer_cpu, held, threads, startup


def _extract_alone(html: bytes) -> float:
    """CPU seconds trafilatura.extract spent on one page (in a pool worker), as published:
    this worker never imports monitor.extract, which would swap in our XPath twins."""
    import trafilatura

    assert "monitor.extract" not in sys.modules, "the baseline must be stock trafilatura"
    started = time.process_time()
    trafilatura.extract(html, include_comments=False)
    return time.process_time() - started


def _extract_alone_twins(html: bytes) -> float:
    """`_extract_alone` with our Python twins of trafilatura's XPaths (monitor.xpathfast)."""
    import trafilatura
    import trafilatura.xpaths

    from monitor import xpathfast

    xpathfast.install(trafilatura.xpaths)
    started = time.process_time()
    trafilatura.extract(html, include_comments=False)
    return time.process_time() - started


def _extract_ours(task: tuple[bytes, str]) -> float:
    from monitor.extract import extract_page

    started = time.process_time()
    extract_page(task[0], task[1], "text/html; charset=utf-8")
    return time.process_time() - started


def _warm(_: int) -> int:
    import trafilatura  # noqa: F401

    import monitor.language

    monitor.language.warm_up()
    return 0


def on_every_core(pages: Sequence[Any], articles: int, kind: str) -> tuple[Usage, float]:
    """Extraction alone over `articles` pages (the corpus repeated), a process per core:
    wall time, and the CPU seconds the workers spent extracting."""
    tasks = [pages[k % len(pages)] for k in range(articles)]
    cores = os.cpu_count() or 1
    with mp.get_context("spawn").Pool(cores) as pool:
        pool.map(_warm, range(cores))  # start-up and imports are not extraction
        meter = Meter()
        with meter.span() as got:
            if kind == "ours":
                work = [(p.html, p.original_url) for p in tasks]
                cpu = sum(pool.imap_unordered(_extract_ours, work, chunksize=4))
            else:
                alone = _extract_alone if kind == "stock" else _extract_alone_twins
                cpu = sum(pool.imap_unordered(alone, [p.html for p in tasks], chunksize=4))
    return got[0], cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--topics", type=int, default=50, help="how many of the 50 topics")
    parser.add_argument("--workers", type=int, help="extraction processes (default: every core)")
    parser.add_argument("--profile", type=Path, help="write a py-spy profile of the pass here")
    parser.add_argument("--no-baseline", action="store_true", help="skip extraction alone")
    args = parser.parse_args(argv)
    if not DATA_DIR.exists():
        print(f"skipped: {DATA_DIR} not found")
        return 0
    print(
        f"ingest benchmark: {args.articles} articles in {args.feeds} feeds on {args.hosts} hosts, "
        f"{min(args.topics, len(LIST_TOPICS) + len(QUERY_TOPICS))} topics; {load_average()}"
    )
    with RoomProcess(args.hosts) as room, tempfile.TemporaryDirectory() as tmp:
        served = room.call("bench.pipeline_ingest:serve_corpus", args.articles, args.feeds)
        config = write_config(
            Path(tmp),
            [(f"feed {n}", url) for n, url in enumerate(served["feeds"])],
            # Every page is on loopback; the SSRF guard would refuse other hosts' links.
            top=["fetch: {allow_private_networks: true}", *topics_yaml(args.topics)],
        )
        result = ingest(config, args.workers, args.profile)
    report(result)
    if not args.no_baseline:
        baseline(result, args.articles)
    print(f"after: {load_average()}")
    return 0


def report(result: IngestResult) -> None:
    u = result.usage
    print(
        f"end to end: {result.new} articles in {u.wall:.2f}s = {result.new / u.wall:.1f} articles/s"
        f"  (CPU: main {u.cpu_self:.2f}s, extraction workers {u.cpu_children:.2f}s; "
        f"{1000 * u.cpu / max(result.new, 1):.1f} ms CPU per article)"
    )
    print(
        f"  writer thread: {result.writer_cpu:.2f}s CPU = "
        f"{1000 * result.writer_cpu / max(result.new, 1):.1f} ms per article; "
        f"clustering memory: {result.cache}"
    )
    per = sorted(result.threads.items(), key=lambda kv: -kv[1])
    print(
        "  main process CPU per article by thread: "
        + ", ".join(f"{name} {1000 * cpu / max(result.new, 1):.2f} ms" for name, cpu in per if cpu)
    )
    print(
        f"  feeds {dict(result.statuses)}; text from {dict(result.sources)}; "
        f"{result.matches} topic matches, {result.developments} developments, "
        f"{result.alerts} alerts queued"
    )


# The target is against trafilatura as published ("stock"); the other two are for reference.
BASELINES = (
    ("trafilatura.extract alone", "stock"),
    ("the same with our XPath twins", "twins"),
    ("our extract_page alone", "ours"),
)


def baseline(result: IngestResult, articles: int) -> None:
    from tests.newsroom_content import load_real_pages

    pages = load_real_pages(DATA_DIR)
    rate = result.new / result.usage.wall
    for label, kind in BASELINES:
        alone, cpu = on_every_core(pages, articles, kind)
        alone_rate = articles / alone.wall
        cpu_ratio = (cpu / articles) / (result.usage.cpu / max(result.new, 1))
        line = (
            f"{label}, {os.cpu_count()} processes: {articles} pages in {alone.wall:.2f}s = "
            f"{alone_rate:.1f} pages/s, {1000 * cpu / articles:.1f} ms CPU per page; "
            f"ratio end-to-end / alone = {rate / alone_rate:.2f} (by CPU per article "
            f"{cpu_ratio:.2f})"
        )
        if kind == "stock":
            verdict = "meets" if rate / alone_rate >= TARGET_RATIO else "misses"
            line += f" ({verdict} the {TARGET_RATIO} target)"
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())
