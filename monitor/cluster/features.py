"""What the clusterer keeps of an article: compact, JSON-serialisable, computed once.

The store persists ``DocFeatures.to_json()`` per item and reloads it to decide later articles, so
every decision comes from what is stored (the service restarts). Nothing here depends on other
articles: corpus statistics (IDF) are applied at decision time.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from monitor.cluster.text import (
    MONTHS,
    STOPWORDS,
    WEEKDAYS,
    Token,
    is_number,
    normalise_number,
    sentences,
    stable_hash,
    stem,
    stems_for,
    tokens,
)

FEATURES_VERSION = 1
LEAD_SENTENCES = 2  # the title plus this many opening sentences say what happened
TITLE_WEIGHT = 2  # a title word counts twice: headlines name the event
SHINGLE_SIZE = 4  # words per shingle for near-duplicate detection
SHINGLE_SAMPLE = 4  # keep shingles whose hash is divisible by this (about a quarter)
MAX_SHINGLES = 400  # enough to compare long articles; keeps the JSON small
MIN_SAMPLED = 8  # below this many sampled shingles a text keeps them all
MAX_TERMS = 300  # per channel, the heaviest terms are kept
STEM_MEMO_LIMIT = 20_000  # words whose stem is remembered, per stemmer (~4 MB)


@dataclass(frozen=True)
class DocFeatures:
    """Weighted bags of terms per channel, plus a near-duplicate sketch.

    words: stems of content words (title weighted), the whole article.
    lead: stems of the title and the opening sentences.
    names: proper names (folded, unstemmed), the whole article.
    facts: numbers, month and weekday names ("6.1", "2013", "saturday").
    years: distinct four-digit years mentioned.
    shingles: sampled hashes of 4-word shingles of the body text.
    """

    words: Mapping[str, float] = field(default_factory=dict)
    lead: Mapping[str, float] = field(default_factory=dict)
    names: Mapping[str, float] = field(default_factory=dict)
    facts: Mapping[str, float] = field(default_factory=dict)
    years: tuple[int, ...] = ()
    shingles: tuple[int, ...] = ()
    n_shingles: int = 0  # shingles before sampling (length of the body, roughly)
    version: int = FEATURES_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": self.version,
                "w": _compact(self.words),
                "l": _compact(self.lead),
                "n": _compact(self.names),
                "f": _compact(self.facts),
                "y": list(self.years),
                "s": list(self.shingles),
                "ns": self.n_shingles,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> DocFeatures:
        data: dict[str, Any] = json.loads(text)
        return cls(
            words=_floats(data.get("w", {})),
            lead=_floats(data.get("l", {})),
            names=_floats(data.get("n", {})),
            facts=_floats(data.get("f", {})),
            years=tuple(int(y) for y in data.get("y", [])),
            shingles=tuple(map(int, data.get("s", []))),
            n_shingles=int(data.get("ns", 0)),
            version=int(data.get("v", FEATURES_VERSION)),
        )

    @cached_property
    def sketch(self) -> frozenset[int]:
        """The shingle hashes comparable with any other document's (see ``containment``)."""
        return _sketch_of(self.shingles)

    @cached_property
    def sketch_sorted(self) -> tuple[int, ...]:
        """The sketch in ascending order, to count its hashes below a cap by bisection.

        Usually the sketch is the shingles tuple itself (sampling kept only sketch hashes), and
        then that tuple is returned: the writer keeps thousands of these, without a copy or a set.
        """
        ordered = tuple(sorted(self.__dict__.get("sketch") or _sketch_of(self.shingles)))
        return self.shingles if ordered == self.shingles else ordered

    @property
    def sketch_capped(self) -> bool:
        return len(self.shingles) >= MAX_SHINGLES

    def terms(self) -> set[str]:
        """The namespaced terms this document contributes to document frequencies."""
        return (
            {"w:" + t for t in self.words}
            | {"w:" + t for t in self.lead}
            | {"n:" + t for t in self.names}
            | {"f:" + t for t in self.facts}
        )


def _sketch_of(shingles: tuple[int, ...]) -> frozenset[int]:
    sampled = frozenset(h for h in shingles if h % SHINGLE_SAMPLE == 0)
    # A short text keeps all its shingles; the full sets are compared only when both are.
    return sampled if len(sampled) >= MIN_SAMPLED else frozenset(shingles)


def _compact(bag: Mapping[str, float]) -> dict[str, float | int]:
    # Weights are mostly whole counts: "2" instead of "2.0" keeps the stored JSON small.
    return {t: int(w) if float(w).is_integer() else w for t, w in bag.items()}


def _floats(raw: Mapping[str, Any]) -> dict[str, float]:
    # Decoded features are kept in memory by the thousand (the writer's clustering memory):
    # terms are interned and common weights shared, so documents share what they repeat.
    shared, intern = _WEIGHTS.get, sys.intern
    return {intern(str(k)): shared(v) or float(v) for k, v in raw.items()}


# One shared float object per whole-count weight (nearly all of them, see `_top`); an int key
# finds its float (2 == 2.0), anything else is converted as before.
_WEIGHTS: dict[float, float] = {float(n): float(n) for n in range(4096)}


def features(title: str, text: str, language: str | None) -> DocFeatures:
    """Extract the clustering features of one article (pure, deterministic)."""
    title_tokens = tokens(title) if title.strip() else []
    body = [tokens(s) for s in sentences(text)]
    all_sents = [title_tokens, *body]
    known_names = _names_in_prose(all_sents)

    stems = stems_for(language)
    words: Counter[str] = Counter()
    lead: Counter[str] = Counter()
    names: Counter[str] = Counter()
    facts: Counter[str] = Counter()
    years: set[int] = set()
    for index, sent in enumerate(all_sents):
        weight = TITLE_WEIGHT if index == 0 else 1
        in_lead = index <= LEAD_SENTENCES
        for tok in sent:
            low = tok.lower
            if is_number(low):
                fact = normalise_number(low)
                facts[fact] += weight
                if len(fact) == 4 and fact.isdigit() and 1900 <= int(fact) <= 2099:
                    years.add(int(fact))
                continue
            if low in MONTHS or low in WEEKDAYS:
                facts[_date_word(low)] += weight
                continue
            if low in STOPWORDS or (len(low) < 2 and low.isascii()):
                continue
            term = stems.get(low)
            if term is None:
                term = stem(low, language)
                if len(stems) >= STEM_MEMO_LIMIT:
                    stems.clear()
                stems[low] = term
            words[term] += weight
            if in_lead:
                lead[term] += weight
            if low in known_names and tok.surface[:1].isupper():
                names[low] += weight

    shingles, n_shingles = _shingles(body)
    return DocFeatures(
        words=_top(words),
        lead=_top(lead),
        names=_top(names),
        facts=_top(facts),
        years=tuple(sorted(years)),
        shingles=shingles,
        n_shingles=n_shingles,
    )


def _date_word(low: str) -> str:
    if low in MONTHS:
        return f"month{MONTHS[low]}"
    return low[:3]  # "saturday" and "sat" are one day


def _top(counts: Counter[str]) -> dict[str, float]:
    # Heaviest first, ties by term, so the cut is deterministic.
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TERMS]
    return {term: float(round(weight, 3)) for term, weight in sorted(best)}


def _is_headline_case(sent: list[Token]) -> bool:
    """Title Case or ALL CAPS: there, capitals say nothing about names.

    Title Case capitalises every content word; prose leaves at least one in lower case.
    """
    content = [
        t
        for t in sent
        if t.surface[:1].isalpha()
        and t.lower not in STOPWORDS
        and t.lower not in MONTHS
        and t.lower not in WEEKDAYS
    ]
    if len(content) < 3:
        return False
    shouting = sum(1 for t in content if t.surface.isupper() and len(t.surface) > 1)
    capitalised = sum(1 for t in content if t.surface[:1].isupper())
    return shouting / len(content) > 0.6 or capitalised / len(content) >= 0.9


def _names_in_prose(sents: Iterable[list[Token]]) -> set[str]:
    """Folded words written capitalised mid-sentence, or as acronyms, in ordinary prose."""
    found: set[str] = set()
    for sent in sents:
        if _is_headline_case(sent):
            continue
        for i, tok in enumerate(sent):
            first = tok.surface[:1]
            if not first.isalpha() or not first.isupper():
                continue
            low = tok.lower
            if low in STOPWORDS or low in MONTHS or low in WEEKDAYS or len(low) < 2:
                continue
            acronym = tok.surface.isupper() and len(tok.surface) <= 6
            if i > 0 or acronym:
                found.add(low)
    return found


def _shingles(body: list[list[Token]]) -> tuple[tuple[int, ...], int]:
    words = [t.lower for sent in body for t in sent]
    if len(words) < SHINGLE_SIZE:
        grams = {" ".join(words)} if words else set()
    else:
        grams = {
            " ".join(words[i : i + SHINGLE_SIZE]) for i in range(len(words) - SHINGLE_SIZE + 1)
        }
    hashes = sorted({stable_hash(g) for g in grams})
    kept = [h for h in hashes if h % SHINGLE_SAMPLE == 0]
    if len(kept) < MIN_SAMPLED:  # short texts: keep everything, sampling would leave too little
        kept = hashes
    return tuple(kept[:MAX_SHINGLES]), len(grams)
