"""The normaliser: folding, stemming per script, offsets into the original text, FTS5 agreement."""

from __future__ import annotations

import sqlite3
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.match.normalise import (
    FTS5_TOKENIZE,
    normalise_text,
    query_forms,
    tokenize,
)


def norms(text: str) -> list[str]:
    return [t.norm for t in tokenize(text)]


def test_case_and_latin_diacritics_fold() -> None:
    assert norms("Café ZÜRICH Łódź naïve") == norms("cafe zurich lodz naive")
    assert norms("Straße") == norms("strasse")


def test_english_words_are_stemmed() -> None:
    assert norms("troops") == norms("troop")
    assert norms("deployed deploying") == norms("deploy deploy")


def test_russian_case_endings_share_a_stem() -> None:
    forms = ["Россия", "России", "Россию", "Россией"]
    assert len({norms(f)[0] for f in forms}) == 1
    assert norms("войска") == norms("войск")


def test_cyrillic_yo_folds_but_short_i_survives() -> None:
    assert norms("Лётчики совершили манёвр") == norms("летчики совершили маневр")
    assert "й" in norms("Войска")[0]  # й is not decomposed into и + breve
    assert norms("Йемен") != norms("Иемен")


def test_hangul_is_kept_whole_and_not_decomposed() -> None:
    tokens = tokenize("북한군은 러시아에 파병했다")
    assert [t.norm for t in tokens] == ["북한군은", "러시아에", "파병했다"]
    assert all(t.script == "hangul" for t in tokens)
    assert unicodedata.is_normalized("NFC", tokens[0].norm)


def test_scripts_are_decided_per_token_in_mixed_text() -> None:
    tokens = tokenize("Putin met Ким Чен Ын; 김정은 and troops")
    scripts = [t.script for t in tokens]
    assert scripts == [
        *("latin", "latin"),
        *("cyrillic", "cyrillic", "cyrillic"),
        *("hangul", "latin", "latin"),
    ]
    assert tokens[-1].norm == "troop"  # English stemmer on the Latin token
    assert tokens[2].norm == "ким"


def test_hangul_attached_to_latin_is_split() -> None:
    assert norms("G7정상회의") == ["g7", "정상회의"]


def test_han_and_kana_become_one_token_per_character() -> None:
    assert norms("東京都の知事") == ["東", "京", "都", "の", "知", "事"]


def test_offsets_point_into_the_original_text() -> None:
    text = "  «Россию»,\tрезюме: re\u0301sume\u0301 — 북한의 G7정상회의!"
    originals = [text[t.start : t.end] for t in tokenize(text)]
    assert originals == ["Россию", "резюме", "re\u0301sume\u0301", "북한의", "G7", "정상회의"]
    # NFD-written accents still fold to the same form as precomposed text
    assert tokenize(text)[2].norm == tokenize("résumé")[0].norm


def test_query_forms_make_hangul_a_prefix_and_cut_prefix_terms_to_the_stem() -> None:
    assert [(f.norm, f.prefix) for f in query_forms("북한")] == [("북한", True)]
    assert [(f.norm, f.prefix) for f in query_forms("россия", prefix=True)] == [("росс", True)]
    assert [(f.norm, f.prefix) for f in query_forms("north korea")] == [
        ("north", False),
        ("korea", False),
    ]


def _fts5_tokens(conn: sqlite3.Connection, normalised: str) -> list[str]:
    conn.execute("DELETE FROM t")
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (normalised,))
    rows = conn.execute("SELECT term FROM v ORDER BY offset").fetchall()
    return [r[0] for r in rows]


def _vocab_conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(f'CREATE VIRTUAL TABLE t USING fts5(x, tokenize="{FTS5_TOKENIZE}")')
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    return conn


def test_fts5_keeps_normalised_tokens_unchanged_on_real_text() -> None:
    conn = _vocab_conn()
    text = "Лётчики КНДР прибыли в Россию. 북한군은 Zürich-based naïve G7정상회의 東京 ½ Ελλάδα"
    assert _fts5_tokens(conn, normalise_text(text)) == norms(text)


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.characters(
            categories=["L", "N", "M", "P", "Zs", "S"], exclude_characters="\x00"
        ),
        max_size=60,
    )
)
def test_fts5_sees_exactly_our_tokens(text: str) -> None:
    """Whatever the text, FTS5 must index the normalised tokens one for one."""
    conn = _vocab_conn()
    assert _fts5_tokens(conn, normalise_text(text)) == norms(text)
