"""Regrouping in the store: members moved between a topic's developments after a poll, every change
recorded in `development_moves`, a group split off alerted as a new development, and the writer's
clustering memory still reading what the database holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from monitor.alert.plan import AlertRouting, TopicRule
from monitor.cluster import ClusterParams, find_merges
from monitor.store import Store
from monitor.store.developments import (
    StoredDocFreqs,
    merge_developments,
    recent_developments,
    split_pairs,
)
from tests.test_cluster import BACKGROUND, JAPAN_1, JAPAN_2, PERU_1, PERU_2, PERU_3
from tests.test_contrast import KOWAL, PRICE
from tests.test_contrast import PARAMS as SPLIT
from tests.test_dev_cache import START, Doc, open_store, record, shape

# An earlier model that joined everything (as a first article joining its look-alike does).
JOIN_ALL = ClusterParams(join_threshold=0.0, join_threshold_single=0.0, regroup=False)


def doc(key: str, article: tuple[str, str]) -> Doc:
    return Doc(f"https://news.example/{key}", None, article[0], article[1], ("quakes",))


def wrong_then_fixed(path: Path, cached: bool) -> Store:
    store = open_store(path, cached)
    store.alert_routing = AlertRouting(
        {"quakes": TopicRule("quakes", ("chat",), None)}, {"chat": "immediate"}, ("quakes",)
    )
    store.cluster_params = JOIN_ALL
    docs = [doc("peru1", PERU_1), doc("japan1", JAPAN_1), doc("japan2", JAPAN_2)]
    record(store, "A", docs, START)
    record(store, "A", [doc("peru2", PERU_2)], START + timedelta(minutes=30))
    store.cluster_params = None  # the shipped model, regrouping after each poll
    record(store, "B", [doc("peru3", PERU_3)], START + timedelta(hours=1))
    return store


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store.conn.execute(sql).fetchall()]


def test_regroup_splits_off_the_look_alike_event_and_records_it(tmp_path: Path) -> None:
    store = wrong_then_fixed(tmp_path / "cached.db", cached=True)
    ids = dict(rows(store, "SELECT url, id FROM items"))
    peru1, japan1, japan2, peru2, peru3 = (
        ids[f"https://news.example/{k}"] for k in ("peru1", "japan1", "japan2", "peru2", "peru3")
    )
    devs = rows(
        store,
        """SELECT id, title, first_item_id, items, merged_into, split_from FROM developments
           ORDER BY id""",
    )
    assert devs == [
        (1, PERU_1[0], peru1, 3, None, None),
        (2, JAPAN_1[0], japan1, 2, None, 1),  # split off development 1
    ]
    members = rows(
        store, "SELECT item_id, development_id, relation FROM development_items ORDER BY item_id"
    )
    assert members == [
        (peru1, 1, "first"),
        (japan1, 2, "first"),
        (japan2, 2, "report"),
        (peru2, 1, "report"),
        (peru3, 1, "report"),
    ]
    moves = rows(
        store,
        """SELECT item_id, from_development, to_development, old_relation, new_relation
           FROM development_moves ORDER BY item_id""",
    )
    assert moves == [(japan1, 1, 2, "report", "first"), (japan2, 1, 2, "report", "report")]
    assert all(0.0 < s <= 1.0 for (s,) in rows(store, "SELECT score FROM development_moves"))
    # Alerts: development 1 when it opened; the split-off development now, with its first item
    # (from an earlier poll); peru3 is a report (no alert).
    alerts = rows(store, "SELECT development_id, item_id FROM outbox ORDER BY id")
    assert alerts == [(1, peru1), (2, japan1)]
    # The clustering memory was dropped for the topic and reads what the database holds.
    cache = store.cluster_cache()
    assert cache is not None
    since = START - timedelta(days=1)
    assert shape(cache.views(store.conn, "quakes", since)) == shape(
        recent_developments(store.conn, "quakes", since)
    )


def test_regroup_decides_the_same_with_and_without_the_clustering_memory(
    tmp_path: Path,
) -> None:
    cached = wrong_then_fixed(tmp_path / "cached.db", cached=True)
    plain = wrong_then_fixed(tmp_path / "plain.db", cached=False)
    for sql in (
        "SELECT * FROM developments ORDER BY id",
        "SELECT * FROM development_items ORDER BY item_id",
        "SELECT * FROM development_moves ORDER BY id",
    ):
        assert rows(cached, sql) == rows(plain, sql)


def test_a_later_poll_of_a_right_grouping_moves_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db", cached=True)
    record(store, "A", [doc("peru1", PERU_1), doc("japan1", JAPAN_1)], START)
    record(store, "A", [doc("peru2", PERU_2), doc("japan2", JAPAN_2)], START + timedelta(hours=1))
    record(store, "B", [doc("peru3", PERU_3)], START + timedelta(hours=2))
    assert rows(store, "SELECT count(*) FROM development_moves") == [(0,)]
    assert rows(store, "SELECT items FROM developments ORDER BY id") == [(3,), (2,)]


def test_rematch_regroups_what_it_rebuilds_silently(tmp_path: Path) -> None:
    """`monitor rematch` rebuilds developments a few items at a time and regroups them as polls
    would: here joining is forced, and only regrouping can part the look-alike events."""
    from dataclasses import replace

    keys = (("peru1", PERU_1), ("japan1", JAPAN_1), ("japan2", JAPAN_2), ("peru2", PERU_2))
    for regrouping in (True, False):
        path = tmp_path / f"{regrouping}.db"
        store = open_store(path, cached=True)
        record(store, "A", [*(doc(k, a) for k, a in keys), doc("peru3", PERU_3)], START)
        with store.transaction():  # as if the topic had just been added: matched, unclustered
            for table in ("development_moves", "development_items", "developments"):
                store.conn.execute(f"DELETE FROM {table}")
        store.close()
        store = open_store(path, cached=True)
        store.alert_routing = AlertRouting(
            {"quakes": TopicRule("quakes", ("chat",), None)}, {"chat": "immediate"}, ("quakes",)
        )
        forced = replace(ClusterParams(), join_threshold=0.0, join_threshold_single=0.0)
        store.cluster_params = replace(forced, regroup=regrouping)
        with store.transaction():
            counts = store.rebuild_developments(["quakes"], START + timedelta(hours=1))
        sizes = rows(store, "SELECT items FROM developments WHERE merged_into IS NULL ORDER BY id")
        assert counts == {"quakes": len(sizes)}
        assert sizes == ([(3,), (2,)] if regrouping else [(5,)])
        assert rows(store, "SELECT count(*) FROM outbox") == [(0,)]


def test_merges_do_not_fold_back_what_regrouping_split_off(tmp_path: Path) -> None:
    # Two players arrested the same day, joined by decisions, split by the contrastive split of
    # regrouping; merged back, the next regroup would split them again and alert again.
    store = open_store(tmp_path / "db", cached=False)
    store.cluster_params = replace(JOIN_ALL, merge_threshold=1.1)
    arrests = [x for pair in zip(PRICE, KOWAL, strict=True) for x in pair]
    docs = [Doc(f"https://news.example/dui{i}", None, *a, ("dui",)) for i, a in enumerate(arrests)]
    other = [
        Doc(f"https://news.example/bg{i}", None, *a, ("other",)) for i, a in enumerate(BACKGROUND)
    ]
    record(store, "B", other, START - timedelta(hours=1))  # the store has seen other news
    record(store, "A", docs[:7], START)
    store.cluster_params = SPLIT
    record(store, "A", docs[7:], START + timedelta(minutes=30))
    dui = "SELECT id, items, split_from, merged_into FROM developments WHERE topic = 'dui'"
    assert rows(store, dui) == [(2, 4, None, None), (3, 4, 2, None)]
    since = START - timedelta(days=1)
    assert split_pairs(store.conn, "dui", since, {2, 3}) == [(3, 2)]
    assert split_pairs(store.conn, "dui", since, {2}) == []
    eager = replace(SPLIT, merge_threshold=0.0)
    views = recent_developments(store.conn, "dui", since)
    assert find_merges(views, StoredDocFreqs(store.conn), eager) == [(2, 3)]  # without the guard
    now = START + timedelta(hours=1)
    assert merge_developments(store.conn, "dui", eager, now, {2, 3}) == []
    assert merge_developments(store.conn, "dui", eager, now) == []
    assert rows(store, dui) == [(2, 4, None, None), (3, 4, 2, None)]
