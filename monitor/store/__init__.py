"""Storage: SQLite via sqlite-utils, schema by migrations, one writer."""

from monitor.store.db import FeedState, FeedStateUpdate, PollCounts, Store, StoreError

__all__ = ["FeedState", "FeedStateUpdate", "PollCounts", "Store", "StoreError"]
