"""Matching's fast path (norms from known words, offsets from piece lengths) gives what the
tokenizer gives: the same norms, offsets, phrase hits, snippets and index values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match.archive import index_values
from monitor.match.highlight import Field, highlight
from monitor.match.normalise import piece_ends, split_words, token_norms, tokenize
from monitor.match.query import compile_query

TEXTS = [
    "Boeing's deliveries fell; Airbus   won 40 orders for A320neo jets (Emirates, Qatar).",
    "Совет утвердил бюджет порта. Россия и Китай обсуждают торговлю.",
    "북한군은 화요일 항구 예산을 승인했다 — 북한의 발표.",
    "東京の会議で人工知能について話した。AI and machine learning",
    "Café ZÜRICH: ½ of the naïve voters chose Łódź, said the ex-governor.",
    "",
    "   ",
    "no punctuation at the end",
]
QUERY = (
    '(boeing OR airbus OR россия OR 북한 OR "machine learning" OR 人工知能 OR cafe OR governor)'
    " AND NOT zzzz"
)


def reference(text: str) -> Field:
    return Field(text, tokenize(text))


@pytest.mark.parametrize("text", TEXTS)
def test_fast_norms_and_offsets_equal_the_tokenizer(text: str) -> None:
    tokens = tokenize(text)  # learns the words
    pieces = split_words(text)
    norms = token_norms(pieces[1::2])
    if norms is not None:  # every word known and one token (not so for CJK runs)
        assert norms == [t.norm for t in tokens]
        ends = piece_ends(pieces)
        starts, stops = ends[0::2][: len(tokens)], ends[1::2]  # the last piece is a gap
        assert list(zip(starts, stops, strict=True)) == [(t.start, t.end) for t in tokens]
    fast = Field(text)
    assert fast.norms == [t.norm for t in tokens]
    assert fast.spans == [(t.start, t.end) for t in tokens]
    assert index_values(text, text) == (" ".join(fast.norms), " ".join(fast.norms))


def test_known_english_words_take_the_fast_path() -> None:
    text = TEXTS[0]
    tokenize(text)
    assert token_norms(split_words(text)[1::2]) is not None
    assert token_norms(["qwxzzyv-never-seen"]) is None  # an unknown word: the tokenizer decides


@pytest.mark.parametrize("body", TEXTS)
def test_highlights_are_the_same_on_both_paths(body: str) -> None:
    phrases = compile_query(QUERY).phrases
    title = "Governor of Łódź and Boeing: 북한 talks"
    tokenize(title), tokenize(body)
    fast = highlight(phrases, Field(title), Field(body))
    slow = highlight(phrases, reference(title), reference(body))
    assert fast == slow


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["boeing", "Boeing's", "jets", "россия", "北", "북한군은", "½", "x", "E-tron", "café"]
        )
        | st.text(max_size=6),
        max_size=30,
    ).map(" ".join)
)
def test_any_text_field_matches_the_tokenizer(text: str) -> None:
    tokenize(text)
    fast, slow = Field(text), reference(text)
    assert fast.norms == slow.norms
    assert fast.spans == slow.spans
    phrases = compile_query(QUERY).phrases
    assert highlight(phrases, fast, Field("")) == highlight(phrases, slow, Field(""))
