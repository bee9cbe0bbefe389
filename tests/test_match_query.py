"""The query language: parsing, normalising, emitting FTS5, list form and error messages."""

from __future__ import annotations

import pytest

from monitor.match.query import (
    QueryError,
    compile_list_form,
    compile_query,
    validate_query,
)


@pytest.mark.parametrize(
    ("query", "fts"),
    [
        (
            '(kursk OR курск*) AND NEAR("north korean" troops, 10)',
            '("kursk" OR "курск"*) AND NEAR("north korean" "troop", 10)',
        ),
        ("Россия", '"росс"'),
        ("북한", '"북한"*'),
        ('"김정은 위원장"', '"김정은"* + "위원장"*'),
        ("russia NOT football", '"russia" NOT "footbal"'),
        ("russia AND NOT football", '"russia" NOT "footbal"'),
        ("a OR b NOT c d", '"a" OR (("b" NOT "c") AND "d")'),
        ("title:putin", 'title : "putin"'),
        ("TITLE:(putin OR kim)", 'title : "putin" OR title : "kim"'),
        ("text:kim", 'body : "kim"'),
        ("-title:kim", 'body : "kim"'),
        ("{title body}:kim", '"kim"'),
        ("title:NEAR(putin kim)", 'title : NEAR("putin" "kim", 10)'),
        ("kim-jong-un", '"kim jong un"'),
        ('"north korea"*', '"north korea"*'),
        ('"north korea*"', '"north korea"*'),  # the star inside the quotes: the same prefix
        ('"north korea* "', '"north korea"*'),
        ("north + korea", '"north korea"'),
        ("Zürich", '"zurich"'),
    ],
)
def test_compiles_to_normalised_fts5(query: str, fts: str) -> None:
    assert compile_query(query).fts == fts


def test_terms_are_the_positive_terms_as_written() -> None:
    compiled = compile_query('(kursk OR курск*) AND NEAR("north korean" troops) NOT football')
    assert compiled.terms == ("kursk", "курск*", "north korean", "troops")
    assert compile_query('"north korea*" OR pyongyang').terms == ("north korea*", "pyongyang")


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("", 1, "empty"),
        ("russia AND", 11, "AND must be followed by a term"),
        ("(russia OR kim", 15, "expected ')' to close the '(' at character 1"),
        ("russia)", 7, "')' without a matching '('"),
        ("NOT football", 1, "NOT needs something on its left"),
        ("russia OR NOT football", 11, "NOT needs something on its left"),
        ("author:putin", 1, "unknown field 'author:'"),
        ("NEAR(putin, 5)", 1, "NEAR needs at least two terms"),
        ("NEAR(putin kim, many)", 17, "NEAR distance must be a whole number"),
        ('putin "kim jong', 7, "unterminated double quote"),
        ("russia or ukraine", 8, "write OR for the operator"),
        ("putin - kim", 7, "'-' is only used before a field filter"),
        ("putin!", 6, "unexpected character '!'"),
        ("russia OR OR kim", 11, "OR must be followed by a term"),
        ('"..."', 1, "no letters or digits"),
        ("title:(body:kim)", 8, "leave no field"),
        ("()", 1, "empty parentheses"),
        ("^putin", 1, "not supported"),
        ('kim OR "nor* korea"', 8, "a '*' inside quotes makes a prefix only at the end"),
    ],
)
def test_bad_queries_say_what_and_where(query: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        validate_query(query)
    assert info.value.position == position
    assert fragment in info.value.message
    assert str(info.value).startswith(f"at character {position}: ")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(QueryError, match="nested"):
        validate_query("(" * 500 + "kim" + ")" * 500)


def test_valid_queries_validate() -> None:
    validate_query('(kursk OR курск*) AND NEAR("north korean" troops, 10)')
    validate_query("북한 러시아 -title:football")


def test_list_form_compiles_into_the_language() -> None:
    query = compile_list_form(
        [
            ["north korea", "dprk", "кндр", "северная корея", "북한"],
            ["russia", "россия", "러시아"],
        ],
        [],
        ["football"],
    )
    assert query == (
        '(("north korea" OR dprk OR кндр OR "северная корея" OR 북한) '
        "AND (russia OR россия OR 러시아)) NOT football"
    )
    validate_query(query)


def test_list_form_any_and_prefix_terms() -> None:
    assert compile_list_form([["kursk", "курск*"]], ["troops", "army"]) == (
        "(kursk OR курск*) AND (troops OR army)"
    )
    assert compile_list_form([], ["putin"]) == "putin"
    # words the parser would read as operators or punctuation are quoted
    assert compile_list_form([["OR", "and", "u.s."]]) == '("OR" OR "and" OR "u.s.")'


@pytest.mark.parametrize(
    ("all_", "any_", "fragment"),
    [
        ([], [], "at least one term"),
        ([["russia"], []], [], "all[1] is empty"),
        ([["russia", " "]], [], "all[0][1]: empty term"),
        ([["!!"]], [], "no letters or digits"),
    ],
)
def test_list_form_errors(all_: list[list[str]], any_: list[str], fragment: str) -> None:
    with pytest.raises(QueryError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        compile_list_form(all_, any_, [])
