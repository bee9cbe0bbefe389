"""A fast clock for soaks and crash tests: the daemon's time runs `factor` times faster than real time.

`ScaledClock(factor, epoch)` reads ``epoch + (real now - epoch) * factor``: a pure function of the real
time, so several daemon processes started one after another with the same epoch (a crash test) share
one continuous timeline. Everything the daemon decides by the clock (due feeds, back-off, Retry-After,
alert retries and leases, retention) sees the fast time; the scheduler runs on real time and waits
each clock duration divided by `factor` (`TimeScale.real_delay`). Network timeouts stay real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.clock import Clock, SystemClock


class ScaledClock:
    def __init__(self, factor: float, epoch: datetime | None = None) -> None:
        if factor <= 0:
            raise ValueError("the time scale must be above zero")
        self.factor = factor
        self.epoch = epoch or datetime.now(UTC)

    def now(self) -> datetime:
        real = datetime.now(UTC)
        return self.epoch + (real - self.epoch) * self.factor


@dataclass(frozen=True)
class TimeScale:
    """How the daemon's clock relates to the scheduler's real time."""

    clock: Clock
    factor: float = 1.0

    @classmethod
    def real(cls, clock: Clock | None = None) -> TimeScale:
        return cls(clock or SystemClock(), 1.0)

    @classmethod
    def fast(cls, factor: float, epoch: datetime | None = None) -> TimeScale:
        if factor == 1.0 and epoch is None:
            return cls.real()
        return cls(ScaledClock(factor, epoch), factor)

    def real_delay(self, delay: timedelta) -> timedelta:
        """A clock duration (e.g. a feed's interval) as a real one for the scheduler."""
        return delay / self.factor

    def real_time(self, when: datetime) -> datetime:
        """The real (scheduler) time at which the clock will read `when`."""
        return datetime.now(UTC) + self.real_delay(when - self.clock.now())
