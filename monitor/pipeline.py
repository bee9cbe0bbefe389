"""The orchestrator: one poll of one feed, stage by stage.

    schedule  is the feed due? (pure: monitor.schedule.skip_reason)
    fetch     conditional GET of the feed (monitor.fetch)           -> FetchResult
    parse     feedparser on the fetched bytes, in the process pool -> ParsedFeed
              (monitor.parse; skipped when the body is unchanged)
    identify  which entries are new / updated / already known       (pure: monitor.identify)
    extract   fetch each new article page, extract text + metadata  -> Article
              (trafilatura in a process pool, so the event loop never stalls)
    match     which topics each new article matches, in memory      -> TopicMatch
    cluster   which development it joins                            (inside the store's transaction)
    store     item, sightings, matches, development, outbox: one transaction (monitor.store)
    alert     the dispatcher sends what the outbox holds            (monitor.alert)

Errors are data: a failing stage becomes the feed's recorded status; nothing here raises for bad input.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from monitor import workers as stages
from monitor.clock import Clock
from monitor.cluster.topicterms import TopicTerms
from monitor.config import Config, Feed, compiled_query
from monitor.extracted import ExtractedPage
from monitor.fetch import PAGE_ACCEPT, Fetcher
from monitor.identify import classify_entries
from monitor.language import detect_language, warm_up
from monitor.match.percolate import MatchDoc, Matcher, TopicSpec
from monitor.match.query import compile_query
from monitor.netguard import NetGuard
from monitor.parse import FeedParseError, HtmlPage
from monitor.records import (
    Article,
    FeedEntry,
    FeedPoll,
    FetchResult,
    FetchStatus,
    ParsedFeed,
    TopicMatch,
)
from monitor.schedule import FeedStatus, Skip, feed_config_hash, next_fetch_after, skip_reason
from monitor.store import FeedState, FeedStateUpdate, Store
from monitor.store.outlets import declared_site_name

log = logging.getLogger("monitor.poll")
UNCHANGED_GATHER = 0.01  # seconds an unchanged feed's state write waits for others to join it
T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class PollOutcome:
    feed: str
    status: str  # ok, unchanged, error, gone, skipped
    new: int = 0
    updated: int = 0
    duration: float = 0.0  # seconds the feed's fetch took
    articles_duration: float = 0.0  # seconds its new articles' pages took (fetched at once)
    error: str | None = None
    skipped: Skip | None = None
    used_url: str | None = None
    warning: str | None = None  # read, but something was wrong with it (see `ParsedFeed`)


class Writer:
    """The one writer: every database call of the daemon runs on this single thread, in order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-writer")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.store.close()


class Coalesced(Generic[A, R]):
    """Calls made while the writer is busy reach it together, as one call of `many`.

    A pass over 1,000 unchanged feeds would otherwise cost 2,000 writer round trips and 1,000
    transactions. `many(args)` runs on the writer thread and returns one result per argument, in
    order; a result that is an exception is raised to that caller alone. Every caller awaits its
    own result, so its read or write is done (committed) before it goes on, as with Writer.call.

    `gather`: at most this many seconds to let calls gather before a trip, while `coming(n)`
    says that more calls than the `n` queued are on their way (it is asked again at each call,
    and the trip goes as soon as it says no). A trip costs about 0.1 ms of CPU (thread hand-offs,
    a transaction); when answers arrive one by one (a quiet machine), most trips would otherwise
    carry a single call, while a call nothing else is coming to join goes at once.
    """

    def __init__(
        self,
        writer: Writer,
        many: Callable[[list[A]], Sequence[R | Exception]],
        gather: float = 0.0,
        coming: Callable[[int], bool] | None = None,
    ) -> None:
        self._writer = writer
        self._many = many
        self._gather = gather
        self._coming = coming
        self._queue: list[tuple[A, asyncio.Future[R]]] = []
        self._drain_task: asyncio.Task[None] | None = None
        self._gathering: asyncio.Future[None] | None = None

    async def __call__(self, arg: A) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((arg, future))
        if self._drain_task is None:
            self._drain_task = loop.create_task(self._drain())
        elif self._gathering is not None and not self._expecting():
            _settle(self._gathering)  # everyone expected is here: go now
        try:
            return await future
        except asyncio.CancelledError:
            # Its caller is being stopped: what is queued goes now, before the writer closes,
            # instead of waiting for company the stop will not let come.
            if self._gathering is not None:
                _settle(self._gathering)
            raise

    def _expecting(self) -> bool:
        return self._gather > 0 and (self._coming is None or self._coming(len(self._queue)))

    async def _gathered(self) -> None:
        """Wait up to `gather` seconds, less once no more calls are expected."""
        loop = asyncio.get_running_loop()
        self._gathering = gathering = loop.create_future()
        timer = loop.call_later(self._gather, _settle, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None

    async def _drain(self) -> None:
        batch: list[tuple[A, asyncio.Future[R]]] = []
        try:
            while self._queue:
                if self._expecting():
                    await self._gathered()
                batch, self._queue = self._queue, []
                try:
                    results = await self._writer.call(self._many, [arg for arg, _ in batch])
                except Exception as exc:  # the whole call failed: every caller in it hears so
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            self._drain_task = None
            for _, future in (*batch, *self._queue):  # cancelled mid-call: nobody waits forever
                future.cancel()
            self._queue = []


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Extractor:
    """Runs the CPU-heavy stages off the event loop: trafilatura, feedparser and clustering
    features in a process pool, so both cores work (threads when workers == 0); language
    identification on a thread of this process, whose one copy of the model (~70 MB) serves all.

    The workers are started fresh (spawn) and import only `monitor.workers`' stages: forked from
    the daemon they would each carry a copy of everything it has imported and allocated (the
    24 h soak: ~164 MiB per forked worker, each with its own model; 44 MiB now, bench/README.md).
    They exit with the daemon, even when it is killed (`monitor.workers.exit_with_parent`).
    """

    def __init__(self, workers: int | None = None) -> None:
        count = workers if workers is not None else (os.cpu_count() or 1)
        self.parallel = max(count, 1)  # pool tasks that run at once
        self._pool: Executor = (
            ProcessPoolExecutor(
                max_workers=count,
                mp_context=stages.WorkerContext(),
                initializer=stages.initialize,
                initargs=(os.getpid(),),
            )
            if count > 0
            else ThreadPoolExecutor(max_workers=2, thread_name_prefix="monitor-extract")
        )
        # The model loads (~0.6 s) while the first feeds are fetched, not on the first article.
        self._model = threading.Thread(target=warm_up, name="monitor-langid-load", daemon=True)
        self._model.start()
        self._starting: list[Future[float]] = []

    def start(self) -> None:
        """Start every worker now (~0.5 s of imports each) rather than with the first page: the
        daemon does, so its first poll does not wait; `monitor once` does not, so a pass where
        nothing changed never starts them."""
        if not self._starting:
            self._starting = [self._pool.submit(stages.started) for _ in range(self.parallel)]

    async def ready(self) -> float:
        """Start the workers and wait until they run and the language model is loaded; returns
        the CPU seconds the workers spent starting (the benchmarks leave start-up out)."""
        self.start()
        started = await asyncio.gather(*(asyncio.wrap_future(f) for f in self._starting))
        await asyncio.to_thread(self._model.join)
        return sum(started) if isinstance(self._pool, ProcessPoolExecutor) else 0.0

    async def extract(
        self, html: bytes, url: str, content_type: str | None, *, detect: bool = True
    ) -> ExtractedPage:
        """The page extracted in the pool; its language detected here (``detect=False``: left
        None, ``html_lang`` set, for the caller to detect with others in one thread trip)."""
        loop = asyncio.get_running_loop()
        page = await loop.run_in_executor(self._pool, stages.extract, html, url, content_type)
        if not detect:
            return page
        language = await asyncio.to_thread(detect_language, page.text, page.html_lang)
        return replace(page, language=language)

    async def features_many(self, articles: list[tuple[str, str, str | None]]) -> list[str]:
        """``features`` of many (title, text, language) articles, in order: a trip to the pool
        costs about 0.2 ms of this process's CPU, as much as the features of a short article,
        so a poll's articles go in one trip per worker, not one each."""
        if not articles:
            return []
        loop = asyncio.get_running_loop()
        size = -(-len(articles) // self.parallel)  # ceiling: every worker gets a share
        chunks = [articles[i : i + size] for i in range(0, len(articles), size)]
        done = await asyncio.gather(
            *(loop.run_in_executor(self._pool, stages.features_json_many, c) for c in chunks)
        )
        return [found for chunk in done for found in chunk]

    async def parse(self, body: bytes, url: str, content_type: str | None) -> ParsedFeed | HtmlPage:
        """feedparser is pure Python: on the pool it uses the other core, not the event loop's."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, stages.parse, body, url, content_type)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def detect_and_match(
    matcher: Matcher, articles: Sequence[tuple[Article, str | None]]
) -> tuple[list[Article], dict[Hashable, tuple[TopicMatch, ...]], dict[Hashable, tuple[str, str]]]:
    """A poll's articles with their languages detected, matched (`Matcher.match_indexed`).

    Runs on a thread (the language model lives in this process), once per poll: a thread trip
    per page cost the event loop and the thread hand-offs more than detecting the language.
    Each pair is an article and, for a page's text, the page's <html lang> (the fallback).
    """
    done = [replace(a, language=detect_language(*_language_input(a, lang))) for a, lang in articles]
    matches, indexed = matcher.match_indexed(
        [MatchDoc(a.entry.key, a.title, a.text, a.language) for a in done]
    )
    return done, matches, indexed


def _language_input(article: Article, html_lang: str | None) -> tuple[str, str | None]:
    """What the language is detected from: a page's text (its <html lang> the fallback), or the
    feed's title and summary."""
    if article.text_source == "page":
        return article.text, html_lang
    return f"{article.entry.title}\n{article.entry.summary}", None


def development_windows(config: Config) -> dict[str, timedelta]:
    """Per topic, how long a development stays open to new reports."""
    default = config.defaults.development_window
    return {t.name: t.development_window or default for t in config.topics}


def topic_terms(config: Config) -> dict[str, TopicTerms]:
    """Per topic, its query's words (``TopicTerms``: left out when its articles are compared)."""
    found = {}
    for topic in config.topics:
        phrases = compile_query(compiled_query(topic)).phrases
        found[topic.name] = TopicTerms.of_forms(
            (f.norm, f.prefix) for p in phrases for f in p.forms
        )
    return found


def configure_developments(store: Store, config: Config) -> None:
    """Tell the store each topic's development window and query words (its clustering)."""
    store.development_windows = development_windows(config)
    store.topic_terms = topic_terms(config)


def build_matcher(config: Config) -> Matcher:
    specs = [
        TopicSpec(t.name, compiled_query(t), tuple(t.languages) if t.languages else None)
        for t in config.topics
    ]
    return Matcher(specs)


class Pipeline:
    def __init__(
        self,
        config: Config,
        writer: Writer,
        fetcher: Fetcher,
        extractor: Extractor,
        clock: Clock,
    ) -> None:
        self.config = config
        self.writer = writer
        self.fetcher = fetcher
        self.extractor = extractor
        self.clock = clock
        self.matcher = build_matcher(config)
        self._route_alerts(config)
        self._article_slots = asyncio.Semaphore(config.fetch.article_concurrency)
        self.netguard = NetGuard()  # article links are third-party: SSRF guard per request hop
        self._feed_locks: dict[str, asyncio.Lock] = {}
        # Feed state is read and written for every poll: concurrent polls share one writer trip.
        self._read_states = Coalesced(writer, writer.store.feed_states_named)
        self._write_states = Coalesced(writer, writer.store.record_feed_states)
        # Most polls find their feed unchanged: while other polls run, their state writes wait
        # a moment for company.
        self._polling = 0  # polls under way
        self._write_unchanged = Coalesced(
            writer,
            writer.store.record_unchanged_states,
            gather=UNCHANGED_GATHER,
            coming=lambda queued: self._polling > queued,
        )

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.matcher = build_matcher(config)
        self._route_alerts(config)

    def _route_alerts(self, config: Config) -> None:
        """Tell the store which matches make alerts (it writes them in the poll's transaction)."""
        from monitor.alert.plan import AlertRouting

        self.writer.store.alert_routing = AlertRouting.from_config(config)
        configure_developments(self.writer.store, config)

    async def deliver_alerts(self) -> None:
        """One delivery attempt for every due alert in the outbox (`monitor once`)."""
        from monitor.alert.dispatch import Dispatcher

        try:
            # Its own connection: the writer's belongs to the writer thread.
            dispatcher = Dispatcher(self.config, self.config.database, self.clock)
            try:
                await dispatcher.send_due()
            finally:
                await dispatcher.aclose()
        except Exception:  # the polls are recorded; the alerts stay queued for the next attempt
            log.exception("alert delivery failed; pending alerts stay queued")

    async def sync_feeds(self) -> None:
        feeds = [(f.name, f.url, _config_hash(f)) for f in self.config.feeds]
        await self.writer.call(self.writer.store.sync_feeds, feeds)

    async def run_once(
        self,
        feeds: Sequence[Feed],
        *,
        ignore_backoff: bool = True,
        on_done: Callable[[PollOutcome], None] | None = None,
    ) -> list[PollOutcome]:
        """Poll the given feeds concurrently (the fetcher's limits keep it polite)."""

        async def one(feed: Feed) -> PollOutcome:
            outcome = await self.poll(feed, ignore_backoff=ignore_backoff)
            if on_done:
                on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(one(f) for f in feeds)))

    async def poll(self, feed: Feed, *, ignore_backoff: bool = False) -> PollOutcome:
        """Poll one feed; never two polls of the same feed at once."""
        lock = self._feed_locks.get(feed.name)
        if lock is None:
            lock = self._feed_locks[feed.name] = asyncio.Lock()
        if lock.locked():
            return PollOutcome(feed.name, "skipped", skipped=Skip.NOT_DUE)
        async with lock:
            self._polling += 1
            try:
                outcome = await self._poll(feed, ignore_backoff)
            except Exception as exc:  # a bug must not stop the other feeds; record it
                log.exception("poll of %s failed", feed.name)
                outcome = await self._record_failure(feed, f"internal error: {exc!r}")
            finally:
                self._polling -= 1
        if outcome.status != "skipped":
            _log_poll(outcome)
        return outcome

    async def _poll(self, feed: Feed, ignore_backoff: bool) -> PollOutcome:
        now = self.clock.now()
        state = await self._read_states(feed.name)
        if state is None:
            await self.sync_feeds()
            state = await self._read_states(feed.name)
            assert state is not None
        reason = skip_reason(state.timing(_config_hash(feed)), now, ignore_backoff=ignore_backoff)
        if reason is not None:
            return PollOutcome(feed.name, "skipped", skipped=reason)
        url = state.used_url or feed.url
        result = await self.fetcher.fetch(
            url,
            timeout=self.config.feed_timeout(feed).total_seconds(),
            etag=state.etag,
            last_modified=state.last_modified,
            headers=feed.headers,
        )
        if result.status in (FetchStatus.ERROR, FetchStatus.GONE):
            return await self._record_fetch_error(feed, state, result)
        if result.status is FetchStatus.NOT_MODIFIED or result.body_hash == state.body_hash:
            return await self._record_unchanged(feed, state, result)
        return await self._process_body(feed, state, result, url)

    # ------------------------------------------------------------------ outcomes

    async def _record_unchanged(
        self, feed: Feed, state: FeedState, result: FetchResult
    ) -> PollOutcome:
        update = self._success_update(feed, state, result)
        await self._write_unchanged((feed.name, state.id, update))
        return PollOutcome(feed.name, "unchanged", duration=result.duration)

    async def _record_fetch_error(
        self, feed: Feed, state: FeedState, result: FetchResult
    ) -> PollOutcome:
        error = result.error or "unknown error"
        update = self._failure_update(feed, state, error, result.retry_after)
        if result.status is FetchStatus.GONE:
            update = replace(update, status=FeedStatus.GONE)
            error += "; polling stopped until this feed's config entry changes"
            update = replace(update, error=error)
        await self._write_states((feed.name, update))
        status = "gone" if result.status is FetchStatus.GONE else "error"
        return PollOutcome(feed.name, status, duration=result.duration, error=error)

    async def _record_failure(self, feed: Feed, error: str) -> PollOutcome:
        state = await self._read_states(feed.name)
        if state is None:
            return PollOutcome(feed.name, "error", error=error)
        update = self._failure_update(feed, state, error, None)
        await self._write_states((feed.name, update))
        return PollOutcome(feed.name, "error", error=error)

    def _failure_update(
        self, feed: Feed, state: FeedState, error: str, retry_after: datetime | None
    ) -> FeedStateUpdate:
        now = self.clock.now()
        errors = state.error_count + 1
        return FeedStateUpdate(
            status=FeedStatus.ERROR,
            last_fetch=now,
            next_fetch=next_fetch_after(
                now,
                self.config.feed_interval(feed),
                error_count=errors,
                cap=self.config.fetch.backoff_max,
                retry_after=retry_after,
            ),
            error_count=errors,
            retry_after=retry_after,
            error=error,
        )

    def _success_update(
        self,
        feed: Feed,
        state: FeedState,
        result: FetchResult,
        parsed: ParsedFeed | None = None,
        used_url: str | None = None,
    ) -> FeedStateUpdate:
        now = self.clock.now()
        return FeedStateUpdate(
            status=FeedStatus.OK,
            last_fetch=now,
            next_fetch=next_fetch_after(
                now,
                self.config.feed_interval(feed),
                error_count=0,
                cap=self.config.fetch.backoff_max,
                retry_after=result.retry_after,
            ),
            error_count=0,
            etag=result.etag or (state.etag if result.status is FetchStatus.NOT_MODIFIED else None),
            last_modified=result.last_modified
            or (state.last_modified if result.status is FetchStatus.NOT_MODIFIED else None),
            body_hash=result.body_hash,
            retry_after=result.retry_after,
            used_url=used_url,
            title=parsed.title if parsed else None,
            site_url=parsed.site_url if parsed else None,
            warning="; ".join(parsed.warnings)[:2000] if parsed and parsed.warnings else None,
            success=True,
            reread=parsed is not None,
        )

    # ------------------------------------------------------------------ parse and ingest

    async def _process_body(
        self, feed: Feed, state: FeedState, result: FetchResult, url: str
    ) -> PollOutcome:
        try:
            parsed, result, used_url = await self._parse_or_discover(feed, result, url)
        except FeedParseError as exc:
            return await self._record_fetch_error(
                feed, state, replace(result, status=FetchStatus.ERROR, error=str(exc))
            )
        parsed = distrust_future_dates(parsed, self.clock.now())
        keys = [e.key for e in parsed.entries]
        known = await self.writer.call(self.writer.store.known_entries, keys)
        new, updated, unchanged = classify_entries(parsed.entries, known)
        cap = self.config.fetch.max_articles_per_poll
        started = time.perf_counter()
        fetched = [
            *await asyncio.gather(*(self._article(feed, e) for e in new[:cap])),
            # A feed that suddenly lists thousands of new entries must not hold every article
            # slot (and hammer its site): beyond the cap, keep the feed's own text.
            *(
                (self._from_feed(e, f"page not fetched: over {cap} new entries in one poll"), None)
                for e in new[cap:]
            ),
        ]
        articles_duration = time.perf_counter() - started
        articles, matches, indexed = await asyncio.to_thread(
            detect_and_match, self.matcher, fetched
        )
        articles = await self._with_features(articles, {k for k, found in matches.items() if found})
        poll = FeedPoll(
            feed_name=feed.name,
            fetch=result,
            parsed=parsed,
            new_articles=tuple(articles),
            updated_entries=tuple(updated),
            seen_entries=tuple(unchanged),
            matches={str(key): found for key, found in matches.items()},
            indexed={str(key): values for key, values in indexed.items()},
        )
        update = self._success_update(feed, state, result, parsed, used_url)
        counts = await self.writer.call(
            self.writer.store.record_poll, feed.name, poll, update, self.clock.now()
        )
        return PollOutcome(
            feed.name,
            "ok",
            new=counts.new,
            updated=counts.updated,
            duration=result.duration,
            articles_duration=articles_duration,
            used_url=used_url,
            warning=update.warning,
        )

    async def _parse_or_discover(
        self, feed: Feed, result: FetchResult, url: str
    ) -> tuple[ParsedFeed, FetchResult, str | None]:
        """Parse the body; when it is an HTML page, fetch the feed it links to and say so."""
        parsed = await self.extractor.parse(result.body, result.final_url, result.content_type)
        if not isinstance(parsed, HtmlPage):
            return parsed, result, (url if url != feed.url else None)
        discovered = parsed.alternates[0]
        log.info("feed=%s is an HTML page; using its feed %s", feed.name, discovered)
        result = await self.fetcher.fetch(
            discovered, timeout=self.config.feed_timeout(feed).total_seconds(), headers=feed.headers
        )
        if result.status is not FetchStatus.OK:
            raise FeedParseError(f"discovered feed {discovered}: {result.error or result.status}")
        found = await self.extractor.parse(result.body, result.final_url, result.content_type)
        if isinstance(found, HtmlPage):
            raise FeedParseError(f"{discovered} (linked from the page) is not a feed either")
        return replace(found, discovered_url=discovered), result, discovered

    async def _with_features(
        self, articles: list[Article], matched: set[Hashable]
    ) -> list[Article]:
        """Matched articles carry clustering features, computed off the event loop."""
        todo = [i for i, a in enumerate(articles) if a.entry.key in matched]
        found = await self.extractor.features_many(
            [(articles[i].title, articles[i].text, articles[i].language) for i in todo]
        )
        out = list(articles)
        for i, features in zip(todo, found, strict=True):
            out[i] = replace(out[i], features=features)
        return out

    async def _article(self, feed: Feed, entry: FeedEntry) -> tuple[Article, str | None]:
        """Fetch and extract the entry's page; fall back to the feed's own text. The language is
        left to `detect_and_match`; with a page's text comes its <html lang>."""
        if not feed.fetch_article or not entry.url:
            return self._from_feed(entry, None), None
        async with self._article_slots:
            page = await self.fetcher.fetch(
                entry.url,
                timeout=self.config.feed_timeout(feed).total_seconds(),
                accept=PAGE_ACCEPT,
                headers=feed.headers,
                guard=self.netguard.for_article(
                    feed.url, allow_private=self.config.fetch.allow_private_networks
                ),
            )
            if page.status is not FetchStatus.OK:
                return self._from_feed(entry, f"page: {page.error or page.status}"), None
            extracted = await self.extractor.extract(
                page.body, page.final_url, page.content_type, detect=False
            )
        if not extracted.text.strip():
            return self._from_feed(entry, extracted.error or "page: no article text found"), None
        article = Article(
            entry=entry,
            title=entry.title or extracted.title or "",
            text=extracted.text,
            text_source="page",
            author=entry.author or extracted.author,
            published=entry.published or extracted.published,
            # Not the host extraction falls back to: the outlet is then the feed's name.
            site_name=declared_site_name(extracted.site_name, page.final_url),
            language=None,
            page_url=page.final_url,
        )
        return article, extracted.html_lang

    def _from_feed(self, entry: FeedEntry, error: str | None) -> Article:
        """The feed's own text; its language is detected by `detect_and_match`, for a poll at once."""
        return Article(
            entry=entry,
            title=entry.title,
            text=entry.summary,
            text_source="feed",
            author=entry.author,
            published=entry.published,
            site_name=None,
            language=None,
            page_url=None,
            extract_error=error,
        )


FUTURE_TOLERANCE = timedelta(days=1)  # clock skew and time zones written wrongly


def distrust_future_dates(parsed: ParsedFeed, now: datetime) -> ParsedFeed:
    """Drop entry dates far in the future: they would sort first forever and dodge alert_max_age."""
    limit = now + FUTURE_TOLERANCE
    fixed, bad = [], []
    for entry in parsed.entries:
        published = entry.published if entry.published and entry.published <= limit else None
        updated = entry.updated if entry.updated and entry.updated <= limit else None
        if published != entry.published or updated != entry.updated:
            bad.append(entry.published or entry.updated)
            entry = replace(entry, published=published, updated=updated)
        fixed.append(entry)
    if not bad:
        return parsed
    example = min(d for d in bad if d is not None).date().isoformat()
    entries = "entry" if len(bad) == 1 else "entries"
    warning = f"{len(bad)} {entries} dated in the future (e.g. {example}); their dates were ignored"
    return replace(parsed, entries=tuple(fixed), warnings=(*parsed.warnings, warning))


def _config_hash(feed: Feed) -> str:
    return _cached_config_hash(feed.url, tuple(feed.headers.items()), feed.fetch_article)


@functools.lru_cache(maxsize=16384)
def _cached_config_hash(url: str, headers: tuple[tuple[str, str], ...], fetch_article: bool) -> str:
    """Twice per poll, for a fixed set of feeds: hashed once each."""
    return feed_config_hash(url, dict(headers), fetch_article)


def _log_poll(outcome: PollOutcome) -> None:
    level = logging.WARNING if outcome.error or outcome.warning else logging.INFO
    if not log.isEnabledFor(level):  # formatting the line costs more than the rest of a 304
        return
    fields = {
        "feed": outcome.feed,
        "status": outcome.status,
        "new": outcome.new,
        "updated": outcome.updated,
        "duration": f"{outcome.duration:.3f}s",
    }
    if outcome.new:  # the feed's fetch is not the poll's time when article pages were fetched
        fields["articles"] = f"{outcome.articles_duration:.3f}s"
    if outcome.error:
        fields["error"] = outcome.error
    if outcome.warning:
        fields["warning"] = outcome.warning
    log.log(level, "poll %s", " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items()))


def _logfmt(value: object) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or '"' in text or not text) else text
