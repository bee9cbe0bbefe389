"""The pure alert planner: age limit, notify, grouping per channel, relations, keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.alert.plan import (
    AlertCandidate,
    AlertRouting,
    TopicRule,
    alert_key,
    plan_alerts,
    routed,
)
from monitor.config import parse_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

CONFIG = """
channels:
  chat: "json://127.0.0.1:9/hook"
  mail: {url: "mailto://127.0.0.1:9?to=a@example.org", mode: digest, schedule: "0 8 * * *"}
  spare: "json://127.0.0.1:9/spare"
topics:
  - {name: dprk, query: dprk, notify: [chat, mail]}
  - {name: russia, query: russia, notify: [chat]}
  - {name: backlog, query: archive, notify: [chat], alert_max_age: null}
  - {name: fresh, query: fresh, notify: [chat], alert_max_age: 2h}
  - {name: silent, query: silent}
  - {name: reports, query: reports, notify: [chat], alert_on_reports: true}
"""


def routing(text: str = CONFIG) -> AlertRouting:
    return AlertRouting.from_config(parse_config(text, Path("/tmp/monitor.yaml"), {}))


def cand(item: int, topic: str, **kw: Any) -> AlertCandidate:
    values: dict[str, Any] = {
        "item_id": item,
        "topic": topic,
        "title": f"Story {item}",
        "url": f"https://news.example/{item}",
        "outlet": "Outlet",
        "published": NOW - timedelta(hours=1),
        "first_seen": NOW,
        "terms": ("kim",),
        "snippet": "**Kim** met",
    }
    values.update(kw)
    return AlertCandidate(**values)


def test_one_row_per_notified_channel_with_its_mode() -> None:
    rows = plan_alerts([cand(1, "dprk")], routing(), NOW)
    assert {(r.channel, r.mode) for r in rows} == {("chat", "immediate"), ("mail", "digest")}
    assert all(r.key == f"item:1:{r.channel}:1" and r.revision == 1 for r in rows)
    assert all(r.created_at == NOW for r in rows)


def test_topics_routed_to_the_same_channel_make_one_message_naming_all() -> None:
    rows = plan_alerts([cand(1, "russia"), cand(1, "dprk")], routing(), NOW)
    chat = [r for r in rows if r.channel == "chat"]
    assert len(chat) == 1
    assert chat[0].topics == ("dprk", "russia")  # config order, not arrival order
    assert chat[0].payload["topics"] == ["dprk", "russia"]
    mail = [r for r in rows if r.channel == "mail"]
    assert [r.topics for r in mail] == [("dprk",)]


def test_topic_without_notify_or_unknown_topic_makes_nothing() -> None:
    assert plan_alerts([cand(1, "silent"), cand(2, "nonexistent")], routing(), NOW) == []


def test_default_alert_max_age_is_three_days_of_publish_before_first_seen() -> None:
    r = routing()
    old = cand(1, "russia", published=NOW - 3 * DAY - timedelta(minutes=1))
    edge = cand(2, "russia", published=NOW - 3 * DAY)
    undated = cand(3, "russia", published=None)
    rows = plan_alerts([old, edge, undated], r, NOW)
    assert sorted(row.item_id for row in rows) == [2, 3]


def test_age_counts_from_first_seen_not_from_now() -> None:
    # Planned late (now is a week on) for an article first seen an hour after publication: alerted.
    late = cand(1, "russia", published=NOW - 7 * DAY, first_seen=NOW - 7 * DAY + timedelta(hours=1))
    assert len(plan_alerts([late], routing(), NOW)) == 1


def test_topic_overrides_max_age_and_null_means_everything() -> None:
    r = routing()
    ancient = NOW - 400 * DAY
    assert len(plan_alerts([cand(1, "backlog", published=ancient)], r, NOW)) == 1
    assert plan_alerts([cand(2, "fresh", published=NOW - timedelta(hours=3))], r, NOW) == []
    assert len(plan_alerts([cand(3, "fresh", published=NOW - timedelta(hours=1))], r, NOW)) == 1


def test_defaults_null_alerts_on_everything() -> None:
    text = CONFIG.replace("channels:", "defaults: {alert_max_age: null}\nchannels:", 1)
    assert len(plan_alerts([cand(1, "russia", published=NOW - 90 * DAY)], routing(text), NOW)) == 1


def test_relations_first_alerts_report_only_when_asked_duplicate_never() -> None:
    r = routing()
    rows = plan_alerts(
        [
            cand(1, "russia", development_id=7, relation="first"),
            cand(2, "russia", development_id=7, relation="report", revision=2),
            cand(3, "reports", development_id=8, relation="report", revision=2),
            cand(4, "reports", development_id=8, relation="duplicate", revision=3),
        ],
        r,
        NOW,
    )
    assert [(row.item_id, row.key) for row in rows] == [(1, "dev:7:chat:1"), (3, "dev:8:chat:2")]


def test_key_names_development_channel_and_revision() -> None:
    assert alert_key(12, 99, "chat", 3) == "dev:12:chat:3"
    assert alert_key(None, 99, "chat", 1) == "item:99:chat:1"
    rows = plan_alerts(
        [
            cand(5, "russia", development_id=9, revision=2, other_outlets=("TASS",)),
            cand(5, "dprk", development_id=4),
        ],
        routing(),
        NOW,
    )
    chat = next(r for r in rows if r.channel == "chat")
    assert chat.key == "dev:4:chat:1"  # the lowest development of the message leads
    assert chat.development_id == 4
    assert chat.payload["other_outlets"] == ["TASS"]
    assert [d["id"] for d in chat.payload["developments"]] == [4, 9]


def test_payload_carries_what_the_template_needs() -> None:
    (row,) = plan_alerts([cand(1, "russia", terms=("putin", "kim"))], routing(), NOW)
    p = row.payload
    assert p["item"]["title"] == "Story 1"
    assert p["item"]["url"] == "https://news.example/1"
    assert p["item"]["published"] == "2026-03-01T11:00:00Z"
    assert p["terms"] == ["putin", "kim"]
    assert p["snippet"] == "**Kim** met"
    assert p["relation"] == "first"


def test_a_repeated_candidate_for_the_same_topic_is_listed_once() -> None:
    (row,) = plan_alerts([cand(1, "russia"), cand(1, "russia")], routing(), NOW)
    assert row.topics == ("russia",)


def test_routed_says_which_candidates_plan_alerts_would_alert_on() -> None:
    """The store reads a candidate's development context only when `routed`: the rest must
    make no outbox row whatever their context."""
    configured = routing()
    unrouted = AlertRouting({"orphan": TopicRule("orphan", ("gone",), None)}, {"chat": "immediate"})
    seen = set()
    for r in (configured, unrouted):
        for topic in ("dprk", "russia", "backlog", "fresh", "silent", "reports", "orphan", "none"):
            for relation in ("first", "report", "duplicate"):
                for published in (NOW - timedelta(hours=1), NOW - 400 * DAY, None):
                    c = cand(1, topic, relation=relation, published=published, development_id=3)
                    planned = bool(plan_alerts([c], r, NOW))
                    assert routed(c, r) == planned, (topic, relation, published)
                    seen.add(planned)
    assert seen == {True, False}
