"""OPML: read an export's feeds and append them to the config file, keeping its comments; write the
configured feeds as an OPML 2.0 subscription list (for another reader, or a backup of the list)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from monitor.config import NAME_MAX


@dataclass(frozen=True)
class OpmlFeed:
    name: str
    url: str


@dataclass(frozen=True)
class OpmlAdded:
    added: list[str]  # names of the feeds written to the config
    known: list[str]  # outlines whose URL the config has already, as "name (url) as NAME"


@dataclass(frozen=True)
class OpmlRead:
    feeds: list[OpmlFeed]
    skipped: list[str]  # outlines with a feed URL that is not http(s), as "name (url)"


def read_opml(path: Path) -> OpmlRead:
    """Every outline with an xmlUrl; raise ValueError with a readable message on a bad file."""
    # No entity resolution and no network: an OPML file is data, not a program.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except (etree.XMLSyntaxError, OSError) as exc:
        raise ValueError(f"{path}: not a readable OPML file: {exc}") from exc
    feeds: list[OpmlFeed] = []
    skipped: list[str] = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url:
            continue  # a folder
        title = " ".join((outline.get("title") or outline.get("text") or "").split())
        name = (title or url)[:NAME_MAX]  # a config name is 1 to NAME_MAX characters
        if not url.lower().startswith(("http://", "https://")):
            skipped.append(f"{name} ({url})")
            continue
        feeds.append(OpmlFeed(name, url))
    return OpmlRead(feeds, skipped)


def add_feeds_to_config(config_path: Path, feeds: list[OpmlFeed]) -> OpmlAdded:
    """Append feeds whose URL is not configured yet; names made unique. Returns the names added
    and the outlines skipped as already there (each with the name the config gives its URL).

    The new entries are written as lines after the last entry of `feeds:`, indented like it, so
    the rest of the file stays byte for byte as the user wrote it (comments, quoting, line
    breaks). A file where that cannot be done safely (a flow-style `feeds: [...]`) is rewritten
    by a YAML round trip instead, which keeps comments but may re-indent.
    """
    with config_path.open(encoding="utf-8", newline="") as handle:
        text = handle.read()  # line endings as they are (a CRLF file stays CRLF)
    before = _plain(text)
    existing = (before or {}).get("feeds") or []
    urls = {str(f.get("url")): str(f.get("name")) for f in existing}
    names = {str(f.get("name")) for f in existing}
    added: list[OpmlFeed] = []
    known: list[str] = []
    for feed in feeds:
        if feed.url in urls:
            known.append(f"{feed.name} ({feed.url}) as {urls[feed.url]}")
            continue
        name = _unique(feed.name, names)
        added.append(OpmlFeed(name, feed.url))
        urls[feed.url] = name
        names.add(name)
    if added:
        new_text = _inserted(text, added)
        if new_text is None or before is None or not _adds_exactly(before, new_text, added):
            new_text = _round_trip(text, added)
        with config_path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(new_text)
    return OpmlAdded([f.name for f in added], known)


_TOP_KEY = re.compile(r"^[^\s#-][^:#]*:")
_FEEDS_KEY = re.compile(r"^feeds:\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)- ")


def _inserted(text: str, feeds: list[OpmlFeed]) -> str | None:
    """``text`` with ``feeds`` as lines after the last entry of its block `feeds:` (or a new
    `feeds:` at the end), or None when the layout is not one this can follow."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _FEEDS_KEY.match(line)), None)
    if start is None:
        if any(line.startswith("feeds:") for line in lines):
            return None  # `feeds: [...]`: flow style
        block = "".join(_entry(f, "  ", newline) for f in feeds)
        gap = "" if not text or text.endswith("\n") else newline
        return text + gap + "feeds:" + newline + block
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    items = [i for i in range(start + 1, end) if _ITEM.match(lines[i])]
    indent = _ITEM.match(lines[items[0]]).group(1) if items else "  "  # type: ignore[union-attr]
    # After the last line of the block that is neither blank nor a comment: commented-out
    # examples and blank lines that close the block stay below the new entries.
    last = max(
        (
            i
            for i in range(start, end)
            if lines[i].strip() and not lines[i].lstrip().startswith("#")
        ),
        default=start,
    )
    if not lines[last].endswith("\n"):
        lines[last] += newline
    block = "".join(_entry(f, indent, newline) for f in feeds)
    return "".join([*lines[: last + 1], block, *lines[last + 1 :]])


def _entry(feed: OpmlFeed, indent: str, newline: str) -> str:
    # JSON strings are YAML double-quoted scalars, and `$$` is a literal `$` in the config: an
    # OPML file cannot make the config read an environment variable (a secret) into a URL.
    name = json.dumps(_literal(feed.name), ensure_ascii=False)
    url = json.dumps(_literal(feed.url))
    return f"{indent}- name: {name}{newline}{indent}  url: {url}{newline}"


def _literal(value: str) -> str:
    """``value`` as the config writes a literal: `${...}` is substituted, `$${...}` is not."""
    return _SUBSTITUTED.sub("$$", value)


_SUBSTITUTED = re.compile(r"\$(?=\{)")  # the `$` of a `${` the config would substitute


def _plain(text: str) -> dict[str, Any] | None:
    """The config as plain data (YAML 1.2, as the round trip reads it: a feed named No stays a
    string), or None when it is not a YAML mapping."""
    try:
        data = YAML(typ="safe", pure=True).load(text) or {}
    except YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _adds_exactly(before: dict[str, Any], new: str, added: list[OpmlFeed]) -> bool:
    """The new text parses to the old document with exactly these feeds appended."""
    after = _plain(new)
    if after is None:
        return False
    appended = ({"name": _literal(f.name), "url": _literal(f.url)} for f in added)
    wanted = [*(before.get("feeds") or []), *appended]
    rest_before = {k: v for k, v in before.items() if k != "feeds"}
    rest_after = {k: v for k, v in after.items() if k != "feeds"}
    return after.get("feeds") == wanted and rest_before == rest_after


def _round_trip(text: str, added: list[OpmlFeed]) -> str:
    handler = YAML()  # round-trip mode keeps the user's comments
    handler.preserve_quotes = True
    handler.width = 4096  # never fold a long query or URL
    handler.indent(mapping=2, sequence=4, offset=2)  # the shipped config's layout
    document = handler.load(text) or CommentedMap()
    existing = document.get("feeds")
    if existing is None:
        existing = document["feeds"] = CommentedSeq()
    for feed in added:
        existing.append(CommentedMap(name=_literal(feed.name), url=_literal(feed.url)))
    out = io.StringIO()
    handler.dump(document, out)
    return out.getvalue()


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
