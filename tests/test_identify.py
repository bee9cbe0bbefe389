"""classify_entries: new / updated / unchanged against what the store knows."""

from __future__ import annotations

from monitor.identify import classify_entries
from monitor.parse import parse_feed
from monitor.records import FeedEntry, ParsedFeed


def entries(*items: tuple[str, str]) -> tuple[FeedEntry, ...]:
    body = "".join(
        f"<item><title>{title}</title><link>https://x.example/{slug}</link></item>"
        for slug, title in items
    )
    feed = parse_feed(
        f'<rss version="2.0"><channel>{body}</channel></rss>'.encode(), url="https://x.example/f"
    )
    assert isinstance(feed, ParsedFeed)
    return feed.entries


def test_new_updated_unchanged() -> None:
    first = entries(("a", "A"), ("b", "B"), ("c", "C"))
    known = {e.key: e.entry_hash for e in first[:2]}
    later = entries(("a", "A"), ("b", "B, corrected"), ("c", "C"), ("d", "D"))
    new, updated, unchanged = classify_entries(later, known)
    assert [e.title for e in new] == ["C", "D"]
    assert [e.title for e in updated] == ["B, corrected"]
    assert [e.title for e in unchanged] == ["A"]


def test_nothing_known_means_all_new_and_order_is_kept() -> None:
    batch = entries(("z", "Z"), ("a", "A"))
    result = classify_entries(batch, {})
    assert result.new == batch
    assert result.updated == () and result.unchanged == ()


def test_a_key_repeated_in_the_input_counts_once() -> None:
    (a,) = entries(("a", "A"))
    (a_changed,) = entries(("a", "A changed"))
    result = classify_entries([a, a_changed, a], {a.key: a.entry_hash})
    assert result.unchanged == (a,)
    assert result.new == () and result.updated == ()
