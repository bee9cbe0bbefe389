"""Turn outbox payloads into messages: Jinja2 templates, article text escaped for the body format.

Templates live in `monitor/templates/` (`alert.<format>.j2`, `digest.<format>.j2`,
`health.<format>.j2`, format = text, markdown or html) and can be replaced per topic or channel with
`template: path/to/file.j2` (relative to the config file). A template may set the message title with
`{% set subject = ... %}`; otherwise it is "topics: headline".

Everything that comes from an article (headline, outlet, snippet, terms, URL) is escaped for the
channel's format before a template sees it, so a headline cannot inject markup, links or mentions:
- all formats: control characters dropped, `@name` and Slack-style `<!channel>` mentions defused with
  a zero-width space;
- markdown: `& < >` as entities, other markdown punctuation backslash-escaped (CommonMark), links
  only for http(s) URLs with their brackets percent-encoded;
- html: escaped by Jinja's autoescape (values are marked safe only after escaping them here).
Match highlights (`**hit**` from the matcher) become `*hit*`, `**hit**` or `<b>hit</b>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from monitor.clock import parse_iso

Format = Literal["text", "markdown", "html"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "html")
TITLE_MAX = 250

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
_MENTION = re.compile(r"@(?=[\w.\-])")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_MARK = "**"


@dataclass(frozen=True)
class Message:
    title: str  # plain text (a subject line): never markup
    body: str  # in `format`
    format: Format


# --------------------------------------------------------------------------- escaping


def clean(text: str | None) -> str:
    """Drop control and bidi-override characters; keep newlines and tabs."""
    return _CONTROL.sub("", text or "")


def one_line(text: str | None) -> str:
    return _SPACES.sub(" ", clean(text)).strip()


def defuse_mentions(text: str) -> str:
    """`@channel`, `@here`, `@user`, `<!channel>`: a zero-width space keeps them from pinging."""
    return _MENTION.sub("@\u200b", text).replace("<!", "<\u200b!")


def escape_markdown(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def escape_for(text: str | None, fmt: Format) -> str:
    """Article text made inert for `fmt` (a Markup for html, so autoescape leaves it alone)."""
    return _escape(one_line(text), fmt)


def _escape(text: str, fmt: Format) -> str:
    safe = defuse_mentions(text)
    if fmt == "markdown":
        return escape_markdown(safe)
    if fmt == "html":
        return escape(safe)
    return safe


def plain_title(text: str | None) -> str:
    """A title apprise sends as a subject/title field: one line, no mentions, bounded."""
    title = defuse_mentions(one_line(text))
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1].rstrip() + "…"


def highlight(snippet: str | None, fmt: Format) -> str:
    """The matcher's `**hit**` marks as the format's emphasis; everything else escaped."""
    parts = one_line(snippet).split(_MARK)
    if len(parts) % 2 == 0:  # unbalanced marks: show the text without emphasis
        parts = ["".join(parts)]
    out = []
    for index, part in enumerate(parts):
        text = _escape(part, fmt)
        if index % 2 and text:
            text = {"text": f"*{text}*", "markdown": f"**{text}**", "html": f"<b>{text}</b>"}[fmt]
        out.append(text)
    joined = "".join(out)
    return Markup(joined) if fmt == "html" else joined


def safe_url(url: str | None) -> str | None:
    """Only http(s) URLs become links (no javascript:, data:, mailto: from a feed)."""
    value = one_line(url).replace(" ", "%20")
    return value if re.match(r"^https?://[^\s]+$", value, re.IGNORECASE) else None


def link(url: str | None, label: str | None, fmt: Format) -> str:
    """A link to the article in the format; label is article text (escaped here)."""
    target = safe_url(url)
    if target is None:
        return escape_for(label or url or "", fmt)
    if fmt == "markdown":
        for raw, encoded in (("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
            target = target.replace(raw, encoded)
        return f"[{escape_for(label or target, fmt)}]({target})"
    if fmt == "html":
        return Markup('<a href="{}">{}</a>').format(target, escape_for(label or target, fmt))
    return target


def url_for(url: str | None, fmt: Format) -> str:
    """The bare URL, shown as text: an autolink in markdown, escaped in html, raw in text."""
    target = safe_url(url)
    if target is None:
        return ""
    if fmt == "markdown":
        return "<" + target.replace("<", "%3C").replace(">", "%3E") + ">"
    return escape(target) if fmt == "html" else target


def format_date(value: str | None, zone: str) -> str:
    when = parse_iso(value)
    if when is None:
        return ""
    local = when.astimezone(ZoneInfo(zone))
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone)


# --------------------------------------------------------------------------- contexts


def _list(values: Sequence[Any], fmt: Format) -> list[str]:
    return [escape_for(str(v), fmt) for v in values if v]


def alert_context(payload: Mapping[str, Any], fmt: Format, zone: str) -> dict[str, Any]:
    """What an alert template sees. Every string is already escaped for `fmt`."""
    item = payload.get("item") or {}
    developments = payload.get("developments") or []
    first_dev = developments[0] if developments else None
    other = payload.get("other_outlets") or []
    return {
        "format": fmt,
        "topics": _list(payload.get("topics") or [], fmt),
        "title": escape_for(item.get("title") or "(no title)", fmt),
        "url": url_for(item.get("url"), fmt),
        "link": link(item.get("url"), item.get("title") or item.get("url"), fmt),
        "outlet": escape_for(item.get("outlet") or "", fmt),
        "date": format_date(item.get("published") or item.get("first_seen"), zone),
        "first_seen": format_date(item.get("first_seen"), zone),
        "language": escape_for(item.get("language") or "", fmt),
        "terms": _list(payload.get("terms") or [], fmt),
        "snippet": highlight(payload.get("snippet"), fmt),
        "matches": [
            {
                "topic": escape_for(m.get("topic"), fmt),
                "terms": _list(m.get("terms") or [], fmt),
                "snippet": highlight(m.get("snippet"), fmt),
            }
            for m in payload.get("matches") or []
        ],
        "relation": payload.get("relation") or "first",
        "development": (
            {
                "id": first_dev.get("id"),
                "title": escape_for(first_dev.get("title"), fmt),
                "revision": first_dev.get("revision") or 1,
            }
            if first_dev
            else None
        ),
        "other_outlets": _list(other, fmt),
        "key": payload.get("key", ""),
        "attempt": payload.get("attempt", 1),
    }


def digest_context(payload: Mapping[str, Any], fmt: Format, zone: str) -> dict[str, Any]:
    """Digest: sections by topic, then development, newest first."""
    dev_outlets: Mapping[str, list[str]] = payload.get("development_outlets") or {}
    order = list(payload.get("topic_order") or [])
    sections: dict[str, list[dict[str, Any]]] = {}
    for entry in payload.get("entries") or []:
        for topic in entry.get("topics") or []:
            sections.setdefault(topic, []).append(entry)
    rank = {name: i for i, name in enumerate(order)}
    out = []
    for topic in sorted(sections, key=lambda t: (rank.get(t, len(rank)), t)):
        groups = _developments(topic, sections[topic], dev_outlets, fmt, zone)
        out.append({"topic": escape_for(topic, fmt), "developments": groups})
    entries = payload.get("entries") or []
    return {
        "format": fmt,
        "sections": out,
        "count": len(entries),
        "since": format_date(payload.get("since"), zone),
        "until": format_date(payload.get("until"), zone),
        "channel": escape_for(payload.get("channel"), fmt),
        "key": payload.get("key", ""),
        "attempt": payload.get("attempt", 1),
    }


def _developments(
    topic: str,
    entries: list[dict[str, Any]],
    dev_outlets: Mapping[str, list[str]],
    fmt: Format,
    zone: str,
) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    titles: dict[str, str] = {}
    for entry in entries:
        dev = next((d for d in entry.get("developments") or [] if d.get("topic") == topic), None)
        group = f"dev:{dev['id']}" if dev else f"item:{(entry.get('item') or {}).get('id')}"
        groups.setdefault(group, []).append(entry)
        if dev:
            titles.setdefault(group, dev.get("title") or "")
    result = []
    for group, members in groups.items():
        members.sort(key=_when, reverse=True)
        seen_outlets = {(m.get("item") or {}).get("outlet") for m in members}
        others = [
            o for o in dev_outlets.get(group.removeprefix("dev:"), []) if o not in seen_outlets
        ]
        result.append(
            {
                "title": escape_for(titles.get(group) or _item_title(members[0]), fmt),
                "newest": _when(members[0]),
                "articles": [alert_context(m, fmt, zone) for m in members],
                "other_outlets": _list(others, fmt),
            }
        )
    result.sort(key=lambda g: str(g["newest"]), reverse=True)
    return result


def _when(entry: Mapping[str, Any]) -> str:
    item = entry.get("item") or {}
    return str(item.get("published") or item.get("first_seen") or "")


def _item_title(entry: Mapping[str, Any]) -> str:
    return str((entry.get("item") or {}).get("title") or "")


def health_context(payload: Mapping[str, Any], fmt: Format, zone: str) -> dict[str, Any]:
    return {
        "format": fmt,
        "title": escape_for(payload.get("title"), fmt),
        "lines": [escape_for(line, fmt) for line in payload.get("lines") or []],
        "since": format_date(payload.get("since"), zone),
        "key": payload.get("key", ""),
        "attempt": payload.get("attempt", 1),
    }


# --------------------------------------------------------------------------- templates

_CONTEXTS: dict[str, Callable[[Mapping[str, Any], Format, str], dict[str, Any]]] = {
    "alert": alert_context,
    "digest": digest_context,
    "health": health_context,
}


class Renderer:
    """Renders outbox payloads; custom templates are read from disk and cached by mtime."""

    def __init__(self) -> None:
        self._envs = {fmt: template_environment(fmt) for fmt in FORMATS}
        self._custom: dict[tuple[Path, Format], tuple[float, jinja2.Template]] = {}

    def render(
        self,
        kind: str,
        payload: Mapping[str, Any],
        fmt: Format,
        *,
        zone: str = "UTC",
        template: Path | None = None,
    ) -> Message:
        """Render one message; a broken custom template raises jinja2.TemplateError."""
        context = _CONTEXTS[kind](payload, fmt, zone)
        chosen = (
            self._load(template, fmt)
            if template
            else self._envs[fmt].get_template(f"{kind}.{fmt}.j2")
        )
        module = chosen.make_module(context)
        body = str(module).strip() + "\n"
        subject = getattr(module, "subject", None)
        title = str(subject) if subject else default_title(kind, payload)
        return Message(plain_title(title), body, fmt)

    def _load(self, path: Path, fmt: Format) -> jinja2.Template:
        mtime = path.stat().st_mtime
        cached = self._custom.get((path, fmt))
        if cached and cached[0] == mtime:
            return cached[1]
        template = self._envs[fmt].from_string(path.read_text(encoding="utf-8"))
        self._custom[(path, fmt)] = (mtime, template)
        return template


def template_environment(fmt: Format) -> jinja2.Environment:
    """The Jinja2 environment templates of ``fmt`` are rendered in (the config check compiles
    custom templates in it too)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("monitor", "templates"),
        autoescape=fmt == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def default_title(kind: str, payload: Mapping[str, Any]) -> str:
    topics = ", ".join(payload.get("topics") or [])
    if kind == "alert":
        item = payload.get("item") or {}
        return f"{topics}: {item.get('title') or '(no title)'}"
    if kind == "digest":
        count = len(payload.get("entries") or [])
        return f"news-monitor digest: {count} alert{'s' if count != 1 else ''} ({topics})"
    return f"news-monitor: {payload.get('title') or 'health'}"


def blend_title(message: Message) -> Message:
    """For services without a title field: put the (escaped) title at the top of the body."""
    title = message.title
    if message.format == "markdown":
        head = f"**{escape_markdown(title)}**\n\n"
    elif message.format == "html":
        head = f"<p><b>{escape(title)}</b></p>\n"
    else:
        head = f"{title}\n\n"
    return Message("", head + message.body, message.format)
