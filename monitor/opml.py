"""OPML: read an export's feeds and append them to the config file, keeping its comments; write the
configured feeds as an OPML 2.0 subscription list (for another reader, or a backup of the list)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


@dataclass(frozen=True)
class OpmlFeed:
    name: str
    url: str


def read_opml(path: Path) -> list[OpmlFeed]:
    """Every outline with an xmlUrl; raise ValueError with a readable message on a bad file."""
    # No entity resolution and no network: an OPML file is data, not a program.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except (etree.XMLSyntaxError, OSError) as exc:
        raise ValueError(f"{path}: not a readable OPML file: {exc}") from exc
    feeds: list[OpmlFeed] = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url.lower().startswith(("http://", "https://")):
            continue
        name = (outline.get("title") or outline.get("text") or url).strip()
        feeds.append(OpmlFeed(" ".join(name.split()), url))
    return feeds


def add_feeds_to_config(config_path: Path, feeds: list[OpmlFeed]) -> list[str]:
    """Append feeds whose URL is not configured yet; names made unique. Returns the names added."""
    yaml = YAML()  # round-trip mode keeps the user's comments and layout
    yaml.preserve_quotes = True
    document = yaml.load(config_path.read_text(encoding="utf-8")) or CommentedMap()
    existing = document.get("feeds")
    if existing is None:
        existing = document["feeds"] = CommentedSeq()
    urls = {str(f.get("url")) for f in existing}
    names = {str(f.get("name")) for f in existing}
    added: list[str] = []
    for feed in feeds:
        if feed.url in urls:
            continue
        name = _unique(feed.name, names)
        existing.append(CommentedMap(name=name, url=feed.url))
        urls.add(feed.url)
        names.add(name)
        added.append(name)
    if added:
        with config_path.open("w", encoding="utf-8") as handle:
            yaml.dump(document, handle)
    return added


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    number = 2
    while f"{name} ({number})" in taken:
        number += 1
    return f"{name} ({number})"


def write_opml(feeds: Iterable[OpmlFeed], title: str = "news-monitor feeds") -> bytes:
    """An OPML 2.0 document listing ``feeds`` (one RSS outline each), UTF-8."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    body = etree.SubElement(root, "body")
    for feed in feeds:
        etree.SubElement(
            body, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
        )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
