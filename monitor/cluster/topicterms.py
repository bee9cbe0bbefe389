"""The words a topic's query names, which the topic's comparisons leave out.

Every article of a topic carries some of its query's words, so they tell none of its events
apart; yet weighed by IDF over all stored news they are among the rarest, hence the heaviest,
words two of its articles share. In a broad topic ("Russia–North Korea military ties") that
made a security chief's visit and a treaty ratification look like one event
(``bench/broad_topic.py``). Leaving them out weighs what differs between its events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.cluster.text import fold, stem


@dataclass(frozen=True)
class TopicTerms:
    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()  # a starred word (``korea*``), or Hangul (agglutinative)

    @classmethod
    def of_forms(cls, forms: Iterable[tuple[str, bool]]) -> TopicTerms:
        """From the matcher's token forms of the query's positive terms: (norm, prefix)."""
        exact: set[str] = set()
        prefixes: set[str] = set()
        for norm, prefix in forms:
            variants = {norm, fold(norm)}
            (prefixes if prefix else exact).update(v for v in variants if v)
        return cls(frozenset(exact), tuple(sorted(prefixes)))

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def covers(self, space: str, term: str) -> bool:
        """Whether a feature term (``w:`` a stem, ``n:`` a lowercase name) is a query word."""
        if space == "f:":  # numbers and dates are never query words here
            return False
        if self._named(term):
            return True
        return space == "n:" and self._named(stem(term, None))

    def _named(self, term: str) -> bool:
        return term in self.exact or term.startswith(self.prefixes)


NO_TOPIC_TERMS = TopicTerms()
