"""Hostile bodies: too big, compressed bombs, not a feed, broken XML, entity tricks, odd entries.

Each is polled beside a healthy feed in the same pass. Bodies that fail are recorded as errors in
plain words and back off; bodies that can be read are stored with a warning on the feed. The big
ones are measured: Python's peak allocations (tracemalloc) and the process's RSS growth.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.clock import FakeClock
from monitor.config import Config
from monitor.pipeline import PollOutcome
from monitor.schedule import FeedStatus
from tests.newsroom import (
    XXE_PROBE_PATH,
    Entry,
    GzipBomb,
    HostileKind,
    HtmlInstead,
    Newsroom,
    Oversized,
    Transcode,
)
from tests.pipeline_helpers import (
    START,
    Peak,
    feed_row,
    feed_state,
    make_config,
    measure_peak,
    one_pass,
    stored_items,
)

INTERVAL = timedelta(minutes=10)
MB = 10**6
LIMIT = 10 * MB  # the default body cap


def poll_beside_good(
    room: Newsroom, tmp_path: Path, bad_url: str, *, measure: bool = False, timeout: str = "1s"
) -> tuple[Config, dict[str, PollOutcome], Peak]:
    config = make_config(
        tmp_path, [("good", room.url("/good.xml")), ("bad", bad_url)], timeout=timeout
    )
    with measure_peak(trace=measure) as peak:
        outcomes = one_pass(config, FakeClock(START), ignore_backoff=False)
    assert outcomes["good"].status == "ok" and outcomes["good"].new == 2
    assert {i["text_source"] for i in stored_items(config, "good")} == {"page"}
    return config, outcomes, peak


def assert_failed_and_backs_off(config: Config, error: str) -> None:
    state = feed_state(config, "bad")
    assert state.status is FeedStatus.ERROR and state.last_error == error
    assert state.error_count == 1 and state.next_fetch == START + INTERVAL
    clock = FakeClock(START + INTERVAL)
    again = one_pass(config, clock, ignore_backoff=False)["bad"]
    assert again.error == error
    assert feed_state(config, "bad").next_fetch == clock.now() + 2 * INTERVAL


def assert_read_on_schedule(config: Config, warning: str | None) -> None:
    """A readable feed: no error, the normal interval, and the warning (if any) in plain words.

    In `warning`, `<n>` stands for any number (positions depend on the newsroom's port)."""
    state = feed_state(config, "bad")
    assert state.status is FeedStatus.OK and state.last_error is None
    assert state.error_count == 0 and state.next_fetch == START + INTERVAL
    recorded = feed_row(config, "bad")["last_warning"]
    if warning is None:
        assert recorded is None
    else:
        pattern = re.escape(warning).replace(re.escape("<n>"), r"\d+")
        assert re.fullmatch(pattern, recorded or ""), recorded


def bad_items(config: Config) -> list[dict[str, Any]]:
    return stored_items(config, "bad")


# --------------------------------------------------------------------------- size


@pytest.mark.usefixtures("warmed")
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Oversized(100 * MB), "response too large: 100.0 MB declared, limit 10.0 MB"),
        (
            Oversized(100 * MB, declare_length=False),
            "response too large: more than 10.0 MB; cut off",
        ),
        (GzipBomb(1 << 30), "response too large: more than 10.0 MB; cut off"),
    ],
    ids=["100 MB declared", "100 MB chunked", "gzip bomb of 1 GiB"],
)
def test_huge_bodies_are_cut_off_with_memory_bounded(
    room: Newsroom, tmp_path: Path, fault: Oversized | GzipBomb, error: str
) -> None:
    room.set_fault("/big.xml", fault)
    # A generous timeout: this is about size, and tracemalloc slows the decoder down.
    config, outcomes, peak = poll_beside_good(
        room, tmp_path, room.url("/big.xml"), measure=True, timeout="20s"
    )
    assert outcomes["bad"].error == error
    # Bounded by the cap, not by the body.
    print(
        f"\n{outcomes['bad'].error}: {peak.traced / MB:.1f} MB traced, RSS +{peak.rss_growth / MB:.1f} MB"
    )
    assert peak.traced < 1.5 * LIMIT, f"peak {peak.traced / MB:.1f} MB traced"
    assert peak.rss_growth < 6 * LIMIT, f"RSS grew {peak.rss_growth / MB:.1f} MB"
    assert_failed_and_backs_off(config, error)


# --------------------------------------------------------------------------- not a feed


def test_html_where_a_feed_was_expected(room: Newsroom, tmp_path: Path) -> None:
    room.set_fault("/news.xml", HtmlInstead())
    url = room.url("/news.xml")
    config, outcomes, _ = poll_beside_good(room, tmp_path, url)
    error = (
        f"{url} is a web page, not a feed, and it announces no feed "
        '(no <link rel="alternate"> of type RSS, Atom or JSON Feed)'
    )
    assert outcomes["bad"].error == error
    assert_failed_and_backs_off(config, error)


def hostile(room: Newsroom, kind: HostileKind) -> str:
    return room.add_hostile_feed(f"/hostile-{kind}.xml", kind)


def test_malformed_xml_yields_what_can_be_read(room: Newsroom, tmp_path: Path) -> None:
    config, outcomes, _ = poll_beside_good(room, tmp_path, hostile(room, "malformed"))
    assert outcomes["bad"].status == "ok"
    assert "Fine" in {i["title"] for i in bad_items(config)}
    assert_read_on_schedule(
        config,
        "the feed is not well-formed XML (not well-formed (invalid token) at line 2, column <n>); "
        "what could be read was read leniently; "
        # The half item it ends with: not stored as a blank item.
        "1 entry has no title, link, content or id and was skipped",
    )


def test_wrong_declared_charset_is_noticed_and_the_text_read_right(
    room: Newsroom, tmp_path: Path
) -> None:
    published = room.publish("/ru.xml", 2, lang="ru", seed=40)
    room.set_fault("/ru.xml", Transcode(actual="windows-1251", declared="utf-8"))
    config, _, _ = poll_beside_good(room, tmp_path, room.url("/ru.xml"))
    assert {i["title"] for i in bad_items(config)} == {p.story.title for p in published}
    assert_read_on_schedule(config, "the feed declares UTF-8 but is not UTF-8; read as cp1251")


def test_empty_feed_is_fine_and_stores_nothing(room: Newsroom, tmp_path: Path) -> None:
    config, outcomes, _ = poll_beside_good(room, tmp_path, hostile(room, "empty"))
    assert outcomes["bad"].status == "ok" and outcomes["bad"].new == 0
    assert bad_items(config) == []
    assert_read_on_schedule(config, None)


# --------------------------------------------------------------------------- odd entries


def test_duplicate_guids(room: Newsroom, tmp_path: Path) -> None:
    """Same guid, different links: five articles. Same guid and no link: one, and a warning."""
    url = hostile(room, "duplicate_guids")
    repeated = [Entry(title=f"Copy {i}", guid="urn:same", summary="Same entry") for i in range(3)]
    room.add_feed("/repeats.xml", repeated)
    config = make_config(
        tmp_path,
        [("good", room.url("/good.xml")), ("bad", url), ("repeats", room.url("/repeats.xml"))],
    )
    outcomes = one_pass(config, FakeClock(START))
    assert outcomes["good"].new == 2
    assert outcomes["bad"].new == 5
    assert outcomes["repeats"].new == 1
    assert [i["title"] for i in stored_items(config, "repeats")] == ["Copy 0"]
    assert feed_row(config, "repeats")["last_warning"] == (
        "2 entries repeat the link or id of an earlier entry and were skipped: guid:urn:same, "
        "guid:urn:same"
    )


def test_javascript_and_data_links_are_never_fetched(room: Newsroom, tmp_path: Path) -> None:
    config, outcomes, _ = poll_beside_good(room, tmp_path, hostile(room, "bad_links"))
    assert outcomes["bad"].new == 5
    items = {i["title"]: i for i in bad_items(config)}
    for title in ("Item 0", "Item 1"):  # javascript:alert(1) and data:text/html,...
        assert items[title]["url"] is None and items[title]["text_source"] == "feed"
        assert items[title]["extract_error"] is None
    assert items["Item 2"]["url"] == room.url("/relative/3")  # a relative link, resolved
    assert not [r for r in room.log if "alert" in r.target or r.target.startswith("data")]
    assert_read_on_schedule(config, None)


def test_dates_far_in_the_future_are_not_trusted(room: Newsroom, tmp_path: Path) -> None:
    config, _, _ = poll_beside_good(room, tmp_path, hostile(room, "future_dates"))
    (item,) = [i for i in bad_items(config) if i["title"] == "Item 0"]  # dated 2999-12-31
    published = item["published"]
    assert published is None or published <= (START + timedelta(days=1)).isoformat()
    assert "future" in (feed_row(config, "bad")["last_warning"] or "")


def test_dates_far_in_the_future_do_not_break_the_poll(room: Newsroom, tmp_path: Path) -> None:
    """Whatever is decided about the date, the entry is stored and the feed stays fine."""
    config, outcomes, _ = poll_beside_good(room, tmp_path, hostile(room, "future_dates"))
    assert outcomes["bad"].new == 2
    assert feed_state(config, "bad").status is FeedStatus.OK


# --------------------------------------------------------------------------- entity tricks


ENTITIES_IGNORED = (
    "the feed declares {n} XML entities that were ignored for safety (external, nested or large "
    "entities); the feed is not well-formed XML (undefined entity at line {line}, column <n>); "
    "what could be read was read leniently"
)


@pytest.mark.usefixtures("warmed")
def test_billion_laughs_is_not_expanded(room: Newsroom, tmp_path: Path) -> None:
    config, outcomes, peak = poll_beside_good(
        room, tmp_path, hostile(room, "billion_laughs"), measure=True
    )
    assert outcomes["bad"].status == "ok"
    assert max(len(i["title"]) + len(i["text"] or "") for i in bad_items(config)) < 100
    assert peak.traced < 20 * MB, f"peak {peak.traced / MB:.1f} MB traced"
    assert_read_on_schedule(config, ENTITIES_IGNORED.format(n=9, line=5))


def test_external_entities_are_never_resolved(room: Newsroom, tmp_path: Path) -> None:
    url = hostile(room, "external_entity")
    config, _, _ = poll_beside_good(room, tmp_path, url)
    assert room.requests_for(XXE_PROBE_PATH) == []  # the parser never fetched the entity
    assert_read_on_schedule(config, ENTITIES_IGNORED.format(n=1, line=2))


def test_local_file_entities_are_never_read(room: Newsroom, tmp_path: Path) -> None:
    config, _, _ = poll_beside_good(room, tmp_path, hostile(room, "local_file_entity"))
    stored = " ".join(f"{i['title']} {i['text']}" for i in bad_items(config))
    assert "root:" not in stored
    assert_read_on_schedule(config, ENTITIES_IGNORED.format(n=1, line=2))
