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

from monitor.match.normalise import QueryTokenForm, Token, tokenize
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
    """One field of a document: original text, its tokens and a lookup from norm to positions.

    Lookups are cached: in a batch, many topics ask for the same terms.
    """

    def __init__(self, text: str, tokens: list[Token] | None = None) -> None:
        self.text = text
        self.tokens = tokenize(text) if tokens is None else tokens
        self._index: dict[str, list[int]] | None = None
        self._sorted: list[str] = []
        self._found: dict[tuple[QueryTokenForm, ...], list[tuple[int, int]]] = {}

    @property
    def index(self) -> dict[str, list[int]]:
        if self._index is None:
            index: dict[str, list[int]] = {}
            for i, tok in enumerate(self.tokens):
                index.setdefault(tok.norm, []).append(i)
            self._index = index
            self._sorted = sorted(index)
        return self._index

    def _starts(self, form: QueryTokenForm) -> list[int]:
        index = self.index
        if not form.prefix:
            return index.get(form.norm, [])
        words, lo = self._sorted, bisect.bisect_left(self._sorted, form.norm)
        starts: list[int] = []
        while lo < len(words) and words[lo].startswith(form.norm):
            starts.extend(index[words[lo]])
            lo += 1
        return sorted(starts)

    def find(self, forms: tuple[QueryTokenForm, ...]) -> list[tuple[int, int]]:
        """Token ranges [start, end) where the phrase ``forms`` occurs."""
        found = self._found.get(forms)
        if found is None:
            size, tokens = len(forms), self.tokens
            found = [
                (i, i + size)
                for i in self._starts(forms[0])
                if i + size <= len(tokens)
                and all(_form_matches(forms[k], tokens[i + k].norm) for k in range(1, size))
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
    title_text = _render(title, title_hits, 0, len(title.tokens), whole=True)
    if body_hits:
        snippet = _body_window(body, body_hits)
    else:
        head = _render(body, [], 0, min(SNIPPET_TOKENS, len(body.tokens)))
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
    end = min(len(body.tokens), best_start + SNIPPET_TOKENS)
    return _render(body, hits, best_start, end)


def _render(
    field: Field, hits: list[tuple[int, int, int]], first: int, last: int, whole: bool = False
) -> str:
    """Original text of tokens [first, last) with hits wrapped; whitespace collapsed."""
    tokens, text = field.tokens, field.text
    if first >= last:
        return _SPACES.sub(" ", text).strip() if whole else ""
    lo = 0 if whole or first == 0 else tokens[first].start
    hi = len(text) if whole or last == len(tokens) else _extend_punct(text, tokens[last - 1].end)
    spans = _merge(
        [(tokens[s].start, tokens[e - 1].end) for s, e, _ in hits if s >= first and e <= last]
    )
    pieces, pos = [], lo
    for s, e in spans:
        pieces.append(_SPACES.sub(" ", text[pos:s]))
        pieces.append(MARK_OPEN + _SPACES.sub(" ", text[s:e]) + MARK_CLOSE)
        pos = e
    pieces.append(_SPACES.sub(" ", text[pos:hi]))
    out = "".join(pieces).strip()
    if not whole:
        out = ("…" if first > 0 else "") + out + ("…" if last < len(tokens) else "")
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
