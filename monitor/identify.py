"""Pure decider: which entries of a poll are new, updated or already known."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from monitor.records import FeedEntry


class Classified(NamedTuple):
    new: tuple[FeedEntry, ...]  # key never stored
    updated: tuple[FeedEntry, ...]  # key stored with another entry_hash: title or text changed
    unchanged: tuple[FeedEntry, ...]  # key stored with this very entry_hash


def classify_entries(entries: Iterable[FeedEntry], known: Mapping[str, str]) -> Classified:
    """Split ``entries`` by what the store knows (``known``: item key -> stored entry_hash).

    Feed order is kept within each group. An entry whose key already appeared
    earlier in ``entries`` is ignored, so one poll never yields the same item twice.
    """
    new: list[FeedEntry] = []
    updated: list[FeedEntry] = []
    unchanged: list[FeedEntry] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.key in seen:
            continue
        seen.add(entry.key)
        stored = known.get(entry.key)
        if stored is None:
            new.append(entry)
        elif stored != entry.entry_hash:
            updated.append(entry)
        else:
            unchanged.append(entry)
    return Classified(tuple(new), tuple(updated), tuple(unchanged))
