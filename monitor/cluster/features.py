"""What the clusterer keeps of an article: compact, JSON-serialisable, computed once.

The store persists ``DocFeatures.to_json()`` per item and reloads it to decide later articles, so
every decision comes from what is stored (the service restarts). Nothing here depends on other
articles: corpus statistics (IDF) are applied at decision time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zlib import crc32

from monitor.cluster.text import (
    MONTHS,
    STOPWORDS,
    WEEKDAYS,
    Token,
    is_number,
    normalise_number,
    sentences,
    stem,
    stems_for,
    tokens,
)

FEATURES_VERSION = 1
LEAD_SENTENCES = 2  # the title plus this many opening sentences say what happened
HEAD_SENTENCES = 1  # the title plus this many sentences announce the news (turn cues)
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
    head: stems of the title and the first sentence, where a turn is announced ("cancelled");
        a word further down ("a change to reverse their fortunes") is background.
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
    head: tuple[str, ...] = ()
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
                "h": list(self.head),
            },
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> DocFeatures:
        data: dict[str, Any] = json.loads(text)
        lead = _floats(data.get("l", {}))
        return cls(
            words=_floats(data.get("w", {})),
            lead=lead,
            names=_floats(data.get("n", {})),
            facts=_floats(data.get("f", {})),
            years=tuple(int(y) for y in data.get("y", [])),
            shingles=tuple(map(int, data.get("s", []))),
            n_shingles=int(data.get("ns", 0)),
            # Stored before "h" existed: the lead (one sentence more) is the closest there is.
            head=_interned(data["h"]) if "h" in data else tuple(sorted(lead)),
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


def _interned(raw: Iterable[Any]) -> tuple[str, ...]:
    intern = sys.intern
    return tuple(intern(str(t)) for t in raw)


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
    kinds = _KINDS
    words: dict[str, int] = {}
    lead: dict[str, int] = {}
    head: set[str] = set()
    names: dict[str, int] = {}
    facts: dict[str, int] = {}
    years: set[int] = set()
    for index, sent in enumerate(all_sents):
        weight = TITLE_WEIGHT if index == 0 else 1
        in_lead = index <= LEAD_SENTENCES
        in_head = index <= HEAD_SENTENCES
        for tok in sent:
            low = tok.lower
            kind = kinds.get(low, _UNSEEN)
            if kind is _UNSEEN:
                kind = _kind_of(low)
                if len(kinds) >= KIND_MEMO_LIMIT:
                    kinds.clear()
                kinds[low] = kind
            if kind is None:  # a stopword or a lone letter
                continue
            if kind:  # a number or a date word: a fact
                facts[kind] = facts.get(kind, 0) + weight
                if len(kind) == 4 and kind.isdigit() and 1900 <= int(kind) <= 2099:
                    years.add(int(kind))
                continue
            term = stems.get(low)
            if term is None:
                term = stem(low, language)
                if len(stems) >= STEM_MEMO_LIMIT:
                    stems.clear()
                stems[low] = term
            words[term] = words.get(term, 0) + weight
            if in_lead:
                lead[term] = lead.get(term, 0) + weight
            if in_head:
                head.add(term)
            if low in known_names and tok.surface[:1].isupper():
                names[low] = names.get(low, 0) + weight

    shingles, n_shingles = _shingles(body)
    return DocFeatures(
        words=_top(words),
        lead=_top(lead),
        names=_top(names),
        facts=_top(facts),
        years=tuple(sorted(years)),
        shingles=shingles,
        n_shingles=n_shingles,
        head=tuple(sorted(head)),
    )


def _kind_of(low: str) -> str | None:
    """What a folded word is to `features`: a fact (its normalised form), nothing (None: a
    stopword or a lone ASCII letter), or "" for a content word, stemmed by the caller."""
    if is_number(low):
        return normalise_number(low)
    if low in MONTHS or low in WEEKDAYS:
        return _date_word(low)
    if low in STOPWORDS or (len(low) < 2 and low.isascii()):
        return None
    return ""


# Each folded word is classified once (language-independent), not with four set lookups and a
# number test per occurrence; a full memo starts again, as the word and stem memos do.
KIND_MEMO_LIMIT = 20_000
_UNSEEN = "\x00"  # not a kind: facts are numbers and date words
_KINDS: dict[str, str | None] = {}


def _date_word(low: str) -> str:
    if low in MONTHS:
        return f"month{MONTHS[low]}"
    return low[:3]  # "saturday" and "sat" are one day


def _top(counts: Mapping[str, int]) -> dict[str, float]:
    # Heaviest first, ties by term, so the cut is deterministic.
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TERMS]
    return {term: float(round(weight, 3)) for term, weight in sorted(best)}


def _is_headline_case(flags: list[int]) -> bool:
    """Title Case or ALL CAPS (a sentence's `_token_flags`): there, capitals say nothing about
    names.

    Title Case capitalises every content word; prose leaves at least one in lower case.
    """
    content = shouting = capitalised = 0
    for f in flags:
        if f & _CONTENT:
            content += 1
            if f & _SHOUTING:
                shouting += 1
            if f & _CAPITALISED:
                capitalised += 1
    if content < 3:
        return False
    return shouting / content > 0.6 or capitalised / content >= 0.9


def _names_in_prose(sents: Iterable[list[Token]]) -> set[str]:
    """Folded words written capitalised mid-sentence, or as acronyms, in ordinary prose."""
    found: set[str] = set()
    memo = _FLAGS
    for sent in sents:
        flags = []
        for tok in sent:
            f = memo.get(tok)
            if f is None:
                f = _token_flags(tok)
                if len(memo) >= KIND_MEMO_LIMIT:
                    memo.clear()
                memo[tok] = f
            flags.append(f)
        if _is_headline_case(flags):
            continue
        for i, f in enumerate(flags):
            if f & _NAME and (i > 0 or f & _ACRONYM):
                found.add(sent[i].lower)
    return found


# What `_names_in_prose` asks of a token, as bits, computed once per distinct token.
_CONTENT, _SHOUTING, _CAPITALISED, _NAME, _ACRONYM = 1, 2, 4, 8, 16
_FLAGS: dict[Token, int] = {}


def _token_flags(tok: Token) -> int:
    surface, low = tok
    first = surface[:1]
    common = low in STOPWORDS or low in MONTHS or low in WEEKDAYS
    flags = 0
    if first.isalpha() and not common:
        flags |= _CONTENT  # a content word of `_is_headline_case`
        if surface.isupper() and len(surface) > 1:
            flags |= _SHOUTING
        if first.isupper():
            flags |= _CAPITALISED
        if first.isupper() and len(low) >= 2:
            flags |= _NAME  # a name if not first in its sentence, or if an acronym
            if surface.isupper() and len(surface) <= 6:
                flags |= _ACRONYM
    return flags


def _shingles(body: list[list[Token]]) -> tuple[tuple[int, ...], int]:
    words = [t.lower for sent in body for t in sent]
    if len(words) < SHINGLE_SIZE:
        grams = {" ".join(words)} if words else set()
    else:
        # The runs of SHINGLE_SIZE words, zipped from shifted lists (zip stops at the shortest:
        # the last full run) rather than sliced.
        shifted = [words[k:] for k in range(SHINGLE_SIZE)]
        grams = {" ".join(g) for g in zip(*shifted, strict=False)}
    hashes = sorted({crc32(g.encode("utf-8")) for g in grams})  # stable_hash, inlined
    kept = [h for h in hashes if h % SHINGLE_SAMPLE == 0]
    if len(kept) < MIN_SAMPLED:  # short texts: keep everything, sampling would leave too little
        kept = hashes
    return tuple(kept[:MAX_SHINGLES]), len(grams)
