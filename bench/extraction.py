"""Extraction quality and speed on the 91 real pages of ../shared/data/extraction-dev/.

Prints F1 / precision / recall (the Scrapinghub benchmark's metric) and single-process pages/s for
(a) ``trafilatura.extract(html, include_comments=False)`` alone and (b) ``monitor.extract``'s
``extract_page``. ``--variants`` adds trafilatura's other modes, to show what each option costs.

    python bench/extraction.py [--variants] [--repeat N] [--worst N]   (from the project root)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script or with -m
from bench.extraction_metric import (
    DATA_DIR,
    DevPage,
    Score,
    evaluate,
    load_dev_pages,
    page_counts,
)
from monitor.extract import extract_page
from monitor.language import warm_up

Extractor = Callable[[DevPage], str]


def _trafilatura(**options: object) -> Extractor:
    def run(page: DevPage) -> str:
        return trafilatura.extract(page.html, **options) or ""  # type: ignore[arg-type]

    return run


def _ours(page: DevPage) -> str:
    return extract_page(page.html, page.url, "text/html; charset=utf-8").text


BASELINE = ("(a) trafilatura.extract(include_comments=False)", _trafilatura(include_comments=False))
OURS = ("(b) monitor.extract.extract_page", _ours)
VARIANTS = [
    ("trafilatura fast (no fallback)", _trafilatura(include_comments=False, fast=True)),
    ("trafilatura favor_precision", _trafilatura(include_comments=False, favor_precision=True)),
    (
        "trafilatura favor_precision + fast",
        _trafilatura(include_comments=False, favor_precision=True, fast=True),
    ),
    ("trafilatura favor_recall", _trafilatura(include_comments=False, favor_recall=True)),
    (
        "trafilatura include_tables=False",
        _trafilatura(include_comments=False, include_tables=False),
    ),
    (
        "trafilatura favor_precision, no tables",
        _trafilatura(include_comments=False, favor_precision=True, include_tables=False),
    ),
]


@dataclass(frozen=True)
class Result:
    name: str
    score: Score
    pages_per_second: float  # best of the repeats, CPU time of this one process
    texts: dict[str, str]


def measure(name: str, run: Extractor, pages: list[DevPage], repeat: int) -> Result:
    best = float("inf")
    texts: dict[str, str] = {}
    for _ in range(repeat):
        started = time.process_time()
        texts = {page.id: run(page) for page in pages}
        best = min(best, time.process_time() - started)
    score = evaluate({p.id: p.body for p in pages}, texts)
    return Result(name, score, len(pages) / best, texts)


def print_result(result: Result) -> None:
    s = result.score
    print(
        f"{result.name:<48} F1 {s.f1:.4f}  precision {s.precision:.4f}  "
        f"recall {s.recall:.4f}  {result.pages_per_second:6.1f} pages/s",
        flush=True,
    )


def print_worst(result: Result, pages: list[DevPage], count: int) -> None:
    """The pages that cost the most, to look at by hand (not to tune on one by one)."""
    rows = []
    for page in pages:
        c = page_counts(page.body, result.texts[page.id])
        rows.append((c.fp + c.fn, c, page.url))
    for _, c, url in sorted(rows, key=lambda row: row[0], reverse=True)[:count]:
        print(f"    tp {c.tp:.3f} fp {c.fp:.3f} fn {c.fn:.3f}  {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--variants", action="store_true", help="also time trafilatura's modes")
    parser.add_argument("--repeat", type=int, default=2, help="timing runs; the best counts")
    parser.add_argument("--worst", type=int, default=0, help="list the N worst pages of (b)")
    args = parser.parse_args()
    if not (args.data / "ground-truth.json").is_file():
        sys.exit(f"no benchmark data at {args.data}")
    logging.disable(logging.WARNING)  # trafilatura complains loudly about odd pages
    pages = list(load_dev_pages(args.data))
    warm_up()
    trafilatura.extract(pages[0].html)  # first-call imports and caches stay out of the timing
    print(f"{len(pages)} pages, single process, CPU time (best of {args.repeat})")
    runs = [BASELINE, OURS, *(VARIANTS if args.variants else [])]
    for name, run in runs:
        result = measure(name, run, pages, args.repeat)
        print_result(result)
        if args.worst and run is _ours:
            print_worst(result, pages, args.worst)


if __name__ == "__main__":
    main()
