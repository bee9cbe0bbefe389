"""Wiring: build the pipeline's parts from a config, and tear them down in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from monitor.clock import Clock, SystemClock
from monitor.config import Config
from monitor.fetch import Fetcher
from monitor.pipeline import Extractor, Pipeline, Writer
from monitor.store import Store


@asynccontextmanager
async def open_pipeline(
    config: Config,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    workers: int | None = None,
) -> AsyncIterator[Pipeline]:
    """Open store, fetcher and extractor; close them (in-flight writes first) on the way out."""
    clock = clock or SystemClock()
    store = Store.open(config.database)
    writer = Writer(store)
    fetch = config.fetch
    fetcher = Fetcher(
        max_connections=fetch.max_connections,
        per_host=fetch.per_host,
        max_redirects=fetch.max_redirects,
        max_body=fetch.max_body,
        user_agent=fetch.user_agent,
        transport=transport,
        proxy=fetch.proxy,
        no_proxy=fetch.no_proxy,
        clock=clock,
    )
    extractor = Extractor(workers if workers is not None else config.model.workers)
    try:
        pipeline = Pipeline(config, writer, fetcher, extractor, clock)
        await pipeline.sync_feeds()
        yield pipeline
    finally:
        await fetcher.aclose()
        extractor.close()
        writer.close()
