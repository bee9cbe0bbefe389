"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.newsroom import Newsroom


@pytest.fixture
def newsroom() -> Iterator[Newsroom]:
    """A running loopback news server (127.0.0.1, ephemeral port), stopped after the test."""
    with Newsroom() as room:
        yield room
