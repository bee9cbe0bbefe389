"""Loopback receivers and a seeded outbox for the alert tests.

- `Receiver`: a real HTTP server on 127.0.0.1 that plays a chat/webhook service (apprise `json://`,
  `ntfy://`, Mattermost `mmost://`). It records every message and can be switched "down" (HTTP 503).
- `SmtpSink`: a real SMTP server (aiosmtpd) on 127.0.0.1.
- `make_config` / `seed`: a config written to a temp folder and items stored through the real
  `Store.record_poll`, so alerts enter the outbox exactly as in production.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from monitor.alert.plan import AlertRouting
from monitor.config import Config, parse_config
from monitor.records import Article, FeedEntry, FeedPoll, FetchResult, FetchStatus, TopicMatch
from monitor.schedule import FeedStatus
from monitor.store import FeedStateUpdate, Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY_RE = re.compile(r"key=([\w:.\-]+)")
ATTEMPT_RE = re.compile(r"attempt=(\d+)")


# --------------------------------------------------------------------------- HTTP receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """The message text, whichever field the protocol puts it in."""
        return str(self.body.get("message") or self.body.get("text") or "")

    @property
    def title(self) -> str:
        return str(self.body.get("title") or "")

    @property
    def key(self) -> str | None:
        found = KEY_RE.search(self.text)
        return found.group(1) if found else None

    @property
    def attempt(self) -> int:
        found = ATTEMPT_RE.search(self.text)
        return int(found.group(1)) if found else 0


@dataclass
class Receiver:
    """A loopback HTTP service; `down = True` answers 503 to everything."""

    down: bool = False
    messages: list[Received] = field(default_factory=list)
    refused: int = 0
    # Called with each request before it is answered (the crash test kills its worker here).
    on_request: Callable[[Received, str], None] | None = None

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:  # the sender died mid-request: nothing was delivered
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"message": raw.decode("utf-8", "replace")}
                got = Received(self.path, dict(self.headers), body)
                if receiver.on_request:
                    receiver.on_request(got, "before")
                with receiver.lock:
                    if receiver.down:
                        receiver.refused += 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    receiver.messages.append(got)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"ok": true}')
                    self.wfile.flush()
                except OSError:  # the sender died or gave up before reading the answer
                    pass
                # Called either way: the crash test's kill after this request must still come
                # when a slow moment made the sender give up on the answer.
                if receiver.on_request:
                    receiver.on_request(got, "after")

            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, scheme: str = "json", path: str = "/hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def keys(self) -> list[str | None]:
        with self.lock:
            return [m.key for m in self.messages]


# --------------------------------------------------------------------------- SMTP sink


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpSink:
    """aiosmtpd on a free loopback port, in its own thread."""

    def __init__(self) -> None:
        self.mailbox = _Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return self.mailbox.messages

    def url(self, to: str = "analyst@example.org") -> str:
        return (
            f"mailto://127.0.0.1:{self.port}?from=monitor@example.org&to={to}"
            "&mode=insecure&smtp=127.0.0.1"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- config and items


def make_config(folder: Path, text: str) -> Config:
    """A config file in `folder` (database next to it)."""
    path = folder / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path, {})


def open_store(config: Config) -> Store:
    store = Store.open(config.database)
    store.sync_feeds([(f.name, f.url, "c1") for f in config.feeds])
    store.alert_routing = AlertRouting.from_config(config)
    return store


@dataclass(frozen=True)
class Story_:
    title: str
    topics: Sequence[str]
    url: str
    published: datetime | None = None
    text: str = ""
    terms: Sequence[str] = ("russia",)
    snippet: str = "**Russia** and North Korea"
    site_name: str | None = None


_SYLLABLES = ("ka", "lo", "mi", "ne", "su", "tor", "vel", "qua", "rin", "zed", "pho", "gar")


def distinct_text(n: int) -> str:
    """Prose about event number n that shares no names or rare words with any other n.

    Developments group articles about the same event, so alert tests that want one alert per story
    need stories that are clearly about different events.
    """
    rng = random.Random(n)

    def word() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(3))

    # Random names can coincide across stories ("Minemi" in 24 and 28): each carries n's own tag.
    tag = "x" + "".join(_SYLLABLES[int(d)] for d in str(n))
    names = [word().capitalize() + tag for _ in range(4)]
    sentences = [
        f"{names[0]} {names[1]} said the {word()} at {names[2]} would {word()} the {word()}."
        for _ in range(3)
    ]
    return " ".join([*sentences, f"Officials in {names[3]} confirmed {n} {word()} {word()}."])


def story(n: int, *topics: str, **kw: Any) -> Story_:
    values: dict[str, Any] = {
        "title": f"Story {n}",
        "topics": topics or ("t",),
        "url": f"https://news.example/a/{n}",
        "text": distinct_text(n),
    }
    values.update(kw)
    return Story_(**values)


def seed(store: Store, feed: str, stories: Sequence[Story_], now: datetime = NOW) -> list[int]:
    """Store the stories as one poll of `feed` (items + matches + outbox rows, one transaction)."""
    articles, matches = [], {}
    for s in stories:
        published = s.published if s.published is not None else now - timedelta(hours=1)
        entry = FeedEntry(
            key=s.url,
            url=s.url,
            link=s.url,
            guid=s.url,
            title=s.title,
            summary=s.text,
            author=None,
            published=published,
            updated=None,
            entry_hash=s.url,
        )
        articles.append(
            Article(
                entry=entry,
                title=s.title,
                text=s.text or s.title,
                text_source="page",
                author=None,
                published=published,
                site_name=s.site_name,
                language="en",
                page_url=s.url,
            )
        )
        matches[s.url] = tuple(
            TopicMatch(topic=t, terms=tuple(s.terms), snippet=s.snippet, score=1.0)
            for t in s.topics
        )
    poll = FeedPoll(
        feed_name=feed,
        fetch=FetchResult(url="u", final_url="u", status=FetchStatus.OK),
        parsed=None,
        new_articles=tuple(articles),
        matches=matches,
    )
    update = FeedStateUpdate(
        status=FeedStatus.OK,
        last_fetch=now,
        next_fetch=now + timedelta(minutes=15),
        error_count=0,
        success=True,
    )
    return list(store.record_poll(feed, poll, update, now).new_item_ids)


# A template that puts the idempotency key and the attempt (claim) number in the body.
KEY_TEMPLATE = "{{ title }} key={{ key }} attempt={{ attempt }}\n"
