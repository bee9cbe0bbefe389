"""Live matching: percolate each batch of new articles against every topic.

A batch is inserted into a small scratch FTS5 table in a private in-memory database, every
topic query runs against it, then the table is cleared. The cost depends on the batch and the
number of topics, never on the size of the archive (which this module does not touch).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from monitor.match.highlight import Field, highlight
from monitor.match.normalise import FTS5_TOKENIZE
from monitor.match.query import CompiledQuery, QueryError, compile_query
from monitor.records import TopicMatch

TITLE_WEIGHT = 2.0  # bm25 weight of the title relative to the body (same in archive search)
# ISO 639-2/3 codes of languages that have a two-letter code, which detection reports instead.
_TWO_LETTER = {
    "eng": "en", "rus": "ru", "kor": "ko", "jpn": "ja", "zho": "zh", "chi": "zh", "deu": "de",
    "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it", "por": "pt", "ukr": "uk",
    "ara": "ar", "tur": "tr", "pol": "pl", "nld": "nl", "dut": "nl", "swe": "sv", "fas": "fa",
    "per": "fa", "heb": "he", "hin": "hi", "vie": "vi", "tha": "th", "ind": "id", "ces": "cs",
    "cze": "cs", "ell": "el", "gre": "el", "bel": "be", "kaz": "kk", "uzb": "uz", "fin": "fi",
}  # fmt: skip
_LANG_CODE = re.compile(r"[a-z]{2,3}")  # ISO 639-1 (en) or 639-3 (yue): what detection gives


@dataclass(frozen=True)
class TopicSpec:
    name: str
    query: str  # in the query language; the list form is compiled first (compile_list_form)
    languages: tuple[str, ...] | None = None  # keep only articles in these detected languages


@dataclass(frozen=True)
class MatchDoc:
    key: Hashable
    title: str
    text: str
    language: str | None = None


def normalise_language(code: str) -> str:
    """'en-US', 'EN_us', 'en' -> 'en'."""
    return code.strip().lower().replace("_", "-").split("-")[0]


def normalise_languages(codes: Sequence[str] | None) -> tuple[str, ...] | None:
    """Validated, normalised language list; None or empty means no language filter."""
    if not codes:
        return None
    out = []
    for code in codes:
        norm = normalise_language(code)
        if not _LANG_CODE.fullmatch(norm):
            raise QueryError(
                f"not a language code: {code!r} (use ISO 639-1 codes like en, ru, ko; one per item)"
            )
        if norm in _TWO_LETTER:  # detection says "en", never "eng": the topic would match nothing
            raise QueryError(f"use the two-letter code {_TWO_LETTER[norm]!r} for {code!r}")
        out.append(norm)
    return tuple(dict.fromkeys(out))


def language_allowed(language: str | None, allowed: tuple[str, ...] | None) -> bool:
    if allowed is None:
        return True
    return language is not None and normalise_language(language) in allowed


@dataclass(frozen=True)
class _Topic:
    spec: TopicSpec
    compiled: CompiledQuery
    languages: tuple[str, ...] | None


def compile_topic(spec: TopicSpec) -> tuple[CompiledQuery, tuple[str, ...] | None]:
    """Compile a topic's query and language list; QueryError names the topic."""
    try:
        return compile_query(spec.query), normalise_languages(spec.languages)
    except QueryError as exc:
        raise QueryError(
            exc.message, position=exc.position, query=spec.query, topic=spec.name
        ) from exc


class Matcher:
    """Matches batches of documents against a fixed set of topics. Thread-safe."""

    def __init__(self, topics: Sequence[TopicSpec]) -> None:
        names = [t.name for t in topics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate topic names: {', '.join(duplicates)}")
        self._topics = [_Topic(t, *compile_topic(t)) for t in topics]
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        # Contentless: only the index is needed (snippets come from the original text).
        self._conn.execute(
            "CREATE VIRTUAL TABLE scratch USING fts5("
            f"title, body, content='', tokenize=\"{FTS5_TOKENIZE}\")"
        )

    @property
    def topics(self) -> tuple[TopicSpec, ...]:
        return tuple(t.spec for t in self._topics)

    def compiled(self, name: str) -> CompiledQuery:
        for topic in self._topics:
            if topic.spec.name == name:
                return topic.compiled
        raise KeyError(name)

    def match(self, docs: Sequence[MatchDoc]) -> dict[Hashable, tuple[TopicMatch, ...]]:
        """Topic matches for each document key (every key is present; empty tuple: no match).

        Matches of one document are in topic order.
        """
        return self.match_indexed(docs)[0]

    def match_indexed(
        self, docs: Sequence[MatchDoc]
    ) -> tuple[dict[Hashable, tuple[TopicMatch, ...]], dict[Hashable, tuple[str, str]]]:
        """`match`, and each document's normalised (title, text) as the history index holds
        them (`monitor.match.archive.index_values`; none when there are no topics)."""
        keys = [d.key for d in docs]
        if len(set(keys)) != len(keys):
            raise ValueError("documents in one batch must have distinct keys")
        found: dict[Hashable, list[TopicMatch]] = {k: [] for k in keys}
        if not docs or not self._topics:
            return {k: () for k in keys}, {}
        fields = [(Field(d.title), Field(d.text)) for d in docs]
        with self._lock:
            rows = self._load(fields)
            try:
                for topic in self._topics:
                    self._match_topic(topic, docs, fields, found)
            finally:
                self._conn.execute("INSERT INTO scratch(scratch) VALUES('delete-all')")
        normalised = {d.key: (title, body) for d, (_, title, body) in zip(docs, rows, strict=True)}
        return {k: tuple(v) for k, v in found.items()}, normalised

    def _load(self, fields: list[tuple[Field, Field]]) -> list[tuple[int, str, str]]:
        rows = [
            (i, " ".join(title.norms), " ".join(body.norms))
            for i, (title, body) in enumerate(fields)
        ]
        self._conn.execute("BEGIN")
        self._conn.executemany("INSERT INTO scratch(rowid, title, body) VALUES (?, ?, ?)", rows)
        self._conn.execute("COMMIT")
        return rows

    def _match_topic(
        self,
        topic: _Topic,
        docs: Sequence[MatchDoc],
        fields: list[tuple[Field, Field]],
        found: dict[Hashable, list[TopicMatch]],
    ) -> None:
        rows = self._conn.execute(
            f"SELECT rowid, bm25(scratch, {TITLE_WEIGHT}, 1.0) FROM scratch WHERE scratch MATCH ?",
            (topic.compiled.fts,),
        ).fetchall()
        for rowid, rank in rows:
            doc = docs[rowid]
            if not language_allowed(doc.language, topic.languages):
                continue
            hl = highlight(topic.compiled.phrases, *fields[rowid])
            found[doc.key].append(TopicMatch(topic.spec.name, hl.terms, hl.snippet, -rank))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Matcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
