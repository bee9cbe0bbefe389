"""Delivery through apprise: one `apprise.Apprise` per channel, sends off the event loop, bounded.

- apprise is blocking (requests, smtplib): each channel gets its own single worker thread, so one slow
  service delays only its own channel and sends to a channel stay in order.
- apprise sleeps between two sends to the same service (`request_rate_per_sec`, 5.5 s for most
  plugins). The dispatcher already sends one channel's alerts one after another, so that sleep is
  switched off on each plugin instance.
- `notify()` returns a falsy result when the service refused or nothing was sent (apprise >= 1.9: a
  bool; >= 2.0: an `AppriseResult` with per-service status and log lines): only a truthy result
  counts as delivered.
- each send is bounded by the channel's `timeout` (passed to apprise where it supports it, and
  enforced around the thread in any case). A send that times out counts as failed and is retried,
  so if the service did receive it, it arrives twice: the same window as a crash after sending.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import apprise

from monitor.alert.render import Message, blend_title
from monitor.config import Channel, mask_url_secrets

log = logging.getLogger("monitor.alert")
GRACE_SECONDS = 5.0  # beyond the channel timeout, before we stop waiting for apprise's thread
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ - \w+ - ")

try:
    _NOTIFY_ARGS = set(inspect.signature(apprise.Apprise.notify).parameters)
except (TypeError, ValueError):  # pragma: no cover - exotic builds
    _NOTIFY_ARGS = set()


@dataclass(frozen=True)
class SendResult:
    ok: bool
    detail: str  # what the channel answered, secrets masked
    timed_out: bool = False


class ChannelSender:
    """Sends messages to one channel; use from one event loop."""

    def __init__(
        self, name: str, channel: Channel, mask: Callable[[str], str] = mask_url_secrets
    ) -> None:
        self.name = name
        self.channel = channel
        self.mask = mask
        self.error: str | None = None
        self.has_title = True
        self._apprise = apprise.Apprise()
        plugin = apprise.Apprise.instantiate(channel.url)
        if plugin is None:
            self.error = f"channel {name}: {mask(channel.url)} is not a usable apprise URL"
        else:
            plugin.request_rate_per_sec = 0  # see the module docstring
            self.has_title = int(getattr(plugin, "title_maxlen", 1) or 0) > 0
            self._apprise.add(plugin)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"alert-{name}"[:30])

    async def send(self, message: Message) -> SendResult:
        if self.error:
            return SendResult(False, self.error)
        if not self.has_title and message.title:
            message = blend_title(message)
        timeout = self.channel.timeout.total_seconds()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._thread, self._notify, message, timeout)
        try:
            return await asyncio.wait_for(future, timeout + GRACE_SECONDS)
        except TimeoutError:
            return SendResult(False, f"no answer within {timeout:.0f}s", timed_out=True)

    def _notify(self, message: Message, timeout: float) -> SendResult:
        kwargs: dict[str, Any] = {
            "body": message.body,
            "title": message.title,
            "body_format": message.format,
        }
        if "timeout" in _NOTIFY_ARGS:
            kwargs["timeout"] = timeout
        try:
            result = self._apprise.notify(**kwargs)
        except Exception as exc:  # a plugin bug must not kill the dispatcher
            log.exception("channel %s: apprise raised", self.name)
            return SendResult(False, self.mask(f"apprise raised {exc!r}"))
        return SendResult(bool(result), self.mask(describe(result)), _timed_out(result))

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def describe(result: Any) -> str:
    """One line per service: its status and what it logged (the service's answer)."""
    if result is None or isinstance(result, bool):
        return "accepted" if result else "not delivered (apprise reported failure)"
    lines = []
    for service in result:
        status = getattr(getattr(service, "status", None), "name", "?")
        said = [_LOG_PREFIX.sub("", str(getattr(e, "message", e))) for a in service for e in a]
        lines.append(
            f"{getattr(service, 'name', 'service')}: {status}"
            + "".join(f"; {line}" for line in dict.fromkeys(said))
        )
    if not lines:
        status = getattr(getattr(result, "status", None), "name", str(bool(result)))
        lines.append(f"no service was notified ({status})")
    return " | ".join(lines)


def _timed_out(result: Any) -> bool:
    return getattr(getattr(result, "status", None), "name", "") == "TIMEOUT"
