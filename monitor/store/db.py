"""SQLite storage through sqlite-utils: WAL, migrations, one transaction per feed poll.

A `Store` is used from one thread at a time. The daemon owns one writer Store and calls it from a single
worker thread, so writes are serialized; CLI commands open their own Store and read while it writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils

from monitor.clock import parse_iso, utc_iso
from monitor.entries import LEGACY_HASH_LENGTH, entry_hash
from monitor.records import Article, Assignment, FeedEntry, FeedPoll, TopicMatch
from monitor.schedule import FeedStatus, FeedTiming
from monitor.sqlin import in_chunks
from monitor.store.outlets import OUTLET_SQL, outlet_name
from monitor.store.schema import migrate

if TYPE_CHECKING:
    from monitor.alert.plan import AlertCandidate, AlertRouting
    from monitor.cluster import ClusterParams
    from monitor.cluster.topicterms import TopicTerms
    from monitor.store.dev_cache import ClusterCache

BUSY_TIMEOUT_MS = 30_000
U = TypeVar("U")
DEFAULT_WINDOW = timedelta(days=3)
REBUILD_REGROUP_EVERY = 10  # items a rebuild assigns between regroupings (like a small poll)


class StoreError(Exception):
    """The database cannot be opened or used."""


@dataclass(frozen=True)
class FeedState:
    """A feed's stored polling state."""

    id: int
    name: str
    url: str
    config_hash: str | None
    status: FeedStatus
    used_url: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    last_fetch: datetime | None
    next_fetch: datetime | None
    retry_after: datetime | None
    error_count: int
    failing_since: datetime | None
    last_error: str | None

    def timing(self, config_hash: str | None = None) -> FeedTiming:
        changed = config_hash is not None and config_hash != self.config_hash
        return FeedTiming(self.status, self.next_fetch, self.retry_after, self.error_count, changed)


@dataclass(frozen=True)
class FeedStateUpdate:
    """What a poll changes in a feed's state (decided by the pipeline, written here)."""

    status: FeedStatus
    last_fetch: datetime
    next_fetch: datetime
    error_count: int
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    retry_after: datetime | None = None
    used_url: str | None = None
    title: str | None = None
    site_url: str | None = None
    error: str | None = None
    warning: str | None = None
    success: bool = False
    # The body was parsed, so its warnings (or none) replace the stored ones; a 304 or an
    # unchanged body was not, and the warnings of the body it repeats stay.
    reread: bool = True


@dataclass(frozen=True)
class PollCounts:
    new: int
    updated: int
    seen: int
    new_item_ids: tuple[int, ...] = ()


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        # Set by the pipeline from the config: which matches make alerts (None: no alerts queued).
        self.alert_routing: AlertRouting | None = None
        # Per topic, how long a development stays open (the pipeline sets it from the config).
        self.development_windows: Mapping[str, timedelta] = {}
        # Per topic, its query's words, left out of its comparisons (set from the config too).
        self.topic_terms: Mapping[str, TopicTerms] = {}
        # The clustering model and thresholds (None: the shipped defaults; tests and benchmarks).
        self.cluster_params: ClusterParams | None = None
        # Clustering reads from memory kept for this Store's lifetime (False: from the database).
        self.cache_developments = True
        self._cluster_cache: ClusterCache | None = None

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path | str, *, create: bool = True) -> Store:
        path = Path(path)
        if path != Path(":memory:"):
            if not create and not path.exists():
                raise StoreError(
                    f"no database at {path} (run `monitor once` or `monitor run` first)"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create {path.parent}: {exc}") from exc
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn)
            migrate(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        return store

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if self._cluster_cache is not None:
                self._cluster_cache.begin(self.conn)  # another connection's commits: forget
            yield
        except BaseException:
            self._forget_uncommitted()
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self._forget_uncommitted()
            raise

    def _forget_uncommitted(self) -> None:
        """The clustering memory must never be ahead of the database."""
        if self._cluster_cache is not None:
            self._cluster_cache.rollback()

    # ----------------------------------------------------------------- feeds

    def sync_feeds(self, feeds: Sequence[tuple[str, str, str]]) -> None:
        """Make the feeds table know every configured (name, url, config_hash).

        A feed whose config entry changed starts afresh (a `gone` feed is polled again).
        """
        with self.transaction():
            for name, url, config_hash in feeds:
                row = self.conn.execute(
                    "SELECT id, config_hash FROM feeds WHERE name = ?", (name,)
                ).fetchone()
                if row is None:
                    self.conn.execute(
                        "INSERT INTO feeds (name, url, config_hash) VALUES (?, ?, ?)",
                        (name, url, config_hash),
                    )
                elif row["config_hash"] != config_hash:
                    self.conn.execute(
                        """UPDATE feeds SET url = ?, config_hash = ?, status = 'new', etag = NULL,
                           last_modified = NULL, body_hash = NULL, used_url = NULL,
                           next_fetch = NULL, retry_after = NULL, error_count = 0,
                           failing_since = NULL WHERE id = ?""",
                        (url, config_hash, row["id"]),
                    )

    def feed_state(self, name: str) -> FeedState | None:
        row = self.conn.execute("SELECT * FROM feeds WHERE name = ?", (name,)).fetchone()
        return _feed_state(row) if row else None

    def feed_states_named(self, names: Sequence[str]) -> list[FeedState | None]:
        """The stored state of each named feed (None: unknown), in one query per 500 names."""
        found: dict[str, FeedState] = {}
        for chunk, marks in in_chunks(list(dict.fromkeys(names))):
            for row in self.conn.execute(f"SELECT * FROM feeds WHERE name IN ({marks})", chunk):
                found[row["name"]] = _feed_state(row)
        return [found.get(name) for name in names]

    def feed_states(self) -> dict[str, FeedState]:
        rows = self.conn.execute("SELECT * FROM feeds").fetchall()
        return {row["name"]: _feed_state(row) for row in rows}

    def feed_overview(self) -> list[dict[str, Any]]:
        """Rows for `monitor feeds`: state plus the number of items each feed listed."""
        rows = self.conn.execute(
            """SELECT f.*, (SELECT count(*) FROM sightings s WHERE s.feed_id = f.id) AS items
               FROM feeds f ORDER BY f.name"""
        ).fetchall()
        return [dict(row) for row in rows]

    # ----------------------------------------------------------------- items

    def known_entries(self, keys: Sequence[str]) -> dict[str, str]:
        """Stored entry hash of each key that is already an item.

        A hash stored by an older version also covered the entry's date and link: a feed that
        re-dates its entries would make every item "updated" once after the upgrade. Such an
        item's hash is made anew from its stored title and text (read only for those items).
        """
        found: dict[str, str] = {}
        for chunk, marks in in_chunks(keys):
            for row in self.conn.execute(
                f"""SELECT key, entry_hash, CASE WHEN length(entry_hash) = {LEGACY_HASH_LENGTH}
                    THEN title END AS title, CASE WHEN length(entry_hash) = {LEGACY_HASH_LENGTH}
                    THEN summary END AS summary FROM items WHERE key IN ({marks})""",
                chunk,
            ):
                stored = row["entry_hash"] or ""
                if row["title"] is not None:
                    stored = entry_hash(row["title"], row["summary"])
                found[row["key"]] = stored
        return found

    def record_poll(
        self, feed_name: str, poll: FeedPoll, update: FeedStateUpdate, now: datetime
    ) -> PollCounts:
        """Write one poll's items, sightings, updates, matches and feed state in one transaction."""
        with self.transaction():
            feed_id = self._feed_id(feed_name)
            inserted = [
                self._insert_article(feed_id, a, now, poll.indexed.get(a.entry.key))
                for a in poll.new_articles
            ]
            new_ids = tuple(item_id for item_id, _ in inserted)
            assignments: dict[tuple[int, str], Assignment] = {}
            for (item_id, is_new), article in zip(inserted, poll.new_articles, strict=True):
                if not is_new:  # another feed's poll stored it a moment ago: only a sighting
                    continue
                matches = poll.matches.get(article.entry.key, ())
                self._write_matches(item_id, matches, now)
                assignments.update(self._cluster(item_id, article, matches, now))
            self._merge_developments(assignments, now)
            regrouped = self._regroup_developments(assignments, now)
            self._queue_alerts(feed_name, new_ids, poll, now, assignments)
            self._queue_unalerted(regrouped, now)
            for entry in poll.updated_entries:
                self._update_entry(feed_id, entry, now)
            for entry in (*poll.updated_entries, *poll.seen_entries):
                self._sight(feed_id, entry.key, now)
            self._write_feed_state(feed_id, update)
        return PollCounts(
            len(poll.new_articles), len(poll.updated_entries), len(poll.seen_entries), new_ids
        )

    def record_feed_state(self, feed_name: str, update: FeedStateUpdate) -> None:
        with self.transaction():
            self._write_feed_state(self._feed_id(feed_name), update)

    def record_feed_states(
        self, updates: Sequence[tuple[str, FeedStateUpdate]]
    ) -> list[Exception | None]:
        """Write the state of many feeds (one poll outcome each) in one transaction.

        Each update is one statement, which SQLite applies whole or not at all, so an update that
        fails (an unknown feed) fails alone: its error is returned in its place, the others are
        written. An error that ends the transaction itself is raised.
        """
        return self._each_alone(
            updates, lambda u: self._write_feed_state(self._feed_id(u[0]), u[1])
        )

    def record_unchanged_states(
        self, updates: Sequence[tuple[str, int, FeedStateUpdate]]
    ) -> list[Exception | None]:
        """`record_feed_states` for polls that found their feed unchanged (name, id, update).

        Most polls are such: the feed is known by id from the state the poll read, and its update
        (a success without a title, site, warning or new URL) is one fixed statement, so a batch
        costs a fraction of the general path. Any other update is written by that path."""
        return self._each_alone(updates, self._write_unchanged_state)

    def _write_unchanged_state(self, named: tuple[str, int, FeedStateUpdate]) -> None:
        name, feed_id, update = named
        if not _plain_success(update):
            self._write_feed_state(self._feed_id(name), update)
        elif self.conn.execute(_UNCHANGED_SQL, _unchanged_values(feed_id, update)).rowcount == 0:
            raise StoreError(f"unknown feed {name!r}")

    def _each_alone(
        self, updates: Sequence[U], write: Callable[[U], None]
    ) -> list[Exception | None]:
        """`write` each update in one transaction; one that fails (one statement, applied whole
        or not at all) fails alone, its error returned in its place."""
        results: list[Exception | None] = []
        with self.transaction():
            for update in updates:
                try:
                    write(update)
                except (StoreError, sqlite3.IntegrityError) as exc:
                    results.append(exc)
                else:
                    results.append(None)
        return results

    def _feed_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM feeds WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"unknown feed {name!r}")
        return int(row["id"])

    def _insert_article(
        self,
        feed_id: int,
        article: Article,
        now: datetime,
        indexed: tuple[str, str] | None = None,
    ) -> tuple[int, bool]:
        """Store a new item; (its id, whether it was new). `indexed`: its history index values,
        when matching normalised them already."""
        entry = article.entry
        existing = self.conn.execute("SELECT id FROM items WHERE key = ?", (entry.key,)).fetchone()
        if existing:  # listed by another feed in a concurrent poll: a sighting, not a new item
            self._sight(feed_id, entry.key, now)
            return int(existing["id"]), False
        cursor = self.conn.execute(
            """INSERT INTO items (key, url, guid, title, text, text_source, summary, author,
               published, fetched, site_name, language, feed_id, entry_hash, page_url, extract_error)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                entry.key,
                entry.url,
                entry.guid,
                article.title,
                article.text,
                article.text_source,
                entry.summary,
                article.author,
                utc_iso(article.published),
                utc_iso(now),
                article.site_name,
                article.language,
                feed_id,
                entry.entry_hash,
                article.page_url,
                article.extract_error,
            ),
        )
        item_id = int(cursor.lastrowid or 0)
        self.conn.execute(
            "INSERT INTO sightings (item_id, feed_id, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            (item_id, feed_id, utc_iso(now), utc_iso(now)),
        )
        from monitor.match import archive

        archive.index_item(self.conn, item_id, article.title, article.text, indexed)
        return item_id, True

    # ----------------------------------------------------------------- developments

    def _cluster(
        self, item_id: int, article: Article, matches: Sequence[TopicMatch], now: datetime
    ) -> dict[tuple[int, str], Assignment]:
        """Decide, per matched topic, the development the new item joins (monitor.cluster)."""
        if not matches:
            return {}
        from monitor.cluster import features
        from monitor.store import developments as dev

        # The extraction worker computed them; an article stored without them gets them here.
        stored = (
            article.features or features(article.title, article.text, article.language).to_json()
        )
        cache = self.cluster_cache()
        feats = dev.add_to_corpus(self.conn, item_id, stored, cache)
        clustered = dev.ArticleForClustering(item_id, article.title, article.entry.guid, feats)
        return {
            (item_id, m.topic): dev.assign(
                self.conn, clustered, m.topic, self._params(m.topic), now, cache
            )
            for m in matches
        }

    def cluster_cache(self) -> ClusterCache | None:
        """The clustering memory (made on first use; None when `cache_developments` is off)."""
        if not self.cache_developments:
            return None
        if self._cluster_cache is None:
            from monitor.store.dev_cache import ClusterCache

            # Made inside a transaction: what it reads from now on is this connection's view.
            self._cluster_cache = ClusterCache()
            self._cluster_cache.begin(self.conn)
        return self._cluster_cache

    def _params(self, topic: str) -> ClusterParams:
        from monitor.store import developments as dev

        params = dev.params_for(
            self.development_windows.get(topic, DEFAULT_WINDOW), self.cluster_params
        )
        terms = self.topic_terms.get(topic)
        return replace(params, topic_terms=terms) if terms else params

    def _merge_developments(
        self, assignments: Mapping[tuple[int, str], Assignment], now: datetime
    ) -> None:
        """Check whether the developments this poll opened or grew now match another one."""
        from monitor.store import developments as dev

        touched = _touched(assignments)
        cache = self.cluster_cache()
        for topic in sorted(touched):
            dev.merge_developments(
                self.conn, topic, self._params(topic), now, touched[topic], cache
            )

    def _regroup_developments(
        self, assignments: dict[tuple[int, str], Assignment], now: datetime
    ) -> list[tuple[str, int]]:
        """Regroup the members of the developments this poll touched (monitor.cluster.regroup).

        `assignments` is updated for this poll's items that moved, so their alerts follow.
        Returns the developments regrouping changed or opened, by topic.
        """
        from monitor.store import developments as dev

        touched = {
            topic: {dev.root_of(self.conn, d) for d in ids}
            for topic, ids in _touched(assignments).items()
        }
        cache = self.cluster_cache()
        changed: list[tuple[str, int]] = []
        for topic in sorted(touched):
            done = dev.regroup_developments(
                self.conn, topic, self._params(topic), now, touched[topic], cache
            )
            for item_id, (development_id, relation) in done.moved.items():
                old = assignments.get((item_id, topic))
                if old is not None:
                    assignments[item_id, topic] = replace(
                        old, development_id=development_id, relation=relation
                    )
            changed.extend((topic, dev_id) for dev_id in done.affected)
        return changed

    def _queue_unalerted(self, developments: Sequence[tuple[str, int]], now: datetime) -> None:
        """After regrouping, a development that holds articles but was never alerted (split off,
        or opened by this poll and given an earlier article as its first) is alerted now, with
        its earliest article as `first`. Call after this poll's own alerts are queued."""
        if self.alert_routing is None or not developments:
            return
        from monitor.alert.outbox import enqueue
        from monitor.alert.plan import AlertCandidate, plan_alerts, routed

        candidates = []
        for topic, development_id in developments:
            row = self.conn.execute(
                f"""SELECT i.id, i.title, i.url, {OUTLET_SQL} AS outlet,
                          i.published, i.fetched, i.language, m.terms, m.snippet
                   FROM developments d JOIN items i ON i.id = d.first_item_id
                   LEFT JOIN feeds f ON f.id = i.feed_id
                   LEFT JOIN matches m ON m.item_id = i.id AND m.topic = d.topic
                   WHERE d.id = ? AND d.items > 0 AND d.alerts = 0 AND d.merged_into IS NULL""",
                (development_id,),
            ).fetchone()
            if row is None:
                continue
            candidate = AlertCandidate(
                item_id=int(row["id"]),
                topic=topic,
                title=row["title"],
                url=row["url"],
                outlet=row["outlet"],
                published=parse_iso(row["published"]) if row["published"] else None,
                first_seen=parse_iso(row["fetched"]) or now,
                terms=tuple(json.loads(row["terms"] or "[]")),
                snippet=row["snippet"] or "",
                language=row["language"],
                development_id=development_id,
                relation="first",
            )
            if routed(candidate, self.alert_routing):
                candidates.append(self._in_context(candidate))
        enqueue(self.conn, plan_alerts(candidates, self.alert_routing, now))

    def rebuild_developments(self, topics: Sequence[str], now: datetime) -> dict[str, int]:
        """Give matched items that are in no development of their topic one, silently (rematch).

        Items are replayed in the order they were first seen, each decided as of that time.
        Call inside a transaction. Returns how many developments each topic has now.
        """
        from monitor.cluster import features
        from monitor.store import developments as dev

        counts: dict[str, int] = {}
        cache = self.cluster_cache()
        for topic in topics:
            params = self._params(topic)
            touched: set[int] = set()
            seen = now
            for n, (item_id, title, guid) in enumerate(dev.unclustered_items(self.conn, topic), 1):
                row = self.conn.execute(
                    "SELECT text, language, fetched FROM items WHERE id = ?", (item_id,)
                ).fetchone()
                feats = dev.load_features(self.conn, item_id, cache)
                if feats is None:
                    stored = features(title, row["text"], row["language"]).to_json()
                    feats = dev.add_to_corpus(self.conn, item_id, stored, cache)
                seen = parse_iso(row["fetched"]) or now
                clustered = dev.ArticleForClustering(item_id, title, guid, feats)
                grown = _grown(dev.assign(self.conn, clustered, topic, params, seen, cache))
                if grown is not None:
                    touched.add(grown)
                if n % REBUILD_REGROUP_EVERY == 0:  # as polls would have, a few at a time
                    self._regroup_rebuilt(topic, params, seen, touched)
            self._regroup_rebuilt(topic, params, seen, touched)
            counts[topic] = self.count(
                "developments", "topic = :t AND merged_into IS NULL", {"t": topic}
            )
        return counts

    def _regroup_rebuilt(
        self, topic: str, params: ClusterParams, now: datetime, touched: set[int]
    ) -> None:
        """Regroup what a rebuild touched, silently (its moves are recorded, nothing alerted)."""
        from monitor.store import developments as dev

        if params.regroup and touched:
            roots = {dev.root_of(self.conn, d) for d in touched}  # merges may have moved them
            dev.regroup_developments(self.conn, topic, params, now, roots, self.cluster_cache())
        touched.clear()

    def _write_matches(self, item_id: int, matches: Sequence[TopicMatch], now: datetime) -> None:
        for match in matches:
            self.conn.execute(
                """INSERT OR REPLACE INTO matches (item_id, topic, terms, snippet, score, matched_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (
                    item_id,
                    match.topic,
                    json.dumps(list(match.terms), ensure_ascii=False),
                    match.snippet,
                    match.score,
                    utc_iso(now),
                ),
            )

    def _queue_alerts(
        self,
        feed_name: str,
        item_ids: Sequence[int],
        poll: FeedPoll,
        now: datetime,
        assignments: Mapping[tuple[int, str], Assignment],
    ) -> None:
        """Write this poll's alerts to the outbox, in the poll's transaction (monitor.alert)."""
        if self.alert_routing is None:
            return
        from monitor.alert.outbox import enqueue
        from monitor.alert.plan import AlertCandidate, plan_alerts, routed

        candidates = []
        for item_id, article in zip(item_ids, poll.new_articles, strict=True):
            for match in poll.matches.get(article.entry.key, ()):
                assigned = assignments.get((item_id, match.topic))
                if assigned is None:  # stored by a concurrent poll: its alerts were made there
                    continue
                candidate = AlertCandidate(
                    item_id=item_id,
                    topic=match.topic,
                    title=article.title,
                    url=article.entry.url,
                    outlet=outlet_name(article.site_name, feed_name, article.entry.url),
                    published=article.published,
                    first_seen=now,
                    terms=match.terms,
                    snippet=match.snippet,
                    language=article.language,
                    development_id=assigned.development_id,
                    relation=assigned.relation,  # type: ignore[arg-type]
                )
                # Most matches alert nobody (reports, duplicates): their context is not read.
                if routed(candidate, self.alert_routing):
                    candidates.append(self._in_context(candidate))
        enqueue(self.conn, plan_alerts(candidates, self.alert_routing, now))

    def _in_context(self, candidate: AlertCandidate) -> AlertCandidate:
        """`candidate` with its development's context: the revision an alert now would have,
        the development's title and the other outlets that reported it."""
        row = self.conn.execute(
            "SELECT title, alerts FROM developments WHERE id = ?", (candidate.development_id,)
        ).fetchone()
        if row is None:
            return replace(candidate, revision=1, development_title=None, other_outlets=())
        outlets = self.conn.execute(
            f"""SELECT DISTINCT {OUTLET_SQL} FROM development_items di
               JOIN items i ON i.id = di.item_id LEFT JOIN feeds f ON f.id = i.feed_id
               WHERE di.development_id = ? AND di.item_id != ? ORDER BY di.added_at""",
            (candidate.development_id, candidate.item_id),
        ).fetchall()
        return replace(
            candidate,
            revision=1 if candidate.relation == "first" else int(row["alerts"]) + 1,
            development_title=row["title"],
            # "Also reported by" names other outlets: not the one this alert is from.
            other_outlets=tuple(str(o[0]) for o in outlets if o[0] and o[0] != candidate.outlet),
        )

    def _update_entry(self, feed_id: int, entry: FeedEntry, now: datetime) -> None:
        row = self.conn.execute(
            "SELECT id, text_source FROM items WHERE key = ?", (entry.key,)
        ).fetchone()
        if row is None:
            return
        # A page's extracted text stays; a feed-sourced text follows the feed's correction.
        text_sql = ", text = :summary" if row["text_source"] == "feed" else ""
        from monitor.match import archive

        # Out of the history index before the row changes (the index is made from the row).
        indexed = archive.delete_items(self.conn, [row["id"]])
        self.conn.execute(
            f"""UPDATE items SET title = :title, summary = :summary, entry_hash = :hash,
                updated = :now{text_sql} WHERE id = :id""",
            {
                "title": entry.title,
                "summary": entry.summary,
                "hash": entry.entry_hash,
                "now": utc_iso(now),
                "id": row["id"],
            },
        )
        archive.index_stored(self.conn, indexed)  # items whose text retention dropped stay out
        self.conn.execute(
            "INSERT INTO item_updates (item_id, feed_id, at, title, entry_hash) VALUES (?,?,?,?,?)",
            (row["id"], feed_id, utc_iso(now), entry.title, entry.entry_hash),
        )

    def _sight(self, feed_id: int, key: str, now: datetime) -> None:
        self.conn.execute(
            """INSERT INTO sightings (item_id, feed_id, first_seen, last_seen)
               SELECT id, ?, ?, ? FROM items WHERE key = ?
               ON CONFLICT (item_id, feed_id) DO UPDATE SET last_seen = excluded.last_seen""",
            (feed_id, utc_iso(now), utc_iso(now), key),
        )

    def _write_feed_state(self, feed_id: int, u: FeedStateUpdate) -> None:
        values: dict[str, Any] = {
            "status": u.status.value,
            "last_fetch": utc_iso(u.last_fetch),
            "next_fetch": utc_iso(u.next_fetch),
            "error_count": u.error_count,
            "retry_after": utc_iso(u.retry_after),
            "polls": None,
        }
        if u.success:
            values.update(
                last_success=utc_iso(u.last_fetch),
                failing_since=None,
                etag=u.etag,
                last_modified=u.last_modified,
            )
            for key in ("body_hash", "used_url", "title", "site_url"):
                if getattr(u, key) is not None:
                    values[key] = getattr(u, key)
            if u.reread:
                values["last_warning"] = u.warning
        if u.error:
            values.update(last_error=u.error, last_error_at=utc_iso(u.last_fetch))
        sets = ", ".join("polls = polls + 1" if k == "polls" else f"{k} = :{k}" for k in values)
        if u.error:
            sets += ", failing_since = coalesce(failing_since, :last_fetch)"
        self.conn.execute(f"UPDATE feeds SET {sets} WHERE id = :id", {**values, "id": feed_id})

    # ----------------------------------------------------------------- reading

    def recent_items(self, *, feed: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where, params = "", []
        if feed is not None:
            where = "WHERE i.id IN (SELECT s.item_id FROM sightings s JOIN feeds f2 ON f2.id = "
            where += "s.feed_id WHERE f2.name = ?)"
            params.append(feed)
        rows = self.conn.execute(
            f"""SELECT i.*, f.name AS feed FROM items i LEFT JOIN feeds f ON f.id = i.feed_id
                {where} ORDER BY i.fetched DESC, i.id DESC LIMIT ?""",
            (*params, limit),
        ).fetchall()
        items = [dict(row) for row in rows]
        self._attach(items)
        return items

    def _attach(self, items: list[dict[str, Any]]) -> None:
        """Add `feeds` (all feeds that listed it) and `topics` (matched topics) to item rows."""
        if not items:
            return
        ids = [item["id"] for item in items]
        marks = ",".join("?" * len(ids))
        feeds: dict[int, list[str]] = {}
        for row in self.conn.execute(
            f"""SELECT s.item_id, f.name FROM sightings s JOIN feeds f ON f.id = s.feed_id
                WHERE s.item_id IN ({marks}) ORDER BY s.first_seen, f.name""",
            ids,
        ):
            feeds.setdefault(row["item_id"], []).append(row["name"])
        topics: dict[int, list[str]] = {}
        for row in self.conn.execute(
            f"SELECT item_id, topic FROM matches WHERE item_id IN ({marks}) ORDER BY topic", ids
        ):
            topics.setdefault(row["item_id"], []).append(row["topic"])
        for item in items:
            item["feeds"] = feeds.get(item["id"], [])
            item["topics"] = topics.get(item["id"], [])

    def count(self, table: str, where: str = "", params: Mapping[str, Any] | None = None) -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.conn.execute(sql, params or {}).fetchone()[0])


def _grown(assigned: Assignment) -> int | None:
    """The development an assignment opened or grew (a duplicate grows none)."""
    return None if assigned.relation == "duplicate" else assigned.development_id


def _touched(assignments: Mapping[tuple[int, str], Assignment]) -> dict[str, set[int]]:
    """The developments a poll opened or grew, by topic."""
    touched: dict[str, set[int]] = {}
    for (_, topic), assigned in assignments.items():
        grown = _grown(assigned)
        if grown is not None:
            touched.setdefault(topic, set()).add(grown)
    return touched


# What `_write_feed_state` writes for a plain success (see `_plain_success`), as one statement.
_UNCHANGED_SQL = """UPDATE feeds SET status = 'ok', last_fetch = ?, next_fetch = ?,
    error_count = 0, retry_after = ?, polls = polls + 1, last_success = ?, failing_since = NULL,
    etag = ?, last_modified = ?, body_hash = coalesce(?, body_hash),
    last_warning = CASE WHEN ? THEN NULL ELSE last_warning END
    WHERE id = ?"""


def _plain_success(u: FeedStateUpdate) -> bool:
    return (
        u.success
        and u.status is FeedStatus.OK
        and u.error_count == 0
        and u.error is None
        and u.used_url is None
        and u.title is None
        and u.site_url is None
        and u.warning is None
    )


def _unchanged_values(feed_id: int, u: FeedStateUpdate) -> tuple[Any, ...]:
    fetched = utc_iso(u.last_fetch)
    return (
        fetched,
        utc_iso(u.next_fetch),
        utc_iso(u.retry_after),
        fetched,
        u.etag,
        u.last_modified,
        u.body_hash,
        u.reread,
        feed_id,
    )


def _feed_state(row: sqlite3.Row) -> FeedState:
    return FeedState(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        config_hash=row["config_hash"],
        status=FeedStatus(row["status"]),
        used_url=row["used_url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_fetch=parse_iso(row["last_fetch"]),
        next_fetch=parse_iso(row["next_fetch"]),
        retry_after=parse_iso(row["retry_after"]),
        error_count=row["error_count"],
        failing_since=parse_iso(row["failing_since"]),
        last_error=row["last_error"],
    )
