"""``IN (...)`` lookups in bounded chunks, for every batched read or write by ids or keys."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Values per IN (...) list: well under SQLite's bound-parameter limit (999 before 3.32).
IN_LIMIT = 500


def in_chunks(values: Sequence[T], size: int = IN_LIMIT) -> Iterator[tuple[list[T], str]]:
    """``values`` in lists of at most ``size``, each with its ``?,?,…`` placeholders."""
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        yield chunk, ",".join("?" * len(chunk))
