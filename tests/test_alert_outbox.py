"""The outbox table: written in the poll's transaction, claimed before sending, retried, ordered."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.alert import outbox
from monitor.alert.plan import AlertCandidate, plan_alerts
from monitor.records import FeedPoll, FetchResult, FetchStatus
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store
from monitor.store.schema import MIGRATIONS
from tests.alert_helpers import NOW, make_config, open_store, seed, story

LEASE = timedelta(seconds=90)
DAY = timedelta(days=1)

CONFIG = """
database: m.db
feeds: [{name: A, url: "https://a.example/feed"}]
channels:
  chat: "json://127.0.0.1:9/hook"
  mail: "json://127.0.0.1:9/mail"
topics:
  - {name: t, query: russia, notify: [chat]}
  - {name: u, query: korea, notify: [chat, mail]}
"""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(make_config(tmp_path, CONFIG))


def test_schema_v4_adds_the_outbox(store: Store) -> None:
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    columns = {row[1] for row in store.conn.execute("PRAGMA table_info(outbox)")}
    assert {
        "key", "channel", "mode", "topics", "item_id", "development_id", "revision", "created_at",
        "status", "attempts", "next_attempt_at", "claimed_by", "claimed_until", "last_error",
        "sent_at", "payload",
    } <= columns  # fmt: skip


def test_alerts_are_written_in_the_poll_transaction(store: Store) -> None:
    ids = seed(store, "A", [story(1, "t", "u"), story(2, "t")])
    rows = outbox.list_rows(store.conn, newest_first=False)
    assert [(r.item_id, r.channel, r.topics) for r in rows] == [
        (ids[0], "chat", ("t", "u")),
        (ids[0], "mail", ("u",)),
        (ids[1], "chat", ("t",)),
    ]
    assert all(r.status == "pending" and r.next_attempt_at == NOW for r in rows)


def test_a_failed_poll_transaction_leaves_no_alert(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_write_feed_state", broken)
    with pytest.raises(RuntimeError):
        seed(store, "A", [story(1, "t")])
    assert store.count("outbox") == 0
    assert store.count("items") == 0


def test_no_routing_means_no_alerts(store: Store) -> None:
    store.alert_routing = None
    seed(store, "A", [story(1, "t")])
    assert store.count("outbox") == 0


def test_the_same_alert_is_queued_once(store: Store) -> None:
    seed(store, "A", [story(1, "t")])
    routing = store.alert_routing
    assert routing is not None
    (queued,) = outbox.list_rows(store.conn)
    assert queued.key == f"dev:{queued.development_id}:chat:1"
    again = plan_alerts(
        [AlertCandidate(item_id=1, topic="t", title="x", url=None, outlet=None, published=None,
                        first_seen=NOW, development_id=queued.development_id)],
        routing,
        NOW,
    )  # fmt: skip
    with store.transaction():
        assert outbox.enqueue(store.conn, again) == 0
    assert store.count("outbox") == 1


def test_claim_takes_the_channel_head_only_and_in_order(store: Store) -> None:
    seed(store, "A", [story(1, "t"), story(2, "t"), story(3, "t")])
    first = outbox.claim_next(store.conn, "chat", "w1", NOW, LEASE)
    assert first is not None and first.item_id == 1 and first.status == "sending"
    assert first.attempts == 1 and first.claimed_by == "w1"
    # While the head is being sent nobody gets the next one: order is kept.
    assert outbox.claim_next(store.conn, "chat", "w2", NOW, LEASE) is None
    assert outbox.mark_sent(store.conn, first.id, "w1", NOW)
    second = outbox.claim_next(store.conn, "chat", "w2", NOW, LEASE)
    assert second is not None and second.item_id == 2


def test_failure_backs_off_exponentially_and_blocks_the_queue(store: Store) -> None:
    seed(store, "A", [story(1, "t"), story(2, "t")])
    now = NOW
    delays = []
    for _ in range(4):
        row = outbox.claim_next(store.conn, "chat", "w", now, LEASE)
        assert row is not None and row.item_id == 1
        assert outbox.mark_failed(store.conn, row.id, "w", "HTTP 503", now, DAY) == "pending"
        pending = outbox.get(store.conn, row.id)
        assert pending is not None
        delays.append(pending.next_attempt_at - now)
        # Not due before its back-off, and the alert behind it waits too.
        assert outbox.claim_next(store.conn, "chat", "w", now + delays[-1] / 2, LEASE) is None
        now = pending.next_attempt_at
    assert delays == [timedelta(seconds=30 * 2**i) for i in range(4)]
    assert outbox.backoff(30) == timedelta(hours=1)


def test_down_channel_is_retried_for_a_day_then_failed_and_visible(store: Store) -> None:
    seed(store, "A", [story(1, "t")])
    later = NOW + timedelta(hours=6)
    seed(store, "A", [story(2, "t")], now=later)
    now, attempts = NOW, 0
    while True:
        row = outbox.claim_next(store.conn, "chat", "w", now, LEASE)
        assert row is not None and row.item_id == 1
        attempts += 1
        if outbox.mark_failed(store.conn, row.id, "w", "connection refused", now, DAY) == "failed":
            break
        now = outbox.get(store.conn, row.id).next_attempt_at  # type: ignore[union-attr]
    assert DAY <= now - NOW <= DAY + timedelta(hours=1)
    assert 20 <= attempts <= 40
    failed = outbox.list_rows(store.conn, status="failed")
    assert [r.item_id for r in failed] == [1]
    assert "connection refused" in (failed[0].last_error or "")
    # The younger alert keeps its own day of retries, starting after the channel's back-off.
    young = outbox.list_rows(store.conn, status="pending")
    assert [r.item_id for r in young] == [2] and young[0].next_attempt_at > now
    # `monitor alerts retry` puts the failed one back, at the head of the queue.
    assert outbox.retry_failed(store.conn, now) == 1
    head = outbox.claim_next(store.conn, "chat", "w", now, LEASE)
    assert head is not None and head.item_id == 1 and head.attempts == 1
    # Sent: the channel works, so the younger one no longer waits out the old back-off.
    assert outbox.mark_sent(store.conn, head.id, "w", now)
    after = outbox.claim_next(store.conn, "chat", "w", now, LEASE)
    assert after is not None and after.item_id == 2


def test_rows_queued_as_long_as_the_failed_head_fail_with_it(store: Store) -> None:
    seed(store, "A", [story(1, "t"), story(2, "t")])
    row = outbox.claim_next(store.conn, "chat", "w", NOW + DAY, LEASE)
    assert row is not None
    assert outbox.mark_failed(store.conn, row.id, "w", "down", NOW + DAY, DAY) == "failed"
    assert [r.item_id for r in outbox.list_rows(store.conn, status="failed")] == [2, 1]


def test_a_stale_claim_is_taken_over_after_its_lease(store: Store) -> None:
    seed(store, "A", [story(1, "t")])
    crashed = outbox.claim_next(store.conn, "chat", "dead", NOW, LEASE)
    assert crashed is not None
    assert (
        outbox.claim_next(store.conn, "chat", "w", NOW + LEASE - timedelta(seconds=1), LEASE)
        is None
    )
    taken = outbox.claim_next(store.conn, "chat", "w", NOW + LEASE, LEASE)
    assert taken is not None and taken.id == crashed.id and taken.attempts == 2
    # The crashed worker's late report cannot overwrite the new claim.
    assert not outbox.mark_sent(store.conn, crashed.id, "dead", NOW + LEASE)
    assert outbox.mark_failed(store.conn, crashed.id, "dead", "x", NOW + LEASE, DAY) == "lost"
    assert outbox.mark_sent(store.conn, taken.id, "w", NOW + LEASE)


def test_racing_claims_from_several_connections_never_share_a_row(tmp_path: Path) -> None:
    config = make_config(tmp_path, CONFIG)
    store = open_store(config)
    seed(store, "A", [story(n, "t") for n in range(30)])
    others = [Store.open(config.database) for _ in range(4)]
    rounds = 30
    won: list[list[int | None]] = [[] for _ in others]
    go, done = threading.Barrier(len(others)), threading.Barrier(len(others))

    def worker(index: int) -> None:
        conn, name = others[index].conn, f"w{index}"
        for _ in range(rounds):
            go.wait()  # everyone asks for the same head at the same moment
            row = outbox.claim_next(conn, "chat", name, NOW, LEASE)
            won[index].append(row.id if row else None)
            done.wait()
            if row is not None:
                outbox.mark_sent(conn, row.id, name, NOW)
            go.wait()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(others))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(rounds):
        winners = [part[n] for part in won if part[n] is not None]
        assert len(winners) == 1, f"round {n}: {winners}"
    ids = [row_id for part in won for row_id in part if row_id is not None]
    assert len(ids) == len(set(ids)) == 30
    assert outbox.counts(store.conn)["sent"] == 30
    for s in others:
        s.close()


def test_release_gives_a_claim_back_untried(store: Store) -> None:
    seed(store, "A", [story(1, "t")])
    row = outbox.claim_next(store.conn, "chat", "w", NOW, LEASE)
    assert row is not None
    outbox.release(store.conn, row.id, "w")
    again = outbox.claim_next(store.conn, "chat", "w", NOW, LEASE)
    assert again is not None and again.attempts == 1


def test_enqueue_keeps_the_development_alert_counter(store: Store) -> None:
    seed(store, "A", [story(1, "t")])
    store.conn.execute(
        "INSERT INTO developments (id, topic, first_seen, last_seen) VALUES (5, 't', ?, ?)",
        ("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z"),
    )
    assert store.alert_routing is not None
    planned = plan_alerts(
        [AlertCandidate(item_id=1, topic="t", title="x", url=None, outlet=None, published=None,
                        first_seen=NOW, development_id=5, revision=2, relation="first")],
        store.alert_routing,
        NOW,
    )  # fmt: skip
    with store.transaction():
        assert outbox.enqueue(store.conn, planned) == 1
    assert store.conn.execute("SELECT alerts FROM developments WHERE id = 5").fetchone()[0] == 2
    assert outbox.list_rows(store.conn, kind="alert")[0].key == "dev:5:chat:2"


def test_a_poll_without_new_articles_queues_nothing(store: Store) -> None:
    poll = FeedPoll(
        feed_name="A", fetch=FetchResult(url="u", final_url="u", status=FetchStatus.OK), parsed=None
    )
    update = FeedStateUpdate(status=FeedStatus.OK, last_fetch=NOW, next_fetch=NOW, error_count=0)
    store.record_poll("A", poll, update, NOW)
    assert store.count("outbox") == 0


def test_a_channel_health_notice_names_the_error_of_the_alert_given_up_on(
    tmp_path: Path,
) -> None:
    from monitor.alert import health

    config = make_config(
        tmp_path,
        CONFIG + "health: {notify: [mail], channel_failing_after: 1h}\n",
    )
    store = open_store(config)
    seed(store, "A", [story(1, "t")])
    head = outbox.claim_next(store.conn, "chat", "w", NOW, LEASE)
    assert head is not None
    # Given up at once (a short retry_for); the alert behind it was never tried.
    assert outbox.mark_failed(store.conn, head.id, "w", "HTTP 500", NOW, timedelta(0)) == "failed"
    seed(store, "A", [story(2, "t")], now=NOW + timedelta(minutes=1))
    assert health.check(store.conn, config, NOW + timedelta(hours=2)) == 1
    notice = outbox.list_rows(store.conn, channel="mail")[0]
    assert "1 alert(s) waiting" in notice.payload["lines"][0]
    assert notice.payload["lines"][1] == "Last error: gave up after 1 attempts: HTTP 500"
