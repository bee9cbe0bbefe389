"""What the ingest path does faster must decide the same: features through the word and stem
memos, and the document frequencies counted in one statement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cluster import DocFeatures, features
from monitor.cluster import text as cluster_text
from monitor.store import Store
from monitor.store.developments import add_to_corpus, read_dfs, read_n_docs

TITLE = "Kanzlerin besucht Werften: Schiffbau-Krise in Kiel"
TEXT = (
    "Die Kanzlerin besuchte am Dienstag die Werften in Kiel. Die Schiffbauer fordern Hilfe, "
    "denn die Aufträge brechen ein. It's the shipyards' worst year since 2009, said O'Brien; "
    "1,200 jobs and 6.1 per cent of the orders are at stake. Россия и Китай строят больше "
    "кораблей. 東京の造船所も苦しい。 The workers' council meets on Saturday, 14 March."
)


def fresh(title: str, text: str, language: str | None) -> str:
    """The features computed with every memo empty."""
    saved = dict(cluster_text._WORD_TOKENS), {k: dict(v) for k, v in cluster_text._STEMS.items()}
    cluster_text._WORD_TOKENS.clear()
    cluster_text._STEMS.clear()
    try:
        return features(title, text, language).to_json()
    finally:
        cluster_text._WORD_TOKENS.update(saved[0])
        cluster_text._STEMS.clear()
        cluster_text._STEMS.update(saved[1])


@pytest.mark.parametrize("language", ["de", "en", None, "ru", "pt-BR", "xx"])
def test_features_are_the_same_whatever_was_computed_before(language: str | None) -> None:
    expected = fresh(TITLE, TEXT, language)
    for other in ("en", "de", "ru", None):  # warm the memos with other stemmers' words
        features(TITLE, TEXT, other)
    assert features(TITLE, TEXT, language).to_json() == expected


def test_languages_with_one_stemmer_share_its_memo_and_others_do_not() -> None:
    assert cluster_text.stems_for("de") is cluster_text.stems_for("de-AT")
    assert cluster_text.stems_for(None) is cluster_text.stems_for("xx")  # English for unknowns
    assert cluster_text.stems_for("de") is not cluster_text.stems_for("en")
    german, english = features(TITLE, TEXT, "de"), features(TITLE, TEXT, "en")
    assert german.words != english.words  # the stems differ: "besuchte" -> "besucht"


def test_document_frequencies_count_each_term_once_per_document(tmp_path: Path) -> None:
    odd = {'say "hi"': 1.0, "back\\slash": 1.0, "кораблей": 2.0, "造船": 1.0}
    docs = [
        DocFeatures(words={"ship": 2.0, **odd}, lead={"ship": 1.0}, names={"kiel": 1.0}),
        DocFeatures(words={"ship": 1.0, "yard": 1.0}, facts={"2009": 1.0}),
    ]
    store = Store.open(tmp_path / "m.db")
    try:
        with store.transaction():
            for n, doc in enumerate(docs, start=1):
                store.conn.execute(
                    "INSERT INTO items (id, key, url, title, text, text_source, fetched)"
                    " VALUES (?, ?, ?, 't', 'x', 'page', '2026-03-01T00:00:00Z')",
                    (n, f"k{n}", f"https://x.example/{n}"),
                )
                back = add_to_corpus(store.conn, n, doc.to_json())
                assert back == DocFeatures.from_json(doc.to_json())
        wanted = {"w:ship", "w:yard", "n:kiel", "f:2009", "w:nope"} | {"w:" + t for t in odd}
        dfs = read_dfs(store.conn, wanted)
        assert read_n_docs(store.conn) == 2
        stored = store.conn.execute("SELECT features FROM item_features WHERE item_id = 1")
        assert json.loads(stored.fetchone()[0])["w"]["кораблей"] == 2
    finally:
        store.close()
    # "w:ship" is in both documents (words and lead of the first count once)
    assert dfs == {"w:ship": 2, "w:yard": 1, "n:kiel": 1, "f:2009": 1} | {"w:" + t: 1 for t in odd}
