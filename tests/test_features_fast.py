"""`features` classifies each word once and flags each token once (memos), counts into plain
dicts and zips its shingles: the same features, to the byte, as the plain code before it, kept
here as the reference."""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Iterable

import pytest

from monitor.cluster.features import (
    HEAD_SENTENCES,
    LEAD_SENTENCES,
    MAX_SHINGLES,
    MIN_SAMPLED,
    SHINGLE_SAMPLE,
    SHINGLE_SIZE,
    TITLE_WEIGHT,
    DocFeatures,
    _date_word,
    _top,
    features,
)
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
    tokens,
)


def reference(title: str, text: str, language: str | None) -> DocFeatures:
    """`features` as it was before the memos (commit cf005af), without the stem memo."""
    title_tokens = tokens(title) if title.strip() else []
    body = [tokens(s) for s in sentences(text)]
    all_sents = [title_tokens, *body]
    known_names = _ref_names_in_prose(all_sents)
    words: Counter[str] = Counter()
    lead: Counter[str] = Counter()
    names: Counter[str] = Counter()
    facts: Counter[str] = Counter()
    years: set[int] = set()
    head: set[str] = set()
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
            term = stem(low, language)
            words[term] += weight
            if in_lead:
                lead[term] += weight
            if index <= HEAD_SENTENCES:
                head.add(term)
            if low in known_names and tok.surface[:1].isupper():
                names[low] += weight
    shingles, n_shingles = _ref_shingles(body)
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


def _ref_is_headline_case(sent: list[Token]) -> bool:
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


def _ref_names_in_prose(sents: Iterable[list[Token]]) -> set[str]:
    found: set[str] = set()
    for sent in sents:
        if _ref_is_headline_case(sent):
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


def _ref_shingles(body: list[list[Token]]) -> tuple[tuple[int, ...], int]:
    words = [t.lower for sent in body for t in sent]
    if len(words) < SHINGLE_SIZE:
        grams = {" ".join(words)} if words else set()
    else:
        grams = {
            " ".join(words[i : i + SHINGLE_SIZE]) for i in range(len(words) - SHINGLE_SIZE + 1)
        }
    hashes = sorted({stable_hash(g) for g in grams})
    kept = [h for h in hashes if h % SHINGLE_SAMPLE == 0]
    if len(kept) < MIN_SAMPLED:
        kept = hashes
    return tuple(kept[:MAX_SHINGLES]), len(grams)


# Every branch the memos stand in for: stopwords (in any case), months and weekdays (full and
# short), numbers and years (in and out of 1900-2099, with separators), lone letters (ASCII or
# not), names mid-sentence and first, acronyms up to and over six letters, possessives,
# Cyrillic, CJK runs (bigrams), accents, and words that are names in one place and not another.
VOCABULARY = (
    "the The THE and And a A I é É in In of de Die die und",
    "March march Mar mar SATURDAY Saturday sat Sat Sun sun May may",
    "2009 1899 1900 2099 2100 1,200 12,34 6.1 6.10 3 42nd 1st",
    "ship shipyard shipyards orders ordered Kiel Kiel's KIEL O'Brien Müller müller Ærø",
    "NASA EU ABCDEFG Abcdefg NATO nato iPhone eBay X Y x-ray hit-and-run",
    "Россия России кораблей Китай 東京の造船所 中国 한국 서울",
    "Council council Merkel said says meets met workers' council's",
)
WORDS = " ".join(VOCABULARY).split()
# The module (the package's `features` attribute is the function).
features_module = sys.modules["monitor.cluster.features"]


def random_text(rng: random.Random, sentences_wanted: int) -> str:
    out = []
    for _ in range(sentences_wanted):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 14))]
        if rng.random() < 0.2:  # a Title Case or an ALL CAPS line
            words = [w.upper() if rng.random() < 0.5 else w.title() for w in words]
        out.append(" ".join(words) + rng.choice((". ", "! ", "\n", "? ", "; ")))
    return "".join(out)


@pytest.mark.parametrize("seed", range(6))
def test_features_are_the_reference_features_to_the_byte(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        title = random_text(rng, 1).strip() if rng.random() < 0.9 else ""
        text = random_text(rng, rng.randint(0, 12))
        language = rng.choice(("en", "de", "ru", None, "xx"))
        assert features(title, text, language).to_json() == (
            reference(title, text, language).to_json()
        ), (title, text, language)


def test_full_memos_start_again_with_the_same_features(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(features_module, "KIND_MEMO_LIMIT", 5)
    monkeypatch.setattr(features_module, "_KINDS", {})
    monkeypatch.setattr(features_module, "_FLAGS", {})
    rng = random.Random(7)
    for _ in range(30):
        text = random_text(rng, 4)
        assert features("", text, "en").to_json() == reference("", text, "en").to_json()
    assert len(features_module._KINDS) <= 5 and len(features_module._FLAGS) <= 5
