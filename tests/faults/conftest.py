"""Fixtures of the fault suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.clock import FakeClock
from tests.newsroom import Newsroom
from tests.pipeline_helpers import START, warm_up


@pytest.fixture(scope="session")
def warmed(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Memory measurements start after one pass has loaded what every pass needs."""
    warm_up(tmp_path_factory.mktemp("warm"))


@pytest.fixture
def room() -> Iterator[Newsroom]:
    """A newsroom with a healthy feed, /good.xml (2 articles), to poll beside the faulty one."""
    # The newsroom dates its entries by the same clock the passes run on (no "future" dates).
    with Newsroom(clock=FakeClock(START)) as newsroom:
        newsroom.publish("/good.xml", 2, seed=500)
        yield newsroom
