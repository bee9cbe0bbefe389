"""Bounded IN (...) lookups: every value is looked up once, whatever the count."""

from __future__ import annotations

import sqlite3

import pytest

from monitor.sqlin import IN_LIMIT, in_chunks


@pytest.mark.parametrize("count", [0, 1, IN_LIMIT, IN_LIMIT + 1, 3 * IN_LIMIT + 7])
def test_chunks_cover_every_value_once_within_the_limit(count: int) -> None:
    values = list(range(count))
    chunks = list(in_chunks(values))
    assert [v for chunk, _ in chunks for v in chunk] == values
    assert all(0 < len(chunk) <= IN_LIMIT for chunk, _ in chunks)
    assert all(marks == ",".join("?" * len(chunk)) for chunk, marks in chunks)


def test_a_lookup_of_more_ids_than_one_statement_binds_finds_them_all() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(0, 4000, 2)])
    wanted = list(range(3000))
    found = [
        int(row[0])
        for chunk, marks in in_chunks(wanted)
        for row in conn.execute(f"SELECT id FROM t WHERE id IN ({marks})", chunk)
    ]
    assert sorted(found) == list(range(0, 3000, 2))
