"""The writer's memory of what clustering reads back, so a decision costs no re-reading.

Deciding an article needs its topic's recent developments (every member's stored features) and the
document frequencies of their terms. Read from the database for every match, the JSON decoding of
the same features over and over was most of the writer's time. A `ClusterCache` lives as long as
its `Store` (the daemon's writer keeps one) and holds:

- the decoded features per item id (never rewritten once written): those the kept topics' members
  use, and other recently used ones, each within a budget of (estimated) bytes;
- per topic, every development last seen since a horizon, with its members, and the
  `DevelopmentView`s built from them, grown by `assign` itself rather than re-read; over budget,
  the least recently used topic is dropped (and read again when needed);
- document frequencies looked up so far, kept current by `add_to_corpus`, and the document count.

It must never run ahead of the database: the store calls `begin` after each BEGIN (another
connection's commit, such as `monitor rematch`, empties the topic and frequency memory) and
`rollback` when a transaction fails (everything is forgotten: ids of rolled-back rows are reused).
Merges drop the topic's memory; it is reloaded from the database on next use. The views it returns
are the same, member for member and in the same order, as `developments.recent_developments`
reads, so decisions do not depend on whether it is used.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.clock import parse_iso, utc_iso
from monitor.cluster import DevelopmentView, DocFeatures, Member
from monitor.sqlin import in_chunks
from monitor.store.developments import read_dfs, read_n_docs, recent_members_sql, root_of

# Decoded features take at most five times the length of their JSON (measured with tracemalloc:
# 19 kB for 4.9 kB on the extraction-dev pages, 13 kB for 2.7 kB on ECB+; their terms are
# interned and no sketch set is kept, see DocFeatures); memory is budgeted by that estimate.
SIZE_FACTOR = 5
# The daemon's whole process tree should stay under 350 MB (it is ~290 MB without this memory).
LIVE_BYTES = 48 * 2**20  # features of the members of the topics kept (least recent topic goes)
SPARE_BYTES = 8 * 2**20  # other recently used features (LRU)
MAX_TERMS = 300_000  # document frequencies kept before the memory is emptied and refilled
_TYPICAL_SIZE = 40_000  # for features whose JSON length is not known


@dataclass
class _Dev:
    """One development row and its members, as `recent_developments` would read them."""

    id: int
    first_seen: datetime
    last_seen: datetime
    root: int  # the development it now stands under (merges followed)
    members: list[tuple[str, int, Member]] = field(default_factory=list)  # (added_at, id, m)


@dataclass
class _Topic:
    """Every development of a topic last seen at or after `horizon` (perhaps a few more)."""

    horizon: datetime
    devs: dict[int, _Dev]
    items: set[int]
    views: dict[int, tuple[tuple[int, ...], DevelopmentView]] = field(default_factory=dict)


class ClusterCache:
    """See the module docstring. One per Store; used from the Store's thread only."""

    def __init__(
        self,
        live_bytes: int = LIVE_BYTES,
        spare_bytes: int = SPARE_BYTES,
        max_terms: int = MAX_TERMS,
    ) -> None:
        self.live_bytes = live_bytes
        self.spare_bytes = spare_bytes
        self.max_terms = max_terms
        # Features members of kept topics refer to: item -> [features, size, how many topics].
        self._live: dict[int, list[Any]] = {}
        self._live_size = 0
        self._spare: OrderedDict[int, tuple[DocFeatures, int]] = OrderedDict()
        self._spare_size = 0
        self._topics: OrderedDict[str, _Topic] = OrderedDict()
        self._dfs: dict[str, int] = {}
        self._n_docs: int | None = None
        self._data_version: int | None = None
        self.loads = 0  # topic loads from the database (tests and benchmarks read it)

    def held(self) -> dict[str, int]:
        """How much is kept: topics, items and their estimated bytes, document frequencies."""
        return {
            "topics": len(self._topics),
            "live_items": len(self._live),
            "live_bytes": self._live_size,
            "spare_items": len(self._spare),
            "spare_bytes": self._spare_size,
            "terms": len(self._dfs),
        }

    # ------------------------------------------------------------ transactions

    def begin(self, conn: sqlite3.Connection) -> None:
        """Call after BEGIN: forget what another connection may have changed since."""
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if self._data_version is not None and version != self._data_version:
            self.forget_changeable()
        self._data_version = version

    def rollback(self) -> None:
        """Call when a transaction is rolled back: nothing it wrote may stay in memory."""
        self.clear()

    def clear(self) -> None:
        self.forget_changeable()
        self._spare.clear()
        self._spare_size = 0

    def forget_changeable(self) -> None:
        """Forget topics and frequencies; keep features of committed items (never rewritten)."""
        for topic in list(self._topics):
            self.forget_topic(topic)
        self._dfs.clear()
        self._n_docs = None

    def forget_topic(self, topic: str) -> None:
        state = self._topics.pop(topic, None)
        if state is not None:
            for item_id in state.items:
                self._unref(item_id)

    # ------------------------------------------------------------ features

    def remember(self, item_id: int, feats: DocFeatures, json_length: int) -> None:
        """The features just stored for an item (as reading them back gives them)."""
        if item_id in self._live:  # rewritten while members refer to it: start again
            self.forget_changeable()
        self._keep_spare(item_id, feats, json_length * SIZE_FACTOR)

    def features(self, conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, DocFeatures]:
        """Stored features of these items (those without features are left out)."""
        return {item_id: kept[0] for item_id, kept in self._lookup(conn, ids).items()}

    def _lookup(
        self, conn: sqlite3.Connection, ids: Iterable[int]
    ) -> dict[int, tuple[DocFeatures, int]]:
        found: dict[int, tuple[DocFeatures, int]] = {}
        missing: list[int] = []
        for item_id in ids:
            live = self._live.get(item_id)
            if live is not None:
                found[item_id] = (live[0], live[1])
            elif item_id in self._spare:
                self._spare.move_to_end(item_id)
                found[item_id] = self._spare[item_id]
            else:
                missing.append(item_id)
        for chunk, marks in in_chunks(missing):
            for item_id, text in conn.execute(
                f"SELECT item_id, features FROM item_features WHERE item_id IN ({marks})", chunk
            ):
                kept = (DocFeatures.from_json(text), len(text) * SIZE_FACTOR)
                found[int(item_id)] = kept
                self._keep_spare(int(item_id), *kept)
        return found

    def _keep_spare(self, item_id: int, feats: DocFeatures, size: int) -> None:
        old = self._spare.pop(item_id, None)
        if old is not None:
            self._spare_size -= old[1]
        self._spare[item_id] = (feats, size)
        self._spare_size += size
        while self._spare_size > self.spare_bytes and len(self._spare) > 1:
            _, (_, gone) = self._spare.popitem(last=False)
            self._spare_size -= gone

    def _ref(self, item_id: int, feats: DocFeatures, size: int) -> None:
        live = self._live.get(item_id)
        if live is None:
            self._live[item_id] = [feats, size, 1]
            self._live_size += size
            spare = self._spare.pop(item_id, None)  # held once, by the live set
            if spare is not None:
                self._spare_size -= spare[1]
        else:
            live[2] += 1

    def _unref(self, item_id: int) -> None:
        live = self._live[item_id]
        live[2] -= 1
        if live[2] == 0:
            del self._live[item_id]
            self._live_size -= live[1]
            self._keep_spare(item_id, live[0], live[1])  # a topic read again finds it

    # ------------------------------------------------------------ document frequencies

    def n_docs(self, conn: sqlite3.Connection) -> int:
        if self._n_docs is None:
            self._n_docs = read_n_docs(conn)
        return self._n_docs

    def dfs(self, conn: sqlite3.Connection, terms: Collection[str]) -> Mapping[str, int]:
        """Document frequency of each term asked for (the returned mapping may hold more)."""
        missing = [t for t in terms if t not in self._dfs]
        if len(self._dfs) + len(missing) > self.max_terms:
            self._dfs.clear()
            missing = list(terms)
        found = read_dfs(conn, missing)
        for term in missing:
            self._dfs[term] = found.get(term, 0)
        return self._dfs

    def counted(self, terms: Iterable[str]) -> None:
        """A document with these terms was added to the corpus tables (write-through)."""
        if self._n_docs is not None:
            self._n_docs += 1
        dfs = self._dfs
        for term in terms:
            if term in dfs:
                dfs[term] += 1

    # ------------------------------------------------------------ topics

    def views(self, conn: sqlite3.Connection, topic: str, since: datetime) -> list[DevelopmentView]:
        """What `recent_developments(conn, topic, since)` would return."""
        state = self._topics.get(topic)
        if state is None or since < state.horizon:
            state = self._load(conn, topic, since)
        self._topics.move_to_end(topic)
        if since > state.horizon:
            self._prune(state, since)
        groups: dict[int, list[_Dev]] = {}
        for dev_id in sorted(state.devs):
            dev = state.devs[dev_id]
            if dev.members and dev.last_seen >= since:
                groups.setdefault(dev.root, []).append(dev)
        out: list[DevelopmentView] = []
        for root, devs in groups.items():
            signature = tuple(d.id for d in devs)
            cached = state.views.get(root)
            if cached is None or cached[0] != signature:
                cached = (signature, _view(root, devs))
                state.views[root] = cached
            out.append(cached[1])
        return out

    def joined(
        self,
        topic: str,
        development_id: int,
        opened: bool,
        member: Member,
        added_at: str,
    ) -> None:
        """`assign` wrote `member` into `development_id` (a new one when `opened`) at `added_at`."""
        state = self._topics.get(topic)
        if state is None:
            return
        if member.item_id in state.items:  # INSERT OR REPLACE moved it: re-read the topic
            self.forget_topic(topic)
            return
        when = parse_iso(added_at)
        assert when is not None
        if opened:
            dev = _Dev(
                development_id, when, when, development_id, [(added_at, member.item_id, member)]
            )
            state.devs[development_id] = dev
            state.views[development_id] = ((development_id,), _view(development_id, [dev]))
        else:
            grown = state.devs.get(development_id)
            if grown is None:  # its rows are older than what is kept: re-read the topic
                self.forget_topic(topic)
                return
            _add_member(state, grown, member, added_at, when)
        state.items.add(member.item_id)
        self._ref(member.item_id, member.features, self._size_of(member.item_id))
        self._evict()

    def merged(self, topic: str) -> None:
        """Merges were recorded: the topic's developments are re-read on next use."""
        self.forget_topic(topic)

    def _load(self, conn: sqlite3.Connection, topic: str, since: datetime) -> _Topic:
        self.forget_topic(topic)
        self.loads += 1
        rows = conn.execute(recent_members_sql(), (topic, utc_iso(since))).fetchall()
        feats = self._lookup(conn, (int(r[3]) for r in rows))
        devs: dict[int, _Dev] = {}
        items: set[int] = set()
        for dev_id, first, last, item_id, added, guid, dup in rows:
            dev = devs.get(dev_id)
            if dev is None:
                lo, hi = parse_iso(first), parse_iso(last)
                assert lo is not None and hi is not None
                dev = devs[dev_id] = _Dev(int(dev_id), lo, hi, root_of(conn, int(dev_id)))
            seen = parse_iso(added)
            assert seen is not None
            kept = feats[int(item_id)]
            member = Member(int(item_id), kept[0], seen, guid, None if dup is None else int(dup))
            dev.members.append((str(added), int(item_id), member))
            if int(item_id) not in items:
                items.add(int(item_id))
                self._ref(int(item_id), *kept)
        state = _Topic(since, devs, items)
        self._topics[topic] = state
        self._evict()
        return state

    def _evict(self) -> None:
        """Forget the least recently used topics while their features take too much room."""
        while self._live_size > self.live_bytes and len(self._topics) > 1:
            self.forget_topic(next(iter(self._topics)))

    def _prune(self, state: _Topic, since: datetime) -> None:
        """Drop developments last seen before `since`: no later request reaches back so far."""
        old = {d.id: d for d in state.devs.values() if d.last_seen < since}
        for dev in old.values():
            del state.devs[dev.id]
            for _, item_id, _ in dev.members:
                if item_id in state.items:
                    state.items.discard(item_id)
                    self._unref(item_id)
        for root, (signature, _) in list(state.views.items()):
            if any(dev_id in old for dev_id in signature):
                del state.views[root]
        state.horizon = since

    def _size_of(self, item_id: int) -> int:
        live = self._live.get(item_id)
        if live is not None:
            return int(live[1])
        spare = self._spare.get(item_id)
        return spare[1] if spare is not None else _TYPICAL_SIZE


def _view(root: int, devs: list[_Dev]) -> DevelopmentView:
    return DevelopmentView(
        root,
        min(d.first_seen for d in devs),
        max(d.last_seen for d in devs),
        tuple(m for d in devs for _, _, m in d.members),
    )


def _add_member(state: _Topic, dev: _Dev, member: Member, added_at: str, when: datetime) -> None:
    """Record a report or duplicate into `dev`, and grow its cached view when that is exact."""
    key = (added_at, member.item_id)
    at_end = not dev.members or dev.members[-1][:2] < key
    dev.members.append((added_at, member.item_id, member))
    if not at_end:
        dev.members.sort(key=lambda m: (m[0], m[1]))
    old_last, dev.last_seen = dev.last_seen, when  # the database sets it, even backwards
    cached = state.views.get(dev.root)
    if cached is None:
        return
    signature, view = cached
    # Members are listed development by development, by id: appended only if `dev` comes last.
    exact = at_end and signature[-1] == dev.id and when >= old_last and when >= view.first_seen
    if exact:
        state.views[dev.root] = (signature, view.with_member(member))
    else:
        del state.views[dev.root]
