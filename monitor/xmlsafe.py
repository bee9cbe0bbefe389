"""Defuse XML entity tricks in a feed's prolog before any XML parser sees it.

feedparser strips DOCTYPEs with a line-based regex, which misses declarations
written on one line: expat then expands a "billion laughs" until its own
amplification limit trips (tens of MB and seconds later), and feedparser's
lenient parser expands one large entity thousands of times (hundreds of MB).
So every DOCTYPE is removed here; only tiny, flat entity declarations
(``<!ENTITY nbsp "&#160;">``) are put back. External DTDs and entities
(``SYSTEM "file:///..."``) and parameter entities never survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MAX_SAFE_ENTITIES = 64
_MAX_ENTITY_TEXT = 8  # a flat entity of this size amplifies a document at most ~3x
_ENTITY_DECL = re.compile(r"<!ENTITY\s+(\w+)\s+(?:\"([^\"]*)\"|'([^']*)')\s*>")
_ANY_ENTITY_DECL = re.compile(r"<!ENTITY\b")
_CHAR_REF = re.compile(r"&#(?:[0-9]{1,7}|x[0-9A-Fa-f]{1,6});")
_NAME = re.compile(r"[A-Za-z_][\w.:-]*")

_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_WIDE_STARTS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)


@dataclass(frozen=True)
class Prolog:
    """What comes before the root element of a document."""

    root: str | None  # the root element's name, lowercase, or None if none was found
    doctypes: tuple[tuple[int, int], ...] = ()  # [start, end) of each markup declaration
    entity_decls: int = 0
    safe_entities: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Defused:
    body: bytes
    root: str | None
    dropped_entities: int  # entity declarations removed as unsafe


def wide_encoding(body: bytes) -> tuple[str | None, int]:
    """(codec, BOM length) for UTF-16/32 documents, else (None, 0)."""
    for bom, codec in _BOMS:
        # A UTF-16-LE BOM followed by two NULs is really UTF-32-LE, checked first above.
        if body.startswith(bom):
            return codec, len(bom)
    for start, codec in _WIDE_STARTS:
        if body.startswith(start):
            return codec, 0
    return None, 0


def sniff_text(body: bytes, limit: int = 1 << 16) -> str:
    """The start of the document as text, good enough to look at markup (not content)."""
    codec, bom = wide_encoding(body)
    head = body[: limit * 4]
    if codec is None:
        return head[:limit].decode("latin-1").removeprefix("\xef\xbb\xbf")
    return head[bom:].decode(codec, errors="replace")[:limit]


def defuse(body: bytes) -> Defused:
    """``body`` with every DOCTYPE replaced by a harmless one (or none at all)."""
    codec, bom = wide_encoding(body)
    # latin-1 maps bytes 1:1 to characters, so offsets found in the text are byte offsets.
    text = body.decode("latin-1") if codec is None else body[bom:].decode(codec, "replace")
    prolog = scan_prolog(text)
    if not prolog.doctypes:
        return Defused(body, prolog.root, 0)
    rebuilt = _rebuild(text, prolog)
    if codec is None:
        out = rebuilt.encode("latin-1")
    else:
        out = body[:bom] + rebuilt.encode(codec, "replace")
    dropped = prolog.entity_decls - len(prolog.safe_entities)
    return Defused(out, prolog.root, dropped)


def scan_prolog(text: str) -> Prolog:
    """Walk comments, processing instructions and declarations up to the root element."""
    pos, size = 0, len(text)
    spans: list[tuple[int, int]] = []
    decls: list[str] = []
    while pos < size:
        lt = text.find("<", pos)
        if lt < 0 or lt + 1 >= size:
            break
        nxt = text[lt + 1]
        if text.startswith("<?", lt):
            pos = _after(text, "?>", lt + 2)
        elif text.startswith("<!--", lt):
            pos = _after(text, "-->", lt + 4)
        elif nxt == "!":
            end = _declaration_end(text, lt)
            spans.append((lt, end))
            decls.append(text[lt:end])
            pos = end
        elif _NAME.match(text, lt + 1):
            match = _NAME.match(text, lt + 1)
            assert match is not None
            return _prolog(match.group(0).lower(), spans, decls)
        else:
            pos = lt + 1
    return _prolog(None, spans, decls)


def _prolog(root: str | None, spans: list[tuple[int, int]], decls: list[str]) -> Prolog:
    joined = "\n".join(decls)
    total = len(_ANY_ENTITY_DECL.findall(joined))
    safe: list[tuple[str, str]] = []
    for match in _ENTITY_DECL.finditer(joined):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if len(safe) < _MAX_SAFE_ENTITIES and '"' not in value and _is_flat(value):
            safe.append((match.group(1), value))
    return Prolog(root, tuple(spans), total, tuple(safe))


def _is_flat(value: str) -> bool:
    if _CHAR_REF.fullmatch(value):
        return True
    return len(value) <= _MAX_ENTITY_TEXT and not any(c in value for c in "&%<")


def _after(text: str, marker: str, start: int) -> int:
    end = text.find(marker, start)
    return len(text) if end < 0 else end + len(marker)


def _declaration_end(text: str, start: int) -> int:
    """End of a ``<!...>`` declaration, internal subset, quotes and comments included."""
    pos, depth, quote = start + 2, 0, ""
    size = len(text)
    while pos < size:
        char = text[pos]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif depth and text.startswith("<!--", pos):
            pos = _after(text, "-->", pos + 4)
            continue
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == ">" and depth == 0:
            return pos + 1
        pos += 1
    return size  # unterminated: the rest of the document is the declaration


def _rebuild(text: str, prolog: Prolog) -> str:
    """Remove every declaration span; put one flat DOCTYPE (if any entity is safe) first."""
    pieces: list[str] = []
    last = 0
    for index, (start, end) in enumerate(prolog.doctypes):
        pieces.append(text[last:start])
        replacement = _safe_doctype(prolog) if index == 0 else ""
        # Keep line numbers of later parse errors meaningful.
        missing = text.count("\n", start, end) - replacement.count("\n")
        pieces.append(replacement + "\n" * max(0, missing))
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _safe_doctype(prolog: Prolog) -> str:
    if not prolog.safe_entities or prolog.root is None:
        return ""
    # One declaration per line, as feedparser's own DOCTYPE handling expects.
    lines = "".join(f'<!ENTITY {name} "{value}">\n' for name, value in prolog.safe_entities)
    return f"\n<!DOCTYPE {prolog.root} [\n{lines}]>\n"
