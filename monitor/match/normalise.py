"""Tokenizer and normaliser shared by indexing, live matching and queries.

SQLite's FTS5 cannot load Python tokenizers, so text is normalised here and the normalised tokens,
joined by spaces, are what FTS5 indexes (with a tokenizer that keeps each of them whole, see
``FTS5_TOKENIZE``). Every query term goes through the same functions, so both sides agree.

Per token, decided by its script (so mixed-language text works):
- Latin: case-folded, diacritics folded (é→e, ø→o, ß→ss), English Snowball stem.
- Cyrillic: case-folded, ё→е, Russian Snowball stem (й is kept: no decomposition).
- Hangul: case-folded only; a Hangul *query* term matches as a prefix of an indexed word, so
  북한 finds 북한군은 and 북한의 (Korean attaches particles to the word).
- Han / kana: one token per character, so a query word becomes a phrase of characters and is
  found inside unsegmented Chinese and Japanese text.
- Anything else: case-folded (Greek accents folded too), not stemmed.

Every token keeps its character offsets into the ORIGINAL text, for snippets and highlights.
"""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from collections.abc import Callable
from typing import Literal, NamedTuple

import Stemmer

Script = Literal["latin", "cyrillic", "hangul", "cjk", "other"]

# FTS5 must see each normalised token as exactly one token: letters, numbers, private use and
# combining marks are token characters, everything else separates (matches _WORD_RE below).
FTS5_TOKENIZE = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"


class Token(NamedTuple):
    norm: str  # the normalised form, as indexed and as compared
    start: int  # offsets into the original text: text[start:end] is the word it came from
    end: int
    script: Script


def _mark_class() -> str:
    """A regex character class body for all combining marks (M*) and private-use characters."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x20000):  # marks beyond this plane are only variation selectors, added below
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    ranges += [(0xE0100, 0xE01EF), (0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_MARKS = _mark_class()
# A word: a letter or digit (\w without "_") followed by letters, digits, combining marks and
# private-use characters.
# (Written as letters-then-marks: one big alternation per character is twice as slow.)
_WORD_RE = re.compile(rf"[^\W_]+(?:[{_MARKS}]+[^\W_]*)*")
_WORD_SPLIT_RE = re.compile(f"({_WORD_RE.pattern})")  # the same words, kept by re.split
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"
_CJK = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
# Split a word into Hangul runs, single Han/kana characters and the rest.
_SCRIPT_SPLIT_RE = re.compile(rf"[{_HANGUL}]+|[{_CJK}]|[^{_HANGUL}{_CJK}]+")
_HAS_HANGUL_OR_CJK_RE = re.compile(rf"[{_HANGUL}{_CJK}]")
_CYRILLIC_RE = re.compile("[\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f]")
_HANGUL_RE = re.compile(f"[{_HANGUL}]")
_CJK_RE = re.compile(f"[{_CJK}]")
_LATIN_RE = re.compile("[a-z\u00c0-\u024f\u1e00-\u1eff\u2c60-\u2c7f\ua720-\ua7ff]")

# Letters without a Unicode decomposition that readers still see as "a letter with a mark".
_SPECIAL_FOLDS = {
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "æ": "ae",
    "œ": "oe",
    "ı": "i",
    "ħ": "h",
    "ŧ": "t",
    "ё": "е",
}


def _is_foldable_base(ch: str) -> bool:
    """Letters whose accents we drop: Latin and Greek (never Cyrillic й, never Hangul)."""
    name = unicodedata.name(ch, "")
    return name.startswith(("LATIN", "GREEK")) or ch.isascii()


class _FoldTable(dict[int, str]):
    """str.translate table computed lazily per character and then cached."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        folded = _SPECIAL_FOLDS.get(ch)
        if folded is None:
            folded = ch
            decomposed = unicodedata.normalize("NFD", ch)
            if len(decomposed) > 1 and _is_foldable_base(decomposed[0]):
                base = "".join(c for c in decomposed if not unicodedata.combining(c))
                folded = unicodedata.normalize("NFC", base)
            elif unicodedata.combining(ch) and cp < 0x370:
                folded = ""  # a stray Latin combining accent (text in NFD form)
        self[cp] = folded
        return folded


_FOLD = _FoldTable()
_STEMMERS = {"latin": Stemmer.Stemmer("english"), "cyrillic": Stemmer.Stemmer("russian")}


class _Part(NamedTuple):
    norm: str  # folded and stemmed
    folded: str  # folded, not stemmed (for prefix query terms)
    script: Script


_CACHE: dict[str, tuple[_Part, ...]] = {}
_SINGLE: dict[str, tuple[str, Script]] = {}  # words that normalise to one token
_new_token: Callable[[type[Token], tuple[str, int, int, Script]], Token] = tuple.__new__
_CACHE_LIMIT = 200_000


def _script_of(folded: str) -> Script:
    if _CYRILLIC_RE.search(folded):
        return "cyrillic"
    if _HANGUL_RE.search(folded):
        return "hangul"
    if _CJK_RE.search(folded):
        return "cjk"
    if _LATIN_RE.search(folded) or folded.isascii():
        return "latin"
    return "other"


def _fold(raw: str) -> str:
    if raw.isascii():
        return raw.lower()
    return unicodedata.normalize("NFKC", raw).casefold().translate(_FOLD)


def _analyse_piece(piece: str) -> list[_Part]:
    folded = _fold(piece)
    # Folding may create separators (NFKC "½" -> "1⁄2"): re-split so FTS5 sees the same tokens.
    chunks = [folded] if _WORD_RE.fullmatch(folded) else _WORD_RE.findall(folded)
    parts = []
    for chunk in chunks:
        script = _script_of(chunk)
        stemmer = _STEMMERS.get(script)
        norm = stemmer.stemWord(chunk) if stemmer is not None else chunk
        parts.append(_Part(norm or chunk, chunk, script))
    return parts


def _analyse_word(raw: str) -> tuple[_Part, ...]:
    """Normalise one word of the original text; cached, as news vocabulary repeats a lot."""
    cached = _CACHE.get(raw)
    if cached is not None:
        return cached
    if raw.isascii() or not _HAS_HANGUL_OR_CJK_RE.search(raw):
        parts = tuple(_analyse_piece(raw))
    else:
        parts = tuple(p for m in _SCRIPT_SPLIT_RE.finditer(raw) for p in _analyse_piece(m[0]))
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[sys.intern(raw)] = parts
    return parts


def _word_offsets(raw: str, start: int) -> list[tuple[int, int]]:
    """Original offsets of the script pieces of a word (Hangul runs, Han/kana characters...)."""
    if raw.isascii() or not _HAS_HANGUL_OR_CJK_RE.search(raw):
        return [(start, start + len(raw))]
    return [(start + m.start(), start + m.end()) for m in _SCRIPT_SPLIT_RE.finditer(raw)]


def tokenize(text: str) -> list[Token]:
    """Normalised tokens of ``text`` with their offsets in ``text``."""
    tokens: list[Token] = []
    append, single, new = tokens.append, _SINGLE.get, _new_token
    for match in _WORD_RE.finditer(text):
        raw = match.group()
        known = single(raw)  # hot path: a word seen before that is one token
        if known is not None:
            start, end = match.span()
            append(new(Token, (known[0], start, end, known[1])))
            continue
        parts = _analyse_word(raw)
        if len(parts) == 1:
            if len(_SINGLE) >= _CACHE_LIMIT:
                _SINGLE.clear()
            _SINGLE[raw] = (parts[0].norm, parts[0].script)
            start, end = match.span()
            append(Token(parts[0].norm, start, end, parts[0].script))
        else:
            tokens.extend(_split_tokens(raw, match.start(), parts))
    return tokens


def _split_tokens(raw: str, start: int, parts: tuple[_Part, ...]) -> list[Token]:
    """Tokens of a word that normalised into several parts (mixed scripts, CJK, NFKC splits)."""
    spans = _word_offsets(raw, start)
    if len(spans) != len(parts):  # an NFKC re-split inside a piece: share the whole word's span
        spans = [(start, start + len(raw))] * len(parts)
    return [Token(p.norm, s, e, p.script) for p, (s, e) in zip(parts, spans, strict=True)]


def split_words(text: str) -> list[str]:
    """``text`` cut into its words and what lies between them: [gap, word, gap, ..., word, gap].

    The words are ``_WORD_RE``'s; lengths of the pieces give every offset (``piece_ends``)."""
    return _WORD_SPLIT_RE.split(text)


def token_norms(words: list[str]) -> list[str] | None:
    """``[t.norm for t in tokenize(text)]`` from the words of ``text`` (``split_words(text)[1::2]``)
    when every word is one seen before that is one token (nearly all of them in news): no
    regex work per word and no Token objects, about a quarter of the cost. None when some word
    is not (call ``tokenize``, which learns it). Then token i is word i."""
    single = _SINGLE
    try:
        return [single[raw][0] for raw in words]
    except KeyError:
        return None


def piece_ends(pieces: list[str]) -> list[int]:
    """Where each of ``split_words``' pieces ends: word i spans [ends[2i], ends[2i + 1])."""
    return list(itertools.accumulate(map(len, pieces)))


def normalise_text(text: str) -> str:
    """The text as FTS5 indexes it: normalised tokens separated by spaces."""
    norms = token_norms(_WORD_RE.findall(text))
    return " ".join(norms if norms is not None else [t.norm for t in tokenize(text)])


def normalise_tokens(tokens: list[Token]) -> str:
    return " ".join([t.norm for t in tokens])


class QueryTokenForm(NamedTuple):
    """How one token of a query term is looked up in the index."""

    norm: str
    prefix: bool  # match any indexed token that starts with ``norm``


def query_forms(term: str, *, prefix: bool = False) -> list[QueryTokenForm]:
    """The index lookups for a query term (a word or a phrase), in order.

    Hangul tokens always match as prefixes (agglutination). With ``prefix`` the last token is a
    prefix too; it is cut to the part its folded and stemmed forms share, so ``russia*`` and
    ``россия*`` still find the stemmed index forms ``russian`` and ``росс``.
    """
    parts = [p for m in _WORD_RE.finditer(term) for p in _analyse_word(m[0])]
    forms: list[QueryTokenForm] = []
    for i, part in enumerate(parts):
        is_last = i == len(parts) - 1
        if part.script == "hangul":
            forms.append(QueryTokenForm(part.folded, True))
        elif prefix and is_last:
            forms.append(QueryTokenForm(_common_prefix(part.norm, part.folded), True))
        else:
            forms.append(QueryTokenForm(part.norm, False))
    return forms


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n] or a
