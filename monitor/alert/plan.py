"""Which alerts a poll makes: pure, no I/O.

Input: the newly stored, matched articles of one poll (one `AlertCandidate` per item and topic), the
routing taken from the config, and `now`. Output: the outbox rows to write (`PlannedAlert`), in the
same transaction that records the items.

Rules:
- a topic alerts only the channels its `notify:` names;
- `alert_max_age` (topic value, else `defaults:`; `null` = no limit): never alert on an article published
  more than that before it was first seen, so a feed's backlog sends nothing old;
- relation: `first` (a new development) alerts; `report` only with `alert_on_reports: true`;
  `duplicate` never;
- an item matching several topics routed to the same channel makes ONE alert naming them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from monitor.clock import utc_iso

if TYPE_CHECKING:
    from monitor.config import Config

Relation = Literal["first", "report", "duplicate"]
Mode = Literal["immediate", "digest"]


@dataclass(frozen=True)
class AlertCandidate:
    """One newly matched item for one topic, as the store has just recorded it."""

    item_id: int
    topic: str
    title: str
    url: str | None
    outlet: str | None  # the page's site name, else the feed's name (store/outlets.py)
    published: datetime | None
    first_seen: datetime
    terms: tuple[str, ...] = ()
    snippet: str = ""  # hits wrapped in **...** (monitor.match.highlight)
    language: str | None = None
    # Filled in by the developments stage; until then every new match is a new development.
    development_id: int | None = None
    relation: Relation = "first"
    revision: int = 1  # the development's alert number: 1 for its first alert
    development_title: str | None = None
    other_outlets: tuple[str, ...] = ()  # outlets that reported the same development


@dataclass(frozen=True)
class TopicRule:
    name: str
    notify: tuple[str, ...]
    max_age: timedelta | None  # None: alert whatever the article's age
    alert_on_reports: bool = False


@dataclass(frozen=True)
class AlertRouting:
    """The part of the config that decides alerts (taken once per config load)."""

    topics: Mapping[str, TopicRule] = field(default_factory=dict)
    modes: Mapping[str, Mode] = field(default_factory=dict)  # channel -> mode
    order: tuple[str, ...] = ()  # topic names in config order: how a message lists them

    @classmethod
    def from_config(cls, config: Config) -> AlertRouting:
        default_age = config.defaults.alert_max_age
        rules = {}
        for topic in config.topics:
            # A topic's explicit `alert_max_age: null` means "no limit"; an absent key inherits.
            explicit = "alert_max_age" in topic.model_fields_set
            rules[topic.name] = TopicRule(
                name=topic.name,
                notify=tuple(topic.notify),
                max_age=topic.alert_max_age if explicit else default_age,
                alert_on_reports=topic.alert_on_reports,
            )
        modes: dict[str, Mode] = {name: ch.mode for name, ch in config.channels.items()}
        return cls(rules, modes, tuple(t.name for t in config.topics))


@dataclass(frozen=True)
class PlannedAlert:
    """One outbox row to write."""

    key: str  # idempotency key
    channel: str
    mode: Mode
    topics: tuple[str, ...]
    item_id: int
    development_id: int | None
    revision: int
    created_at: datetime
    payload: Mapping[str, Any]


def alert_key(development_id: int | None, item_id: int, channel: str, revision: int) -> str:
    """Development (or item), channel, revision: the same alert always gets the same key."""
    subject = f"dev:{development_id}" if development_id is not None else f"item:{item_id}"
    return f"{subject}:{channel}:{revision}"


def too_old(candidate: AlertCandidate, max_age: timedelta | None) -> bool:
    """Published more than max_age before first seen (an undated article counts as new)."""
    if max_age is None or candidate.published is None:
        return False
    return candidate.first_seen - candidate.published > max_age


def alerts(candidate: AlertCandidate, rule: TopicRule) -> bool:
    if candidate.relation == "duplicate":
        return False
    if candidate.relation == "report" and not rule.alert_on_reports:
        return False
    return not too_old(candidate, rule.max_age)


def channels_for(candidate: AlertCandidate, routing: AlertRouting) -> list[str]:
    """The channels `candidate` is alerted on (none: no alert). They do not depend on the
    development context (revision, title, other outlets), so the store reads that only for
    candidates with some (`routed`)."""
    rule = routing.topics.get(candidate.topic)
    if rule is None or not alerts(candidate, rule):
        return []
    return [channel for channel in rule.notify if channel in routing.modes]


def routed(candidate: AlertCandidate, routing: AlertRouting) -> bool:
    """Whether `plan_alerts` would alert on `candidate` at all (on some channel)."""
    return bool(channels_for(candidate, routing))


def plan_alerts(
    candidates: Iterable[AlertCandidate], routing: AlertRouting, now: datetime
) -> list[PlannedAlert]:
    """The outbox rows for one poll's candidates, one per (item, channel), in item order."""
    groups: dict[tuple[int, str], list[AlertCandidate]] = {}
    for candidate in candidates:
        for channel in channels_for(candidate, routing):
            group = groups.setdefault((candidate.item_id, channel), [])
            if all(c.topic != candidate.topic for c in group):
                group.append(candidate)
    rank = {name: i for i, name in enumerate(routing.order)}
    planned = []
    for (item_id, channel), group in groups.items():
        group.sort(key=lambda c: (rank.get(c.topic, len(rank)), c.topic))
        planned.append(_planned(item_id, channel, routing.modes[channel], group, now))
    return planned


def _planned(
    item_id: int, channel: str, mode: Mode, group: Sequence[AlertCandidate], now: datetime
) -> PlannedAlert:
    # The key follows the lowest-numbered development the message reports (one per topic).
    with_dev = sorted((c for c in group if c.development_id is not None), key=_dev_id)
    lead = with_dev[0] if with_dev else group[0]
    revision = lead.revision if with_dev else 1
    return PlannedAlert(
        key=alert_key(lead.development_id, item_id, channel, revision),
        channel=channel,
        mode=mode,
        topics=tuple(c.topic for c in group),
        item_id=item_id,
        development_id=lead.development_id,
        revision=revision,
        created_at=now,
        payload=alert_payload(group),
    )


def _dev_id(candidate: AlertCandidate) -> int:
    return candidate.development_id or 0


def alert_payload(group: Sequence[AlertCandidate]) -> dict[str, Any]:
    """Everything a template needs, captured now (JSON-ready)."""
    first = group[0]
    terms = list(dict.fromkeys(t for c in group for t in c.terms))
    developments = [
        {
            "id": c.development_id,
            "topic": c.topic,
            "title": c.development_title or first.title,
            "revision": c.revision,
            "other_outlets": list(c.other_outlets),
        }
        for c in group
        if c.development_id is not None
    ]
    return {
        "kind": "alert",
        "topics": [c.topic for c in group],
        "item": {
            "id": first.item_id,
            "title": first.title,
            "url": first.url,
            "outlet": first.outlet,
            "published": utc_iso(first.published),
            "first_seen": utc_iso(first.first_seen),
            "language": first.language,
        },
        "matches": [
            {"topic": c.topic, "terms": list(c.terms), "snippet": c.snippet} for c in group
        ],
        "terms": terms,
        "snippet": next((c.snippet for c in group if c.snippet), ""),
        "relation": "first" if any(c.relation == "first" for c in group) else first.relation,
        "developments": developments,
        "other_outlets": sorted({o for c in group for o in c.other_outlets}),
    }
