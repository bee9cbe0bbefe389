"""Tokens, sentences, stems and proper names for the developments clusterer.

Kept separate from ``monitor.match.normalise``: matching needs character offsets and FTS5
agreement, clustering needs salience (title, lead, capitalised names, numbers, dates).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

import Stemmer

# Snowball stemmers by ISO 639-1 code; anything unknown falls back to English for Latin script.
_SNOWBALL = {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german",
    "el": "greek", "en": "english", "es": "spanish", "et": "estonian", "eu": "basque",
    "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi", "hu": "hungarian",
    "hy": "armenian", "id": "indonesian", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "nl": "dutch", "no": "norwegian", "nb": "norwegian", "fa": "persian", "pl": "polish",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish",
    "ta": "tamil", "tr": "turkish",
}  # fmt: skip

# English function words plus news filler ("said", "reported"): they carry no event identity.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "else",
        "ever",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "however",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "least",
        "less",
        "let",
        "like",
        "many",
        "may",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "my",
        "myself",
        "neither",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "often",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "others",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "per",
        "perhaps",
        "quite",
        "rather",
        "same",
        "several",
        "shall",
        "she",
        "should",
        "since",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "though",
        "through",
        "thus",
        "to",
        "too",
        "two",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "whenever",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "yet",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "said",
        "says",
        "say",
        "saying",
        "told",
        "tells",
        "according",
        "reported",
        "reports",
        "reporting",
        "added",
        "adds",
        "mr",
        "mrs",
        "ms",
        "dr",
        "new",
        "news",
        "also",
        "would",
        "could",
        "year",
        "years",
        "time",
        "times",
        "day",
        "days",
        "week",
        "weeks",
    ]
)

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12,
    "dec": 12,
}  # fmt: skip
WEEKDAYS = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thurs",
        "fri",
        "sat",
        "sun",
    ]
)

# A number with decimal or thousands separators ("6.1", "1,200"), else a word of letters/digits
# joined by inner apostrophes ("O'Brien"). Hyphens split ("hit-and-run" is three words).
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:['’][^\W_]+)*")
# Sentence ends: terminal punctuation followed by space, or a line break.
_SENT_RE = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\s*\n+\s*")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class Token(NamedTuple):
    surface: str  # as written (case kept), possessive removed
    lower: str  # case-folded, accents folded


def fold(text: str) -> str:
    """Case- and accent-fold (é→e) so spelling variants meet."""
    if text.isascii():  # most words: nothing to decompose, casefold is lower
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def sentences(text: str) -> list[str]:
    return [s for s in _SENT_RE.split(unicodedata.normalize("NFKC", text)) if s and s.strip()]


def tokens(sentence: str) -> list[Token]:
    out: list[Token] = []
    known, limit = _WORD_TOKENS, _CACHE_LIMIT
    for word in _TOKEN_RE.findall(sentence):
        found = known.get(word)
        if found is None:  # news vocabulary repeats: each word is analysed once
            found = _word_tokens(word)
            if len(known) >= limit:
                known.clear()
            known[word] = found
        out += found
    return out


def _word_tokens(word: str) -> tuple[Token, ...]:
    surface = word
    if surface[-2:] in ("'s", "’s", "'S", "’S"):
        surface = surface[:-2]
    if not surface.isascii() and _CJK_RE.search(surface):
        # Unsegmented Chinese/Japanese: character bigrams stand in for words.
        return tuple(Token(bg, bg) for bg in _bigrams(surface))
    return (Token(surface, fold(surface)),)


_CACHE_LIMIT = 20_000  # words (~230 bytes each); a full cache starts again
_WORD_TOKENS: dict[str, tuple[Token, ...]] = {}


def _bigrams(run: str) -> Iterator[str]:
    if len(run) == 1:
        yield run
    for i in range(len(run) - 1):
        yield run[i : i + 2]


def is_number(lower: str) -> bool:
    if lower.isalpha():  # most words (no Unicode letter is a digit)
        return False
    return any(ch.isdigit() for ch in lower)


def normalise_number(lower: str) -> str:
    """'1,200' -> '1200', '6.10' kept; thousands separators only."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", lower):
        return lower.replace(",", "")
    return lower


@lru_cache(maxsize=64)
def _stemmer(name: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(name)


def stemmer_name(language: str | None) -> str:
    """The Snowball stemmer for a language tag: all that the tag changes in the features."""
    code = (language or "en").split("-")[0].split("_")[0].lower()
    return _SNOWBALL.get(code, "english")


def stemmer_for(language: str | None) -> Stemmer.Stemmer:
    found = _STEMMER_FOR.get(language)
    if found is None:
        found = _stemmer(stemmer_name(language))
        if len(_STEMMER_FOR) < 256:  # languages are few; odd tags are not kept
            _STEMMER_FOR[language] = found
    return found


_STEMMER_FOR: dict[str | None, Stemmer.Stemmer] = {}


def stems_for(language: str | None) -> dict[str, str]:
    """A memo of ``stem(word, language)`` by word, shared by the tags with the same stemmer.

    The caller fills it (``stem`` on a miss) and clears it when it grows too large: features
    stem every word of every article, most of them seen before."""
    name = stemmer_name(language)
    found = _STEMS.get(name)
    if found is None:
        found = _STEMS[name] = {}
    return found


_STEMS: dict[str, dict[str, str]] = {}


def stem(word: str, language: str | None) -> str:
    if word.isascii():  # most words: neither Cyrillic nor another script
        return str(stemmer_for(language).stemWord(word))
    if any("\u0400" <= ch <= "\u04ff" for ch in word):
        return str(_stemmer("russian").stemWord(word))
    if not word.isascii() and not any("a" <= ch <= "z" for ch in word):
        return word  # a script Snowball does not cover here: keep the word
    return str(stemmer_for(language).stemWord(word))


def stable_hash(text: str) -> int:
    """A 32-bit hash that is the same in every process (``hash()`` is salted)."""
    return zlib.crc32(text.encode("utf-8"))
