"""What the CLI says: `import-opml` names what it skipped; `developments` heads each development
with one compact line (reports, outlets, times as `_ago` gives them), its --json unchanged."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.clock import SystemClock
from tests.alert_helpers import make_config, open_store, seed, story

CONFIG = """
database: m.db
feeds:
  - {name: BBC World, url: "https://feeds.bbci.co.uk/news/world/rss.xml"}
  - {name: Regional Post, url: "https://post.example/feed"}
topics: [{name: t, query: x}]
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MONITOR_CONFIG", str(tmp_path / "monitor.yaml"))
    return CliRunner()


def render(runner: CliRunner, args: list[str], columns: int = 200) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_import_opml_names_the_feeds_it_skips_as_already_there(
    runner: CliRunner, tmp_path: Path
) -> None:
    make_config(tmp_path, CONFIG)
    opml = tmp_path / "export.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><body>
        <outline text="BBC again" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
        <outline text="New one" xmlUrl="https://new.example/rss"/>
        <outline text="New one, twice" xmlUrl="https://new.example/rss"/>
        </body></opml>""",
        encoding="utf-8",
    )
    lines = render(runner, ["import-opml", str(opml)]).splitlines()
    assert lines[0].endswith("; 2 already there") and "added 1 to" in lines[0]
    assert lines[1:] == [
        "  + New one",
        "  skipped (already configured): BBC again "
        "(https://feeds.bbci.co.uk/news/world/rss.xml) as BBC World",
        "  skipped (already configured): New one, twice (https://new.example/rss) as New one",
    ]


def test_developments_head_each_with_reports_outlets_and_times(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = make_config(tmp_path, CONFIG)
    store = open_store(config)
    now = SystemClock().now()
    wire = story(1, "t", title="Troops reach Kursk")
    seed(store, "BBC World", [wire], now=now - timedelta(hours=2))
    # The same story again, from another feed: a duplicate in the same development.
    seed(
        store,
        "Regional Post",
        [story(1, "t", title="Troops reach Kursk", url="https://post.example/a/1")],
        now=now - timedelta(minutes=10),
    )
    seed(
        store,
        "BBC World",
        [story(2, "t", title="Parade cancelled")],
        now=now - timedelta(minutes=5),
    )
    store.close()

    text = render(runner, ["developments"])
    assert (
        "Troops reach Kursk  2 reports from 2 outlets · first seen 2.0h ago · last 10m ago\n"
        in text
    )
    assert "Parade cancelled  1 report from 1 outlet · first seen 5m ago\n" in text  # one time
    assert "Z …" not in text  # no raw ISO range

    found = json.loads(render(runner, ["developments", "--json"]))
    assert {tuple(sorted(d)) for d in found} == {
        ("first_seen", "id", "items", "last_seen", "merged_into", "split_from", "title", "topic")
    }
    assert all(d["first_seen"].endswith("Z") for d in found)
    assert {tuple(sorted(i)) for d in found for i in d["items"]} == {
        ("duplicate_of", "feed", "id", "published", "relation", "title", "url")
    }
