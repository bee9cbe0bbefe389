"""Properties: live matching agrees with archive search, and both agree with a reference model.

Articles are generated from inflected English, Russian and Korean word forms; queries from the
whole language (AND, OR, NOT, phrases, prefixes, NEAR, field filters, language lists).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from monitor.match import archive
from monitor.match.highlight import Field
from monitor.match.percolate import MatchDoc, Matcher, TopicSpec, language_allowed
from monitor.match.query import And, Near, Node, Not, Or, Phrase, QueryError, compile_query
from tests._match_db import NOW, add_item, make_db

# Each inner tuple: surface forms of one word (dictionary form first).
WORDS: tuple[tuple[str, ...], ...] = (
    ("troops", "troop", "Troops"),
    ("Russia", "russia", "RUSSIA"),
    ("korea", "Korea", "Korean"),
    ("deploy", "deployed", "deploying"),
    ("missile", "missiles"),
    ("café", "cafe", "CAFÉ"),
    ("россия", "России", "Россию", "Россией"),
    ("войска", "войск", "войсками"),
    ("курск", "Курске", "Курской"),
    ("ёлка", "елка", "Ёлки"),
    ("КНДР", "кндр"),
    ("북한", "북한군은", "북한의", "북한이"),
    ("러시아", "러시아에", "러시아의"),
    ("군사", "군사적"),
    ("the", "and", "в", "и", "는"),
)
FORMS = [form for word in WORDS for form in word]
LANGUAGES = ["en", "ru", "ko", None]


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    language: str | None


articles = st.builds(
    Article,
    title=st.lists(st.sampled_from(FORMS), max_size=6).map(" ".join),
    text=st.lists(st.sampled_from(FORMS), min_size=4, max_size=30).map(
        lambda ws: " ".join(ws) + "."
    ),
    language=st.sampled_from(LANGUAGES),
)


def _term(form: str, prefix_cut: int | None) -> str:
    if prefix_cut is None:
        return form
    return form[: max(1, len(form) - prefix_cut)] + "*"


QUERY_FORMS = [f for f in FORMS if f != "and"]  # a lower-case operator is rejected on purpose
COLUMNS = ["", "", "", "title:", "body:", "-title:"]


def _valid(query: str) -> bool:
    try:
        compile_query(query)
    except QueryError:  # e.g. title:(body:x), which leaves no field; tested elsewhere
        return False
    return True


@dataclass(frozen=True)
class Pool:
    """Words and adjacent word pairs of the generated articles (queries lean on them, since
    purely random phrases would almost never match)."""

    present: list[str]
    pairs: list[str]

    @classmethod
    def of(cls, docs: list[Article]) -> Pool:
        texts = [d.title.split() for d in docs] + [d.text.rstrip(".").split() for d in docs]
        present = [w for ws in texts for w in ws if w != "and"]
        pairs = [f"{a} {b}" for ws in texts for a, b in itertools.pairwise(ws)]
        return cls(present, pairs)


# A query template is a nested tuple, rendered against the articles' Pool. The strategy is
# built once (Hypothesis is slow at building strategies per example).
Template = tuple[Any, ...]


def _render(t: Template, pool: Pool) -> str:
    kind = t[0]
    if kind == "word":
        _, from_docs, index, cut = t
        items = pool.present if from_docs and pool.present else QUERY_FORMS
        return _term(items[index % len(items)], cut)
    if kind == "phrase":
        _, from_docs, idx = t
        if from_docs and pool.pairs:
            return f'"{pool.pairs[idx[0] % len(pool.pairs)]}"'
        return '"' + " ".join(QUERY_FORMS[i % len(QUERY_FORMS)] for i in idx) + '"'
    if kind == "near":
        _, a, b, n = t
        return f"NEAR({_render(a, pool)} {_render(b, pool)}, {n})"
    if kind == "col":
        _, col, inner = t
        return f"{col}{_render(inner, pool)}"
    _, op, a, b = t
    left, right = _render(a, pool), _render(b, pool)
    return f"{left} {right}" if op == "" else f"({left} {op} {right})"


_indexes = st.integers(0, 10_000)
_words = st.tuples(st.just("word"), st.booleans(), _indexes, st.none() | st.integers(0, 3))
_phrases = st.tuples(st.just("phrase"), st.booleans(), st.lists(_indexes, min_size=2, max_size=3))
_leaves = st.one_of(_words, _words, _phrases)
_columns = st.sampled_from(COLUMNS)
_nears = st.tuples(st.just("near"), _leaves, _leaves, st.integers(0, 4))
_atoms = st.tuples(st.just("col"), _columns, st.one_of(_leaves, _nears))


def _combine(
    children: st.SearchStrategy[Template],
) -> st.SearchStrategy[Template]:
    return st.one_of(
        st.tuples(st.just("op"), st.sampled_from(["AND", "OR", "NOT", ""]), children, children),
        st.tuples(
            st.just("col"), _columns, st.tuples(st.just("op"), st.just("OR"), children, children)
        ),
    )


TEMPLATES = st.recursive(_atoms, _combine, max_leaves=5)


def draw_query(data: st.DataObject, docs: list[Article]) -> str:
    query = _render(data.draw(TEMPLATES, label="template"), Pool.of(docs))
    assume(_valid(query))
    note(f"query: {query}")
    return query


language_lists = st.one_of(
    st.none(), st.none(), st.lists(st.sampled_from(["en", "ru", "ko"]), min_size=1, max_size=2)
)


def live_matches(query: str, languages: list[str] | None, docs: list[Article]) -> set[int]:
    spec = TopicSpec("t", query, tuple(languages) if languages else None)
    batch = [MatchDoc(i, d.title, d.text, d.language) for i, d in enumerate(docs)]
    with Matcher([spec]) as matcher:
        return {int(str(k)) for k, found in matcher.match(batch).items() if found}


def archive_matches(query: str, languages: list[str] | None, docs: list[Article]) -> set[int]:
    conn = make_db()
    ids = [add_item(conn, d.title, d.text, language=d.language) for d in docs]
    hits = archive.search(conn, query, languages=languages, limit=None, now=NOW)
    return {ids.index(h.item_id) for h in hits}


DOCS = st.lists(articles, min_size=1, max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), languages=language_lists, docs=DOCS)
def test_live_matching_agrees_with_archive_search(
    data: st.DataObject, languages: list[str] | None, docs: list[Article]
) -> None:
    query = draw_query(data, docs)
    assert live_matches(query, languages, docs) == archive_matches(query, languages, docs)


# A reference model of the query semantics over our own tokens (no SQLite involved).


def _occurs(phrase: Phrase, fields: dict[str, Field]) -> dict[str, list[tuple[int, int]]]:
    cols = phrase.columns or ("title", "body")
    return {c: fields[c].find(phrase.forms) for c in cols}


def _near(node: Near, fields: dict[str, Field]) -> bool:
    first, second = node.phrases  # the generator makes two-phrase NEARs
    a, b = _occurs(first, fields), _occurs(second, fields)
    n = node.distance
    for col in a:
        for s1, e1 in a[col]:
            for s2, e2 in b[col]:
                gap = s2 - e1 if s1 <= s2 else s1 - e2
                if gap <= n:
                    return True
    return False


def evaluate(node: Node, fields: dict[str, Field]) -> bool:
    if isinstance(node, Phrase):
        return any(_occurs(node, fields).values())
    if isinstance(node, Near):
        return _near(node, fields)
    if isinstance(node, And):
        return all(evaluate(c, fields) for c in node.children)
    if isinstance(node, Or):
        return any(evaluate(c, fields) for c in node.children)
    assert isinstance(node, Not)
    return evaluate(node.keep, fields) and not evaluate(node.drop, fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), languages=language_lists, docs=DOCS)
def test_live_matching_agrees_with_a_reference_model(
    data: st.DataObject, languages: list[str] | None, docs: list[Article]
) -> None:
    query = draw_query(data, docs)
    tree = compile_query(query).tree
    expected = {
        i
        for i, d in enumerate(docs)
        if language_allowed(d.language, tuple(languages) if languages else None)
        and evaluate(tree, {"title": Field(d.title), "body": Field(d.text)})
    }
    assert live_matches(query, languages, docs) == expected
