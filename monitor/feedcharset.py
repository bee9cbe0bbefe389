"""Decide a feed's character encoding before feedparser decodes it.

feedparser trusts labels: an HTTP charset or XML declaration, else UTF-8, else
windows-1252. Real feeds are often labelled wrongly, so for ASCII-compatible
documents the bytes get a say:

- valid UTF-8 (with non-ASCII text) labelled with a legacy single-byte charset
  is UTF-8: legacy text is practically never valid UTF-8;
- UTF-8 with some broken bytes stays UTF-8 (the broken bytes are replaced),
  rather than the whole document turning into windows-1252 mojibake;
- unlabelled non-UTF-8 text is identified with charset-normalizer, trusted only
  for non-Latin scripts (it confuses the Latin code pages), else windows-1252;
- UTF-16/32 (BOM or ``<?xml`` pattern) is transcoded to UTF-8 here: feedparser
  fails on UTF-16 documents whose XML declaration names no encoding.

Also: ``text/xml`` without a charset means US-ASCII under RFC 3023 (which
feedparser follows) but "see the XML declaration" under RFC 7303, which is
what servers mean; non-XML types (text/html, text/plain) carry no information.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import charset_normalizer

from monitor.xmlsafe import wide_encoding

_LEGACY = re.compile(
    r"^(?:us-?ascii|ascii|iso[-_]?8859[-_]?\d+|latin[-_]?\d|l\d|(?:windows|cp)[-_]?125\d"
    r"|koi8[-_]?[ru])$",
    re.IGNORECASE,
)
_UTF8 = re.compile(r"^utf-?8$", re.IGNORECASE)
_XML_DECL_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_DECL_ENCODING_TEXT = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])[^"']*(["'])""")
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_UTF8_BOM = b"\xef\xbb\xbf"
_REPLACEMENT = "\ufffd"
# Guesses trusted from the detector: scripts whose code pages it tells apart well.
_TRUSTED_GUESSES = frozenset(
    {
        "big5", "big5hkscs", "cp950", "gb2312", "gbk", "gb18030", "hz", "euc_jp", "shift_jis",
        "cp932", "iso2022_jp", "euc_kr", "cp949", "johab", "iso2022_kr", "koi8_r", "koi8_u",
        "cp1251", "iso8859_5", "mac_cyrillic", "cp866", "tis_620", "cp874", "iso8859_11",
        "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp1253", "iso8859_7",
    }
)  # fmt: skip
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Decision:
    body: bytes  # possibly cleaned of broken UTF-8 sequences
    headers: dict[str, str]  # response headers for feedparser
    warning: str | None = None


def split_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """(lowercase media type, charset parameter) of a Content-Type value."""
    if not content_type:
        return None, None
    media = content_type.split(";")[0].strip().lower() or None
    match = _CHARSET_PARAM.search(content_type)
    return media, (match.group(1) if match else None)


def decide(body: bytes, content_type: str | None) -> Decision:
    media, header_charset = split_content_type(content_type)
    xml_media = media if media and media.startswith("application/") and "xml" in media else None
    xml_media = xml_media or "application/xml"

    def labelled(charset: str | None) -> dict[str, str]:
        return {"content-type": f"{xml_media}; charset={charset}" if charset else xml_media}

    codec, bom = wide_encoding(body)
    if codec:
        text = _DECL_ENCODING_TEXT.sub(r"\1utf-8\2", body[bom:].decode(codec, "replace"), 1)
        return Decision(text.encode("utf-8"), labelled("utf-8"))
    if body.isascii():
        return Decision(body, labelled(header_charset))
    declared = header_charset or _xml_declared_encoding(body)
    has_bom = body.startswith(_UTF8_BOM)
    text = body.decode("utf-8", errors="replace")
    broken = text.count(_REPLACEMENT) - body.count(_REPLACEMENT.encode())
    if broken == 0:
        if declared and _LEGACY.match(declared):
            warning = f"the feed declares the {declared} encoding but is UTF-8; read as UTF-8"
            return Decision(body, labelled("utf-8"), warning)
        return Decision(body, labelled(header_charset))
    if declared and not _UTF8.match(declared):
        return Decision(body, labelled(header_charset))  # labelled non-UTF-8 and not UTF-8
    # Legacy text is practically never valid UTF-8 by accident, so as many valid
    # multi-byte characters as broken ones means UTF-8 with damage.
    valid = sum(1 for char in text if ord(char) > 127) - broken
    if valid >= broken or has_bom:
        warning = f"{broken} invalid UTF-8 byte sequences in the feed were replaced"
        return Decision(text.encode("utf-8"), labelled("utf-8"), warning)
    guess = _guess(body)
    said = "declares UTF-8" if declared else "declares no character encoding"
    warning = f"the feed {said} but is not UTF-8; read as {guess}"
    return Decision(body, labelled(guess), warning)


def _guess(body: bytes) -> str:
    best = charset_normalizer.from_bytes(body[:_SNIFF_BYTES]).best()
    if best is not None and best.encoding in _TRUSTED_GUESSES:
        return str(best.encoding)
    return "windows-1252"


def _xml_declared_encoding(body: bytes) -> str | None:
    match = _XML_DECL_ENCODING.match(body.removeprefix(_UTF8_BOM)[:512])
    return match.group(1).decode("ascii") if match else None
