"""Which query terms hit a document, and a highlighted snippet of its ORIGINAL text.

FTS5 decides whether a document matches (over normalised text); this module then finds the
positive query phrases among the document's tokens, whose offsets point into the original
title and text, so highlights never show normalised forms. Shared by the live percolator and
archive search so both report the same terms and snippets.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.match.normalise import (
    QueryTokenForm,
    Token,
    piece_ends,
    split_words,
    token_norms,
    tokenize,
)
from monitor.match.query import Phrase

SNIPPET_TOKENS = 30  # words in a snippet window
MARK_OPEN = MARK_CLOSE = "**"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Highlight:
    terms: tuple[str, ...]  # query terms found, as the user wrote them, in query order
    snippet: str  # window of the text around hits (or the title), hits wrapped in **...**
    title: str  # the title with its hits wrapped


class Field:
    """One field of a document: original text, its tokens' norms and offsets, and where each
    norm occurs.

    Usually the norms come from a cache of known words (``token_norms``), and the offsets, needed
    for a snippet only, from the lengths of the text's pieces. Lookups are cached: in a batch,
    many topics ask for the same terms.
    """

    def __init__(self, text: str, tokens: list[Token] | None = None) -> None:
        self.text = text
        self._pieces: list[str] | None = None
        norms = None
        if tokens is None:
            self._pieces = split_words(text)
            norms = token_norms(self._pieces[1::2])
        if norms is None:
            tokens = tokenize(text) if tokens is None else tokens
            norms = [t.norm for t in tokens]
        self.norms: list[str] = norms
        self._tokens = tokens
        self._piece_ends: list[int] | None = None
        self._positions: dict[str, list[int]] = {}
        self._sorted: list[str] | None = None
        self._found: dict[tuple[QueryTokenForm, ...], list[tuple[int, int]]] = {}

    @property
    def tokens(self) -> list[Token]:
        if self._tokens is None:
            self._tokens = tokenize(self.text)
        return self._tokens

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each token in ``text``."""
        return [(self.start(i), self.end(i)) for i in range(len(self.norms))]

    def start(self, i: int) -> int:
        """Where token i starts in ``text``."""
        if self._tokens is not None:
            return self._tokens[i].start
        return self._ends()[2 * i]

    def end(self, i: int) -> int:
        """Where token i ends in ``text``."""
        if self._tokens is not None:
            return self._tokens[i].end
        return self._ends()[2 * i + 1]

    def _ends(self) -> list[int]:
        # Only when a snippet is made: the norms came from token_norms, one token per word.
        if self._piece_ends is None:
            assert self._pieces is not None
            self._piece_ends = piece_ends(self._pieces)
        return self._piece_ends

    def positions(self, norm: str) -> list[int]:
        """Where tokens with this norm are (searched in C: a document asks for a few norms)."""
        found = self._positions.get(norm)
        if found is None:
            found, norms, at = [], self.norms, -1
            try:
                while True:
                    at = norms.index(norm, at + 1)
                    found.append(at)
            except ValueError:
                pass
            self._positions[norm] = found
        return found

    def _starts(self, form: QueryTokenForm) -> list[int]:
        if not form.prefix:
            return self.positions(form.norm)
        if self._sorted is None:
            self._sorted = sorted(set(self.norms))
        words, lo = self._sorted, bisect.bisect_left(self._sorted, form.norm)
        starts: list[int] = []
        while lo < len(words) and words[lo].startswith(form.norm):
            starts.extend(self.positions(words[lo]))
            lo += 1
        return sorted(starts)

    def find(self, forms: tuple[QueryTokenForm, ...]) -> list[tuple[int, int]]:
        """Token ranges [start, end) where the phrase ``forms`` occurs."""
        found = self._found.get(forms)
        if found is None:
            size, norms = len(forms), self.norms
            found = [
                (i, i + size)
                for i in self._starts(forms[0])
                if i + size <= len(norms)
                and all(_form_matches(forms[k], norms[i + k]) for k in range(1, size))
            ]
            self._found[forms] = found
        return found


def _form_matches(form: QueryTokenForm, norm: str) -> bool:
    return norm.startswith(form.norm) if form.prefix else norm == form.norm


def highlight(phrases: Sequence[Phrase], title: Field, body: Field) -> Highlight:
    """Terms that hit and a snippet, for a document that matched a query with ``phrases``."""
    terms: dict[str, None] = {}
    title_hits: list[tuple[int, int, int]] = []  # token start, token end, term number
    body_hits: list[tuple[int, int, int]] = []
    term_numbers = {src: i for i, src in enumerate(dict.fromkeys(p.source for p in phrases))}
    for phrase in phrases:
        term_no = term_numbers[phrase.source]
        columns = phrase.columns or ("title", "body")
        for column, field, hits in (("title", title, title_hits), ("body", body, body_hits)):
            if column not in columns:
                continue
            found = field.find(phrase.forms)
            if found:
                terms[phrase.source] = None
                hits.extend((s, e, term_no) for s, e in found)
    title_text = _render(title, title_hits, 0, len(title.norms), whole=True)
    if body_hits:
        snippet = _body_window(body, body_hits)
    else:
        head = _render(body, [], 0, min(SNIPPET_TOKENS, len(body.norms)))
        snippet = f"{title_text} — {head}" if head else title_text
    return Highlight(tuple(terms), snippet, title_text)


def _body_window(body: Field, hits: list[tuple[int, int, int]]) -> str:
    """The window of SNIPPET_TOKENS tokens holding the most distinct terms, then most hits."""
    hits = sorted(hits)
    starts = [h[0] for h in hits]
    best_key, best_start = (-1, -1), 0
    for start_tok in sorted(set(starts))[:200]:  # a common word can hit hundreds of times
        start = max(0, start_tok - SNIPPET_TOKENS // 4)
        end = start + SNIPPET_TOKENS
        window = hits[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]
        inside = [h for h in window if h[1] <= end]
        key = (len({h[2] for h in inside}), len(inside))
        if key > best_key:
            best_key, best_start = key, start
    end = min(len(body.norms), best_start + SNIPPET_TOKENS)
    return _render(body, hits, best_start, end)


def _render(
    field: Field, hits: list[tuple[int, int, int]], first: int, last: int, whole: bool = False
) -> str:
    """Original text of tokens [first, last) with hits wrapped; whitespace collapsed."""
    text = field.text
    if first >= last:
        return _SPACES.sub(" ", text).strip() if whole else ""
    count = len(field.norms)
    lo = 0 if whole or first == 0 else field.start(first)
    hi = len(text) if whole or last == count else _extend_punct(text, field.end(last - 1))
    spans = _merge(
        [(field.start(s), field.end(e - 1)) for s, e, _ in hits if s >= first and e <= last]
    )
    pieces, pos = [], lo
    for s, e in spans:
        pieces.append(_SPACES.sub(" ", text[pos:s]))
        pieces.append(MARK_OPEN + _SPACES.sub(" ", text[s:e]) + MARK_CLOSE)
        pos = e
    pieces.append(_SPACES.sub(" ", text[pos:hi]))
    out = "".join(pieces).strip()
    if not whole:
        out = ("…" if first > 0 else "") + out + ("…" if last < count else "")
    return out


def _extend_punct(text: str, end: int) -> int:
    """Keep punctuation glued to the last word ('troops.' rather than 'troops')."""
    limit = min(len(text), end + 3)
    while end < limit and not text[end].isspace() and not text[end].isalnum():
        end += 1
    return end


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged
