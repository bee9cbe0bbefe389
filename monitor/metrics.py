"""`monitor run --http HOST:PORT`: `/healthz` and Prometheus `/metrics`, served off the event loop.

The server runs in its own threads (`ThreadingHTTPServer`), so it answers while a poll or an
extraction keeps the event loop busy — and `/healthz` can then tell that the loop has stalled.

Counters (polls, errors, items, alerts, reloads, poll durations) are counted in this process as things
happen. Gauges that describe the database (feeds by status, the outbox by status, items, size) are
read from it at scrape time on a read-only connection of the server's own.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from monitor.config import Config
from monitor.ops import database_size, feed_statuses

# `*_created` series would double the output and say nothing a scraper needs here.
disable_created_metrics()  # type: ignore[no-untyped-call]
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)


class Metrics:
    """The daemon's counters, in a registry of their own (several daemons in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls by outcome.", ["status"], registry=r)
        self.fetch_errors = Counter(
            "monitor_fetch_errors", "Polls that failed (error or gone).", registry=r
        )
        self.items = Counter("monitor_items_stored", "New items stored.", registry=r)
        self.updates = Counter("monitor_items_updated", "Items updated by their feed.", registry=r)
        self.poll_seconds = Histogram(
            "monitor_poll_duration_seconds",
            "Wall time of a poll: fetch, parse, articles, store.",
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.alerts_sent = Counter("monitor_alerts_sent", "Alerts delivered.", registry=r)
        self.alerts_retrying = Counter(
            "monitor_alerts_retrying", "Alert sends that failed and will be retried.", registry=r
        )
        self.alerts_failed = Counter(
            "monitor_alerts_failed", "Alerts given up on after their retries.", registry=r
        )
        self.reloads = Counter(
            "monitor_config_reloads", "Config edits, applied or rejected.", ["result"], registry=r
        )
        self.retention_dropped = Counter(
            "monitor_retention_dropped", "Items whose text retention dropped.", registry=r
        )
        self.started = Gauge(
            "monitor_start_time_seconds", "When the daemon started (Unix time).", registry=r
        )
        for status in ("ok", "unchanged", "error", "gone", "skipped"):
            self.polls.labels(status)  # present from the start, at 0
        for result in ("applied", "rejected"):
            self.reloads.labels(result)

    def observe_poll(self, status: str, new: int, updated: int, seconds: float) -> None:
        self.polls.labels(status).inc()
        if status in ("error", "gone"):
            self.fetch_errors.inc()
        if status != "skipped":
            self.poll_seconds.observe(seconds)
        self.items.inc(new)
        self.updates.inc(updated)

    def observe_dispatch(self, sent: int, retrying: int, failed: int) -> None:
        self.alerts_sent.inc(sent)
        self.alerts_retrying.inc(retrying)
        self.alerts_failed.inc(failed)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class DatabaseCollector:
    """Gauges read from the database at scrape time."""

    def __init__(self, config: Callable[[], Config]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self, path: Path) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def collect(self) -> Iterator[Metric]:
        config = self._config()
        with self._lock:
            try:
                conn = self._connection(config.database)
                rows = conn.execute("SELECT name, status, last_error, failing_since FROM feeds")
                feeds, _ = feed_statuses(config, rows.fetchall())
                outbox = dict(
                    conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
                )
                items = int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
            except sqlite3.Error:
                return  # no database yet (or busy): those gauges are left out of this scrape
        family = GaugeMetricFamily(
            "monitor_feeds", "Configured feeds by status.", labels=["status"]
        )
        for status, count in feeds.items():
            family.add_metric([status], count)
        yield family
        family = GaugeMetricFamily(
            "monitor_outbox", "Alerts in the outbox by status.", labels=["status"]
        )
        for status in ("pending", "sending", "sent", "failed"):
            family.add_metric([status], int(outbox.get(status, 0)))
        yield family
        yield GaugeMetricFamily("monitor_items", "Items in the database.", value=items)
        yield GaugeMetricFamily(
            "monitor_database_bytes",
            "Database file size, write-ahead log included.",
            value=database_size(config.database),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected at scrape time only

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


@dataclass(frozen=True)
class Health:
    ok: bool
    body: dict[str, Any]


class OpsServer:
    """The HTTP server, in threads of its own: `start()`, `stop()`."""

    def __init__(
        self, host: str, port: int, metrics: Metrics, health: Callable[[], Health]
    ) -> None:
        self.metrics = metrics
        self.health = health
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="monitor-http"
        )
        self._thread.daemon = True

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], ops: OpsServer) -> None:
        import socket

        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.ops = ops
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "news-monitor"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            health = self.server.ops.health()
            body = json.dumps(health.body).encode()
            self._send(200 if health.ok else 503, "application/json", body)
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, self.server.ops.metrics.render())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the log
