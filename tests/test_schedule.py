from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.schedule import (
    FeedStatus,
    FeedTiming,
    Skip,
    backoff_delay,
    next_fetch_after,
    skip_reason,
    startup_offset,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def timing(status: FeedStatus = FeedStatus.OK, **kw: object) -> FeedTiming:
    values: dict[str, object] = {"next_fetch": None, "retry_after": None, "error_count": 0}
    values.update(kw)
    return FeedTiming(status=status, **values)  # type: ignore[arg-type]


def test_new_and_due_feeds_are_polled() -> None:
    assert skip_reason(timing(FeedStatus.NEW), NOW, ignore_backoff=False) is None
    assert skip_reason(timing(next_fetch=NOW - MIN), NOW, ignore_backoff=False) is None


def test_backing_off_feed_waits_unless_once_ignores_backoff() -> None:
    t = timing(FeedStatus.ERROR, next_fetch=NOW + 10 * MIN, error_count=3)
    assert skip_reason(t, NOW, ignore_backoff=False) is Skip.BACKING_OFF
    assert skip_reason(t, NOW, ignore_backoff=True) is None


def test_gone_and_retry_after_are_respected_even_by_once() -> None:
    gone = timing(FeedStatus.GONE)
    assert skip_reason(gone, NOW, ignore_backoff=True) is Skip.GONE
    changed = timing(FeedStatus.GONE, config_changed=True)
    assert skip_reason(changed, NOW, ignore_backoff=True) is None
    waiting = timing(FeedStatus.ERROR, retry_after=NOW + MIN)
    assert skip_reason(waiting, NOW, ignore_backoff=True) is Skip.RETRY_AFTER
    assert skip_reason(waiting, NOW + 2 * MIN, ignore_backoff=True) is None


def test_backoff_doubles_from_the_interval_and_is_capped() -> None:
    interval, cap = 15 * MIN, timedelta(hours=6)
    delays = [backoff_delay(n, interval, cap) for n in range(0, 8)]
    assert delays[:5] == [interval, interval, 2 * interval, 4 * interval, 8 * interval]
    assert delays[-1] == cap
    # an interval longer than the cap is never shortened by back-off
    assert backoff_delay(5, timedelta(days=1), cap) == timedelta(days=1)
    assert backoff_delay(10_000, interval, cap) == cap


def test_retry_after_pushes_the_next_fetch() -> None:
    later = NOW + timedelta(hours=2)
    assert (
        next_fetch_after(NOW, 15 * MIN, error_count=1, cap=6 * 60 * MIN, retry_after=later) == later
    )
    assert next_fetch_after(NOW, 15 * MIN, error_count=0, cap=6 * 60 * MIN, retry_after=None) == (
        NOW + 15 * MIN
    )


def test_startup_offsets_are_spread_over_a_minute_and_stable() -> None:
    offsets = [startup_offset(f"feed {i}") for i in range(200)]
    assert all(timedelta(0) <= o < MIN for o in offsets)
    assert offsets == [startup_offset(f"feed {i}") for i in range(200)]
    assert len({int(o.total_seconds()) for o in offsets}) > 40  # spread, not clumped
