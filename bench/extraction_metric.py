"""The article-extraction benchmark's metric (Scrapinghub's ``evaluate.py``), re-implemented.

Both texts are split into ``\\w+`` tokens and turned into 4-token shingles. Per page, the shingle
counts give TP/FP/FN, normalised to sum to 1 so long articles do not outweigh short ones.
Precision and recall are averaged over pages, and F1 is taken from the two means.
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "extraction-dev"

_TOKEN_RE = re.compile(r"\w+")
SHINGLE_SIZE = 4


@dataclass(frozen=True)
class PageCounts:
    """One page's shingle matches, normalised so that tp + fp + fn == 1 (or all 0)."""

    tp: float
    fp: float
    fn: float


@dataclass(frozen=True)
class Score:
    f1: float
    precision: float
    recall: float
    pages: int


def shingles(text: str, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN_RE.findall(text)
    # A text shorter than one shingle still counts as one (shorter) shingle, as upstream does.
    count = max(1, len(tokens) - size + 1)
    return Counter(tuple(tokens[i : i + size]) for i in range(count) if tokens[i : i + size])


def page_counts(truth: str, predicted: str) -> PageCounts:
    expected, got = shingles(truth), shingles(predicted)
    tp = fp = fn = 0.0
    for key in expected.keys() | got.keys():
        want, have = expected[key], got[key]
        tp += min(want, have)
        fp += max(0, have - want)
        fn += max(0, want - have)
    total = tp + fp + fn
    if total > 0:
        return PageCounts(tp / total, fp / total, fn / total)
    return PageCounts(tp, fp, fn)


def _precision(c: PageCounts) -> float:
    if c.fp == c.fn == 0:
        return 1.0
    if c.tp == c.fp == 0:
        return 0.0
    return c.tp / (c.tp + c.fp)


def _recall(c: PageCounts) -> float:
    if c.fp == c.fn == 0:
        return 1.0
    if c.tp == c.fn == 0:
        return 0.0
    return c.tp / (c.tp + c.fn)


def score(counts: Iterable[PageCounts]) -> Score:
    pages = list(counts)
    # Upstream skips pages where the measure is undefined (nothing predicted / nothing expected).
    precisions = [_precision(c) for c in pages if c.tp + c.fp > 0]
    recalls = [_recall(c) for c in pages if c.tp + c.fn > 0]
    precision = statistics.mean(precisions) if precisions else 0.0
    recall = statistics.mean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return Score(f1=f1, precision=precision, recall=recall, pages=len(pages))


def evaluate(truth: Mapping[str, str], predicted: Mapping[str, str]) -> Score:
    """Score predicted article bodies against the ground truth, page id by page id."""
    return score(page_counts(truth[key], predicted.get(key, "")) for key in truth)


@dataclass(frozen=True)
class DevPage:
    id: str
    url: str
    html: bytes
    body: str  # the ground-truth article body


def load_dev_pages(data_dir: Path = DATA_DIR) -> Iterator[DevPage]:
    """The benchmark pages with their ground truth, in a stable order."""
    truth = json.loads((data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        html = gzip.decompress((data_dir / "html" / f"{key}.html.gz").read_bytes())
        yield DevPage(key, truth[key]["url"], html, truth[key].get("articleBody", ""))
