"""Rendering: default templates, escaping per format, custom templates, digest grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import markdown
import pytest

from monitor.alert.plan import AlertCandidate, AlertRouting, plan_alerts
from monitor.alert.render import Renderer, blend_title, escape_markdown, highlight, link
from monitor.config import parse_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVIL = "Kim @channel <script>alert(1)</script> [click](javascript:alert(1)) *bold* <!everyone>"


def payload(**kw: Any) -> dict[str, Any]:
    routing = AlertRouting.from_config(
        parse_config(
            'channels: {c: "json://x/y"}\n'
            "topics: [{name: t1, query: a, notify: [c]}, {name: t2, query: b, notify: [c]}]\n",
            Path("/tmp/m.yaml"),
            {},
        )
    )
    values: dict[str, Any] = {
        "item_id": 1,
        "topic": "t1",
        "title": "Пхеньян и Москва: 북한 군대",
        "url": "https://news.example/a(1)",
        "outlet": "Outlet",
        "published": NOW - timedelta(hours=2),
        "first_seen": NOW,
        "terms": ("kim",),
        "snippet": "Before **Kim Jong Un** met **Putin** after",
    }
    values.update(kw)
    (row,) = plan_alerts([AlertCandidate(**values)], routing, NOW)
    return dict(row.payload)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_default_text_alert_has_everything(renderer: Renderer) -> None:
    msg = renderer.render("alert", payload(), "text", zone="Europe/Berlin")
    assert msg.title == "t1: Пхеньян и Москва: 북한 군대"
    body = msg.body
    for part in ("Пхеньян и Москва: 북한 군대", "Outlet", "2026-03-01 11:00 CET",
                 "https://news.example/a(1)", "Topic: t1", "Matched: kim",
                 "Before *Kim Jong Un* met *Putin* after"):  # fmt: skip
        assert part in body, part


def test_markdown_alert_escapes_headline_and_links_safely(renderer: Renderer) -> None:
    msg = renderer.render("alert", payload(title=EVIL), "markdown")
    html = markdown.markdown(msg.body)
    assert "<script>" not in html and "javascript:" not in html.replace("javascript:alert", "")
    assert 'href="javascript' not in html
    assert "<em>" not in html  # *bold* stays literal
    assert '<a href="https://news.example/a%281%29">' in html  # the article link works
    assert "@channel" not in msg.body and "@\u200bchannel" in msg.body
    assert "<!everyone>" not in msg.body
    assert "<strong>Kim Jong Un</strong>" in html  # highlights survive as emphasis


def test_html_alert_escapes_and_keeps_highlights(renderer: Renderer) -> None:
    msg = renderer.render("alert", payload(title=EVIL, snippet="x **<b>y</b>** z"), "html")
    assert "<script>" not in msg.body
    assert "&lt;script&gt;" in msg.body
    assert "<b>&lt;b&gt;y&lt;/b&gt;</b>" in msg.body
    assert '<a href="https://news.example/a(1)">' in msg.body


def test_text_alert_defuses_mentions_in_every_field(renderer: Renderer) -> None:
    msg = renderer.render(
        "alert",
        payload(title="@here news", outlet="@all", snippet="@channel **@everyone**"),
        "text",
    )
    for mention in ("@here", "@all", "@channel", "@everyone"):
        assert mention not in msg.body and mention not in msg.title


def test_title_is_plain_one_line_and_bounded(renderer: Renderer) -> None:
    msg = renderer.render(
        "alert", payload(title="Line one\nFake: header\x07" + "x" * 400), "markdown"
    )
    assert "\n" not in msg.title and "\x07" not in msg.title
    assert len(msg.title) <= 250
    assert "\\" not in msg.title  # not markdown-escaped: it is a subject line


def test_only_http_links(renderer: Renderer) -> None:
    assert link("javascript:alert(1)", "x", "markdown") == "x"
    assert "href" not in link("data:text/html,hi", "x", "html")
    msg = renderer.render("alert", payload(url="javascript:alert(1)"), "html")
    assert "javascript:" not in msg.body


def test_escape_markdown_and_highlight_units() -> None:
    assert escape_markdown("a_b*c[d](e)<f>&") == r"a\_b\*c\[d\]\(e\)&lt;f&gt;&amp;"
    assert highlight("a **b** c", "markdown") == "a **b** c"
    assert highlight("unbalanced **mark", "text") == "unbalanced mark"


def test_blend_title_for_services_without_a_title_field(renderer: Renderer) -> None:
    msg = blend_title(renderer.render("alert", payload(title="A *b*"), "markdown"))
    assert msg.title == "" and msg.body.startswith("**t1: A \\*b\\***")


def test_custom_template_file_and_title(renderer: Renderer, tmp_path: Path) -> None:
    custom = tmp_path / "mine.j2"
    custom.write_text("{% set subject = 'NEWS ' ~ title %}{{ outlet }} | {{ title }} | {{ key }}")
    msg = renderer.render(
        "alert", {**payload(title="<i>x</i>"), "key": "k1"}, "html", template=custom
    )
    assert msg.title == "NEWS &lt;i&gt;x&lt;/i&gt;"  # the template chose the escaped value
    assert msg.body.strip() == "Outlet | &lt;i&gt;x&lt;/i&gt; | k1"


def test_digest_groups_by_topic_then_development_newest_first(renderer: Renderer) -> None:
    def entry(item: int, topic: str, hours: int, dev: int | None, outlet: str) -> dict[str, Any]:
        return payload(
            item_id=item,
            topic=topic,
            title=f"Story {item}",
            published=NOW - timedelta(hours=hours),
            development_id=dev,
            development_title=f"Development {dev}",
            outlet=outlet,
        )

    entries = [
        entry(1, "t2", 9, 10, "A"),
        entry(2, "t1", 8, 20, "B"),
        entry(3, "t1", 1, 30, "C"),
        entry(4, "t1", 5, 20, "D"),
        entry(5, "t1", 3, None, "E"),
    ]
    digest = {
        "kind": "digest",
        "entries": entries,
        "topic_order": ["t1", "t2"],
        "topics": ["t1", "t2"],
        "since": "2026-02-28T08:00:00Z",
        "until": "2026-03-01T08:00:00Z",
        "development_outlets": {"20": ["B", "D", "TASS"]},
    }
    body = renderer.render("digest", digest, "text").body
    order = [body.index(s) for s in ("== t1 ==", "Development 30", "Story 5", "Development 20",
                                     "Story 4", "Story 2", "== t2 ==", "Development 10")]  # fmt: skip
    assert order == sorted(order), body
    assert "Also reported by: TASS" in body  # outlets not already listed under it
    assert "5 alerts" in body
    md = renderer.render("digest", digest, "markdown")
    assert md.title == "news-monitor digest: 5 alerts (t1, t2)"
    assert "### t1" in md.body
