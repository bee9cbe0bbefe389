"""Live matching with real sentences in English, Russian and Korean."""

from __future__ import annotations

import pytest

from monitor.match.percolate import MatchDoc, Matcher, TopicSpec
from monitor.match.query import QueryError, compile_list_form
from monitor.records import TopicMatch

EN_TREATY = MatchDoc(
    "en-treaty",
    "Putin and Kim sign defence pact in Pyongyang",
    "Russian President Vladimir Putin and North Korean leader Kim Jong Un signed a mutual "
    "defence treaty in Pyongyang on Wednesday, pledging military assistance if either country "
    "is attacked.",
    "en",
)
EN_KURSK = MatchDoc(
    "en-kursk",
    "Ukraine says it fought North Korean soldiers",
    "Ukrainian forces clashed with North Korean troops in the Kursk region, Kyiv said, adding "
    "that Moscow had deployed about 11,000 of them along the border.",
    "en",
)
EN_FOOTBALL = MatchDoc(
    "en-football",
    "World Cup qualifier: North Korea beat Russia's conquerors",
    "North Korea's football team won in Pyongyang; Russia was banned from the tournament and "
    "troops of fans celebrated.",
    "en",
)
RU_KURSK = MatchDoc(
    "ru-kursk",
    "В КНДР опровергли сообщения о войсках",
    "Власти КНДР отрицают отправку войск в Россию. По данным Киева, северокорейские военные "
    "находятся в Курской области. Лётчики ВСУ сообщили о манёврах у границы России.",
    "ru",
)
KO_TROOPS = MatchDoc(
    "ko-troops",
    '국정원 "북한군 러시아 파병"',
    "국가정보원은 북한군은 러시아 쿠르스크 지역에 배치된 것으로 알려졌다고 밝혔다. "
    "북한의 미사일 발사도 계속되고 있다. 양국의 군사 협력이 강화되고 있다.",
    "ko",
)
ALL_DOCS = [EN_TREATY, EN_KURSK, EN_FOOTBALL, RU_KURSK, KO_TROOPS]


def match_one(query: str, docs: list[MatchDoc] = ALL_DOCS, **spec: object) -> dict[str, TopicMatch]:
    with Matcher([TopicSpec("t", query, **spec)]) as matcher:  # type: ignore[arg-type]
        result = matcher.match(docs)
    return {str(key): found[0] for key, found in result.items() if found}


def test_russian_term_matches_its_case_endings() -> None:
    assert set(match_one("россия")) == {"ru-kursk"}  # text has "Россию" and "России"
    found = match_one("россия")["ru-kursk"]
    assert "**Россию**" in found.snippet and "**России**" in found.snippet


def test_yo_and_ye_are_the_same_letter() -> None:
    assert set(match_one("летчики")) == {"ru-kursk"}
    assert set(match_one("маневр")) == {"ru-kursk"}
    assert "**Лётчики**" in match_one("летчики")["ru-kursk"].snippet


def test_korean_term_matches_inside_agglutinated_words() -> None:
    found = match_one("북한")
    assert set(found) == {"ko-troops"}
    snippet = found["ko-troops"].snippet
    assert "**북한군은**" in snippet and "**북한의**" in snippet


def test_english_inflections_and_case() -> None:
    assert set(match_one("TROOP")) == {"en-kursk", "en-football"}
    assert set(match_one("sign")) == {"en-treaty"}  # "signed" and "sign"


def test_phrase_needs_the_words_in_order() -> None:
    assert set(match_one('"north korean troops"')) == {"en-kursk"}
    assert set(match_one('"troops north korean"')) == set()


def test_prefix_terms() -> None:
    assert set(match_one("курск*")) == {"ru-kursk"}  # Курской
    assert set(match_one("pyong*")) == {"en-treaty", "en-football"}
    assert set(match_one("ukrain*")) == {"en-kursk"}


def test_near_respects_the_distance() -> None:
    # "north korean troops in the Kursk region": 3 tokens between the phrase and "kursk"
    assert set(match_one('NEAR("north korean" kursk, 3)')) == {"en-kursk"}
    assert set(match_one('NEAR("north korean" kursk, 2)')) == set()
    assert set(match_one("NEAR(북한 쿠르스크, 3)")) == {"ko-troops"}


def test_title_filter() -> None:
    assert set(match_one("title:pyongyang")) == {"en-treaty"}
    assert set(match_one("pyongyang")) == {"en-treaty", "en-football"}
    assert set(match_one("title:pact")) == {"en-treaty"}
    assert set(match_one("-title:pact")) == set()
    assert set(match_one("body:pyongyang")) == {"en-treaty", "en-football"}


def test_not_removes_matches() -> None:
    assert set(match_one('"north korean" NOT football')) == {"en-treaty", "en-kursk"}
    assert set(match_one("россия AND NOT курск*")) == set()


def test_issue_example_query() -> None:
    found = match_one('(kursk OR курск*) AND NEAR("north korean" troops, 10)')
    assert set(found) == {"en-kursk"}
    assert found["en-kursk"].terms == ("kursk", "north korean", "troops")


def test_list_form_across_languages() -> None:
    query = compile_list_form(
        [
            ["north korea*", "dprk", "pyongyang", "kim jong un", "кндр", "северная корея", "북한"],
            ["russia*", "moscow", "kremlin", "putin", "россия", "러시아"],
            ["troops", "soldiers", "military", "weapons", "treaty", "kursk", "войска", "군"],
        ],
        [],
        ["football"],
    )
    found = match_one(query)
    assert set(found) == {"en-treaty", "en-kursk", "ru-kursk", "ko-troops"}
    assert found["ru-kursk"].terms == ("кндр", "россия", "войска")
    assert found["ko-troops"].terms == ("북한", "러시아", "군")


def test_language_filter_keeps_only_listed_languages() -> None:
    assert set(match_one("kursk OR курск* OR 쿠르스크")) == {"en-kursk", "ru-kursk", "ko-troops"}
    assert set(match_one("kursk OR курск* OR 쿠르스크", languages=("ru", "ko"))) == {
        "ru-kursk",
        "ko-troops",
    }
    unknown = MatchDoc("unknown", "Kursk", "Kursk region.", None)
    regional = MatchDoc("regional", "Kursk", "Kursk region.", "en-GB")
    assert set(match_one("kursk", [unknown, regional], languages=("EN",))) == {"regional"}


def test_snippet_is_original_text_around_the_densest_hits() -> None:
    long_text = " ".join(["Filler words about the weather."] * 30)
    doc = MatchDoc(
        "long",
        "Weather report",
        f"Moscow was quiet. {long_text} Then Moscow and PYONGYANG agreed on a deal. {long_text}",
        "en",
    )
    found = match_one("moscow pyongyang", [doc])["long"]
    assert "**Moscow** and **PYONGYANG** agreed on a deal." in found.snippet
    assert found.snippet.startswith("…") and found.snippet.endswith("…")
    assert len(found.snippet) < 300
    assert found.terms == ("moscow", "pyongyang")
    assert found.score > 0


def test_title_hit_counts_and_shows_the_title() -> None:
    doc = MatchDoc("t", "Kremlin comments on the summit", "Officials declined to say more.", "en")
    found = match_one("kremlin", [doc])["t"]
    assert found.terms == ("kremlin",)
    assert found.snippet.startswith("**Kremlin** comments on the summit — Officials declined")


def test_every_key_is_returned_and_batches_do_not_leak() -> None:
    with Matcher([TopicSpec("kursk", "kursk"), TopicSpec("pact", "pact")]) as matcher:
        first = matcher.match(ALL_DOCS)
        assert set(first) == {d.key for d in ALL_DOCS}
        assert [m.topic for m in first["en-kursk"]] == ["kursk"]
        assert first["ru-kursk"] == ()
        assert [m.topic for m in first["en-treaty"]] == ["pact"]
        second = matcher.match([EN_FOOTBALL])  # the first batch is gone from the scratch table
        assert second == {"en-football": ()}
        assert matcher.match([]) == {}


def test_topic_order_is_kept_for_a_document() -> None:
    topics = [TopicSpec("b", "kursk"), TopicSpec("a", "troops"), TopicSpec("c", "nothing")]
    with Matcher(topics) as matcher:
        assert [m.topic for m in matcher.match([EN_KURSK])["en-kursk"]] == ["b", "a"]


def test_bad_topic_query_names_the_topic() -> None:
    with pytest.raises(QueryError, match=r"^topic broken: at character 10: AND must"):
        Matcher([TopicSpec("broken", "kursk AND")])
    with pytest.raises(QueryError, match="not a language code"):
        Matcher([TopicSpec("lang", "kursk", ("e n",))])


def test_duplicates_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate topic names: x"):
        Matcher([TopicSpec("x", "a"), TopicSpec("x", "b")])
    with Matcher([TopicSpec("x", "a")]) as matcher, pytest.raises(ValueError, match="distinct"):
        matcher.match([EN_KURSK, EN_KURSK])


def test_korean_terms_match_from_the_start_of_a_word_only() -> None:
    assert set(match_one("군")) == {"ko-troops"}  # 군사 (military), a word start
    found = match_one("군")["ko-troops"]
    assert "**군사**" in found.snippet and "**북한군은**" not in found.snippet
    assert set(match_one("한군")) == set()  # the middle of 북한군은 is not a word start
