"""Pure deciders for polling: is a feed due, when is it next due, how long to back off."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class FeedStatus(StrEnum):
    NEW = "new"  # never polled
    OK = "ok"
    ERROR = "error"  # failing; backing off
    GONE = "gone"  # HTTP 410: polled again only when its config entry changes
    DISABLED = "disabled"


@dataclass(frozen=True)
class FeedTiming:
    """What the decider needs to know of a feed's stored state."""

    status: FeedStatus
    next_fetch: datetime | None
    retry_after: datetime | None
    error_count: int
    config_changed: bool = False


class Skip(StrEnum):
    GONE = "gone"
    RETRY_AFTER = "retry-after pending"
    BACKING_OFF = "backing off"
    NOT_DUE = "not due"


def skip_reason(timing: FeedTiming, now: datetime, *, ignore_backoff: bool) -> Skip | None:
    """None when the feed should be polled now, else why not.

    `monitor once` ignores back-off timers but still respects a gone feed and a server's Retry-After.
    """
    if timing.status is FeedStatus.GONE and not timing.config_changed:
        return Skip.GONE
    if timing.retry_after and timing.retry_after > now:
        return Skip.RETRY_AFTER
    if ignore_backoff or timing.next_fetch is None or timing.next_fetch <= now:
        return None
    return Skip.BACKING_OFF if timing.status is FeedStatus.ERROR else Skip.NOT_DUE


def backoff_delay(error_count: int, interval: timedelta, cap: timedelta) -> timedelta:
    """Exponential back-off in multiples of the feed's interval, capped (never below the interval)."""
    if error_count <= 0:
        return interval
    factor = 1 << min(error_count - 1, 20)
    return min(max(cap, interval), interval * factor)


def next_fetch_after(
    now: datetime,
    interval: timedelta,
    *,
    error_count: int,
    cap: timedelta,
    retry_after: datetime | None,
) -> datetime:
    due = now + backoff_delay(error_count, interval, cap)
    return max(due, retry_after) if retry_after else due


def startup_offset(feed_name: str, spread: timedelta = timedelta(minutes=1)) -> timedelta:
    """Spread first polls over the first minute, the same offset for a feed on every start."""
    digest = hashlib.sha256(feed_name.encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return timedelta(seconds=spread.total_seconds() * fraction)


def feed_config_hash(url: str, headers: dict[str, str], fetch_article: bool) -> str:
    """Changes when the parts of a feed's config that define what is fetched change."""
    text = repr((url, sorted(headers.items()), fetch_article))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
