"""A topic's query words are left out when its articles are compared (``TopicTerms``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.cluster import (
    ClusterParams,
    CorpusStats,
    DevelopmentView,
    Member,
    TopicTerms,
    features,
    regroup,
)
from monitor.config import load_config
from monitor.pipeline import topic_terms

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

# Two events of one broad topic ("Russia–North Korea military ties"): both name the countries,
# their capitals and leaders; what differs is who did what.
TREATY_1 = (
    "Russian parliament ratifies defence pact with North Korea",
    "Russia's lower house of parliament, the State Duma, voted unanimously on Thursday to ratify "
    "a comprehensive strategic partnership treaty with North Korea that includes a mutual defence "
    "clause.\nThe treaty, signed by Vladimir Putin and Kim Jong Un during the Russian leader's "
    "visit to Pyongyang in June, obliges each side to provide immediate military assistance if "
    "the other is attacked.\nDeputy Foreign Minister Andrei Rudenko told lawmakers the agreement "
    "was not directed against third countries. Speaker Vyacheslav Volodin said 396 deputies "
    "backed the ratification law.",
)
TREATY_2 = (
    "Duma backs mutual defence treaty with Pyongyang",
    "Russian lawmakers have approved a mutual defence treaty with North Korea, with all 396 "
    "deputies present in the State Duma voting for ratification on Thursday.\nThe pact, agreed "
    "when Vladimir Putin visited Pyongyang in June and met Kim Jong Un, commits Moscow and "
    "Pyongyang to come to each other's aid with military means.\nDeputy foreign minister Andrei "
    "Rudenko said the treaty threatened no one. Duma speaker Vyacheslav Volodin hailed the vote.",
)
VISIT_1 = (
    "Shoigu meets Kim Jong Un in Pyongyang on surprise visit",
    "Sergei Shoigu, the secretary of Russia's Security Council, met North Korean leader Kim Jong "
    "Un in Pyongyang on Friday during an unannounced visit, state media in both countries "
    "reported.\nThe two discussed strategic security issues and the implementation of the "
    "partnership treaty, RIA Novosti said. Shoigu delivered a personal message from Vladimir "
    "Putin.\nIt was Shoigu's second trip to the North Korean capital this year.",
)
VISIT_2 = (
    "Kim hosts Russian security chief Shoigu in North Korea",
    "North Korea's Kim Jong Un received Sergei Shoigu, head of Russia's Security Council, in "
    "Pyongyang on Friday, according to Russian and North Korean state media.\nShoigu passed on "
    "greetings from Putin and the pair discussed security cooperation under the treaty Moscow "
    "and Pyongyang signed in June, RIA Novosti reported.\nKCNA said Kim hailed ties between the "
    "two militaries.",
)

QUERY_CONFIG = """\
feeds: [{name: A, url: "https://a.example/feed"}]
topics:
  - name: ties
    all:
      - ["north korea*", pyongyang, "kim jong un", кндр, 북한]
      - [russia, moscow, putin, россия]
  - name: plain
    query: 'shoigu OR "security council"'
"""


def test_the_query_words_are_covered_as_the_matcher_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(QUERY_CONFIG, encoding="utf-8")
    terms = topic_terms(load_config(path))
    ties = terms["ties"]
    assert ties.covers("w:", "north") and ties.covers("w:", "pyongyang")
    assert ties.covers("w:", "korean") and ties.covers("n:", "korean")  # "north korea*"
    assert ties.covers("n:", "россия") and ties.covers("w:", "росс")  # stemmed as matched
    assert ties.covers("w:", "북한은")  # Hangul matches as a prefix
    assert not ties.covers("w:", "shoigu") and not ties.covers("w:", "treati")
    assert not ties.covers("f:", "2026")  # numbers and dates never
    assert terms["plain"].covers("n:", "shoigu") and terms["plain"].covers("w:", "secur")
    assert not TopicTerms() and not TopicTerms().covers("w:", "north")


def _one_development(*articles: tuple[str, str]) -> tuple[DevelopmentView, CorpusStats]:
    # Other news stored first, as in a database that has run for a while: the topic's words
    # (North Korea, Russia, Pyongyang) are rare in it, so they weigh the most.
    stats = CorpusStats(500, {})
    feats = [features(title, text, "en") for title, text in articles]
    stats.add_all(feats)
    members = tuple(Member(i + 1, f, T0 + timedelta(minutes=i)) for i, f in enumerate(feats))
    return DevelopmentView(1, members[0].seen, members[-1].seen, members), stats


def test_two_events_of_a_broad_topic_are_regrouped_apart_without_its_query_words(
    tmp_path: Path,
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(QUERY_CONFIG, encoding="utf-8")
    ties = topic_terms(load_config(path))["ties"]
    # Say the visit's first report joined the treaty's development, and the next followed it.
    dev, stats = _one_development(TREATY_1, TREATY_2, VISIT_1, VISIT_2)
    with_all_words = regroup([dev], stats, ClusterParams(), [1])
    assert with_all_words == []  # the shared topic words hold them together
    moves = regroup([dev], stats, replace(ClusterParams(), topic_terms=ties), [1])
    assert sorted(m.item_id for m in moves) == [3, 4]  # the visit leaves as its own development
    assert all(m.to_development is None and m.from_development == 1 for m in moves)


def test_the_service_compares_each_topic_without_its_own_query_words(tmp_path: Path) -> None:
    import asyncio

    from monitor.clock import FakeClock
    from monitor.service import open_pipeline

    path = tmp_path / "config" / "monitor.yaml"
    path.parent.mkdir()
    path.write_text("workers: 0\n" + QUERY_CONFIG, encoding="utf-8")
    config = load_config(path)

    async def params_of(topic: str) -> ClusterParams:
        async with open_pipeline(config, clock=FakeClock(T0), workers=0) as pipeline:
            return pipeline.writer.store._params(topic)

    ties = asyncio.run(params_of("ties")).topic_terms
    assert ties.covers("w:", "pyongyang") and not ties.covers("w:", "shoigu")
    assert asyncio.run(params_of("plain")).topic_terms.covers("w:", "shoigu")
