"""Scale of the archive: 1,000,000 stored items — database size, search latency, matching cost.

    python bench/archive.py [--items 1000000] [--checkpoints 100000,300000,1000000]
                            [--db PATH] [--seed 1]

Builds the archive in the real schema (`Store.open`: items, sightings, the FTS5 history index)
with bulk inserts of synthetic multilingual news (English, Russian, Korean; the generator of
bench/match.py, 20-45 sentences an article). Generating and normalising the text for the index
runs on every core; the main process writes. At each checkpoint it prints:

    size        database bytes (after a WAL checkpoint) per 100k items, and per table
    search      median latency of `monitor search` (archive.search, the function the CLI
                calls: bm25 ranking, top 20, highlighted snippets) over three-term boolean queries
    matching    CPU µs per article to percolate new articles against 50 topics (must stay flat:
                the percolator never reads the archive), and ms to add one article to the
                archive index at this size

It takes a while (minutes per 100k items on 2 cores); the default test run never starts it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import load_average  # noqa: E402
from bench.match import CITIES, COUNTRIES, PEOPLE, THEMES, Writer, make_topics  # noqa: E402
from monitor.match import archive  # noqa: E402
from monitor.match.normalise import FTS5_TOKENIZE, normalise_tokens, tokenize  # noqa: E402
from monitor.match.percolate import MatchDoc, Matcher  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store.schema import MIGRATIONS, migrate  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
CHUNK = 2000  # items per worker task and per insert transaction
TARGET_MS = 100.0
# Three-term boolean queries, as a user would search the history (same language as topics).
QUERIES = [
    "russia AND troops AND NOT ukraine",
    "(kursk OR курск*) AND troops",
    '"north korea" AND missiles AND russia',
    "sanctions AND (china OR китай*)",
    "북한 AND 미사일 AND 러시아",
    "putin AND (erdogan OR macron)",
    "(earthquake OR землетрясени*) AND turkey",
    "nato AND drones AND poland",
    "title:ceasefire AND israel AND egypt",
    "NEAR(oil prices, 5) AND iran",
]


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    text: str
    language: str
    fetched: str
    fts_title: str
    fts_body: str


def article(writer: Writer) -> tuple[str, str, str]:
    lang = writer.language()
    title, _ = writer.article(lang)
    focus = {
        "C": writer.rng.sample(COUNTRIES, 2),
        "CITY": writer.rng.sample(CITIES, 1),
        "P": writer.rng.sample(PEOPLE, 1),
        "T": writer.rng.sample(THEMES, 1),
    }
    body = " ".join(writer.sentence(lang, focus) for _ in range(writer.rng.randint(20, 45)))
    return lang, title, body


def make_rows(task: tuple[int, int, int]) -> list[Row]:
    """Items start..start+count (a worker task): text and its normalised index form."""
    seed, start, count = task
    writer = Writer(random.Random(seed * 1_000_003 + start))
    rows = []
    for n in range(start, start + count):
        lang, title, body = article(writer)
        fetched = archive.format_ts(START + timedelta(seconds=30 * n))
        rows.append(
            Row(
                key=f"https://news.example/{lang}/{n}",
                title=title,
                text=body,
                language=lang,
                fetched=fetched,
                fts_title=normalise_tokens(tokenize(title)),
                fts_body=normalise_tokens(tokenize(body)),
            )
        )
    return rows


def insert(store: Store, rows: Sequence[Row], first_id: int) -> None:
    """One transaction: items, a sighting each, and the history index, as the store writes them."""
    conn = store.conn
    with store.transaction():
        conn.executemany(
            "INSERT INTO items (id, key, url, guid, title, text, text_source, summary, fetched, "
            "language, feed_id, entry_hash) VALUES (?, ?, ?, ?, ?, ?, 'page', ?, ?, ?, ?, ?)",
            (
                (
                    first_id + i,
                    r.key,
                    r.key,
                    r.key,
                    r.title,
                    r.text,
                    r.text[:200],
                    r.fetched,
                    r.language,
                    1 + (first_id + i) % 1000,
                    f"{first_id + i:016x}",
                )
                for i, r in enumerate(rows)
            ),
        )
        conn.executemany(
            "INSERT INTO sightings (item_id, feed_id, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            (
                (first_id + i, 1 + (first_id + i) % 1000, r.fetched, r.fetched)
                for i, r in enumerate(rows)
            ),
        )
        conn.executemany(
            f"INSERT INTO {archive.FTS_TABLE}(rowid, title, body) VALUES (?, ?, ?)",
            ((first_id + i, r.fts_title, r.fts_body) for i, r in enumerate(rows)),
        )


def make_feeds(store: Store) -> None:
    with store.transaction():
        store.conn.executemany(
            "INSERT OR IGNORE INTO feeds (id, name, url) VALUES (?, ?, ?)",
            ((n, f"feed {n}", f"https://news.example/feed/{n}.xml") for n in range(1, 1001)),
        )


# ---------------------------------------------------------------------------- measurements


def db_size(store: Store, path: Path) -> int:
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def table_sizes(store: Store) -> dict[str, int]:
    """Bytes per table (its indexes and FTS shadow tables folded in), when dbstat exists."""
    try:
        rows = store.conn.execute(
            "SELECT s.name, m.tbl_name, SUM(s.pgsize) FROM dbstat s "
            "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY s.name"
        ).fetchall()
    except Exception:
        return {}
    sizes: dict[str, int] = {}
    for name, table, size in rows:
        owner = str(table or name)
        if owner.startswith(archive.FTS_TABLE):
            owner = archive.FTS_TABLE
        sizes[owner] = sizes.get(owner, 0) + int(size)
    return sizes


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one call; CPU time is the steadier figure on a busy machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return 1000 * (time.perf_counter() - w0), 1000 * (time.process_time() - c0)


@dataclass(frozen=True)
class Mode:
    label: str
    sort: archive.Sort
    days: int | None  # --since, in days before the archive's newest item


# What `monitor search` runs: the default, --sort relevance, and both bounded with --since 30d.
MODES = [
    Mode("newest first (the default)", "newest", None),
    Mode("--sort relevance", "relevance", None),
    Mode("--sort relevance --since 30d", "relevance", 30),
    Mode("newest first --since 30d", "newest", 30),
]


@dataclass(frozen=True)
class Timing:
    walls: list[float]
    cpus: list[float]
    per_query: dict[str, tuple[float, float]]  # query: (median wall, median CPU)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.walls, n=10, method="inclusive")[-1]

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpus)


def search_ms(store: Store, repeat: int, items: int, mode: Mode) -> Timing:
    """archive.search (what `monitor search` calls, top 20, highlighted) over QUERIES."""
    now = START + timedelta(seconds=30 * items, minutes=1)  # just after the newest item
    since = timedelta(days=mode.days) if mode.days else None
    per_query: dict[str, tuple[float, float]] = {}
    walls, cpus = [], []
    for query in QUERIES:
        runs = [
            timed(
                lambda q=query: archive.search(  # type: ignore[misc]
                    store.conn, q, limit=20, sort=mode.sort, since=since, now=now
                )
            )
            for _ in range(repeat)
        ]
        per_query[query] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
        )
        walls += [r[0] for r in runs]
        cpus += [r[1] for r in runs]
    return Timing(walls, cpus, per_query)


def hit_counts(store: Store) -> dict[str, int]:
    from monitor.match.query import compile_query

    out = {}
    for query in QUERIES:
        fts = compile_query(query).fts
        row = store.conn.execute(
            f"SELECT count(*) FROM {archive.FTS_TABLE} WHERE {archive.FTS_TABLE} MATCH ?", (fts,)
        ).fetchone()
        out[query] = int(row[0])
    return out


def matching_cost(store: Store, matcher: Matcher, docs: list[MatchDoc]) -> tuple[float, float]:
    """(CPU µs per article to percolate against every topic, ms to index one article)."""
    c0 = time.process_time()
    for i in range(0, len(docs), 50):
        matcher.match(docs[i : i + 50])
    percolate_us = 1e6 * (time.process_time() - c0) / len(docs)
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    t0 = time.perf_counter()
    try:
        for n, doc in enumerate(docs):
            archive.index_item(conn, 10**9 + n, doc.title, doc.text)
        index_ms = 1000 * (time.perf_counter() - t0) / len(docs)
    finally:
        conn.execute("ROLLBACK")
    return percolate_us, index_ms


def probe_docs(seed: int, n: int = 500) -> list[MatchDoc]:
    writer = Writer(random.Random(seed + 77))
    docs = []
    for i in range(n):
        lang, title, body = article(writer)
        docs.append(MatchDoc(f"probe-{i}", title, body, lang))
    return docs


# The history index as schema step 2 made it before step 5: with its own copy of the text.
OLD_INDEX_DDL = (
    f"CREATE VIRTUAL TABLE {archive.FTS_TABLE} USING fts5(title, body, language UNINDEXED, "
    f'tokenize="{FTS5_TOKENIZE}")'
)


def time_migration(source: Path, count: int) -> None:
    """Time schema step 5 (rebuild the index without its copy) on the first `count` items."""
    print(f"migration benchmark: {count:,} items of {source}; {load_average()}")
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        conn = sqlite3.connect(Path(tmp) / "old.db", isolation_level=None)
        for number, step in enumerate(MIGRATIONS[:4], start=1):
            step(conn)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute(f"DROP TABLE {archive.FTS_TABLE}")
        conn.execute(OLD_INDEX_DDL)
        conn.execute("ATTACH ? AS src", (str(source),))
        conn.execute("BEGIN")
        conn.execute("INSERT INTO items SELECT * FROM src.items WHERE id <= ?", (count,))
        rows = conn.execute("SELECT id, title, text, language FROM items ORDER BY id")
        while chunk := rows.fetchmany(1000):
            conn.executemany(
                f"INSERT INTO {archive.FTS_TABLE}(rowid, title, body, language) "
                "VALUES (?, ?, ?, ?)",
                [(i, *archive.index_values(t, x), lang) for i, t, x, lang in chunk],
            )
        conn.execute("COMMIT")
        conn.execute("DETACH src")
        before = Path(tmp, "old.db").stat().st_size
        wall, cpu = timed(lambda: migrate(conn))
        conn.execute("VACUUM")
        after = Path(tmp, "old.db").stat().st_size
        conn.close()
    per = 100_000 / count
    print(
        f"  schema step 5: {wall / 1000:.1f} s wall, {cpu / 1000:.1f} s CPU = "
        f"{wall / 1000 * per:.0f} s per 100k items; file {before / 1e6:,.0f} MB -> "
        f"{after / 1e6:,.0f} MB after VACUUM; {load_average()}"
    )


# ---------------------------------------------------------------------------- main


def tasks(seed: int, total: int) -> Iterator[tuple[int, int, int]]:
    for start in range(0, total, CHUNK):
        yield seed, start, min(CHUNK, total - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", default="100000,300000,1000000")
    parser.add_argument("--db", type=Path, help="keep the database here (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each search query")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--time-migration",
        type=int,
        metavar="N",
        help="time the schema step that rebuilds the index, on the first N items of --db",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build --db and print sizes, time nothing"
    )
    parser.add_argument(
        "--measure-only", action="store_true", help="only measure the existing --db, add nothing"
    )
    args = parser.parse_args(argv)
    if args.time_migration:
        if args.db is None or not args.db.exists():
            parser.error("--time-migration needs an existing --db to copy items from")
        time_migration(args.db, args.time_migration)
        return 0
    if args.measure_only:
        if args.db is None or not args.db.exists():
            parser.error("--measure-only needs an existing --db")
        measure_only(args.db, args)
        return 0
    checkpoints = sorted({int(x) for x in args.checkpoints.split(",") if int(x) <= args.items})
    if args.items not in checkpoints:
        checkpoints.append(args.items)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "archive.db"
        run(path, args, checkpoints)
    return 0


def run(path: Path, args: argparse.Namespace, checkpoints: list[int]) -> None:
    print(f"archive benchmark: {args.items:,} items into {path}; {load_average()}")
    store = Store.open(path)
    # Build only: no fsync (a crash loses the build, not a user's data) and a larger page cache
    # for the index merges. The store's own settings apply again when it is reopened.
    store.conn.execute("PRAGMA synchronous = OFF")
    store.conn.execute("PRAGMA cache_size = -131072")
    make_feeds(store)
    matcher = Matcher(make_topics(50, random.Random(args.seed)))
    probes = probe_docs(args.seed)
    done, started, chars = 0, time.perf_counter(), 0
    workers = os.cpu_count() or 1
    with mp.get_context("spawn").Pool(workers) as pool:
        for rows in pool.imap(make_rows, tasks(args.seed, args.items), chunksize=1):
            insert(store, rows, done + 1)
            chars += sum(len(r.text) for r in rows)
            done += len(rows)
            if done % 50_000 == 0 or done in checkpoints:
                rate = done / (time.perf_counter() - started)
                print(f"  {done:>9,} items  {rate:6.0f} items/s  {load_average()}", flush=True)
            if done in checkpoints and args.build_only:
                size = db_size(store, path)
                print(
                    f"  database {size / 1e6:,.1f} MB = {size / done * 1e5 / 1e6:,.1f} MB per 100k"
                )
            elif done in checkpoints:
                report(store, path, done, chars, matcher, probes, args.repeat)
    took = time.perf_counter() - started
    print(
        f"built {done:,} items in {took / 60:.1f} min ({done / took:.0f} items/s); {load_average()}"
    )
    store.close()


def measure_only(path: Path, args: argparse.Namespace) -> None:
    store = Store.open(path, create=False)
    try:
        items = store.count("items")
        chars = int(store.conn.execute("SELECT sum(length(text)) FROM items").fetchone()[0] or 0)
        matcher = Matcher(make_topics(50, random.Random(args.seed)))
        print(f"archive benchmark (measure only): {items:,} items in {path}; {load_average()}")
        report(store, path, items, chars, matcher, probe_docs(args.seed), args.repeat)
    finally:
        store.close()


def report(
    store: Store,
    path: Path,
    items: int,
    chars: int,
    matcher: Matcher,
    probes: list[MatchDoc],
    repeat: int,
) -> None:
    size = db_size(store, path)
    per_100k = size / (items / 100_000)
    timings = {mode: search_ms(store, repeat, items, mode) for mode in MODES}
    hits = hit_counts(store)
    percolate_us, index_ms = matching_cost(store, matcher, probes)
    print(f"checkpoint {items:,} items (mean text {chars / items:,.0f} chars):")
    print(f"  database {size / 1e6:,.1f} MB = {per_100k / 1e6:,.1f} MB per 100k items")
    for table, bytes_ in sorted(table_sizes(store).items(), key=lambda kv: -kv[1])[:6]:
        print(f"    {table:<20} {bytes_ / 1e6:10,.1f} MB")
    print(f"  search (archive.search, top 20, {repeat} runs of each of {len(QUERIES)} queries):")
    for mode, t in timings.items():
        verdict = "meets" if t.median <= TARGET_MS else "misses"
        print(
            f"    median {t.median:7.1f} ms wall ({verdict} {TARGET_MS:.0f} ms), p90 {t.p90:7.1f} ms,"
            f" median {t.median_cpu:7.1f} ms CPU  {mode.label}"
        )
    print("  per query, median ms wall (CPU):" + "".join(f"  [{m.label}]" for m in MODES))
    for query in QUERIES:
        cells = "".join(
            f" {t.per_query[query][0]:8.1f} ({t.per_query[query][1]:6.1f})"
            for t in timings.values()
        )
        print(f"   {cells}  {hits[query]:>9,} hits  {query}")
    print(
        f"  matching: {percolate_us:.0f} µs CPU per article against 50 topics "
        f"({percolate_us / 50:.1f} µs per article x topic); adding an article to the archive "
        f"index {index_ms:.2f} ms"
    )
    print(f"  {load_average()}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
